"""In-process CPU per request: the service's WSGI handler called directly, no server, no socket.

    python bench/cpu.py [--requests 2000] [--rounds 5] [--scenarios upsert,put,get-by]

It creates a fresh PostgreSQL database, seeds it as bench/load.py does, then for each scenario
calls the WSGI application `--requests` times per round and prints the median over rounds of the
CPU time (time.process_time) per request in this process: the application's own cost, which other
processes on a busy machine do not change (the database's CPU is not counted; its round trips
are waits, not CPU). Compare two versions of the code by running it on each.
"""

from __future__ import annotations

import argparse
import io
import json
import os
import statistics
import sys
import time

from common import ROOT, fresh_database, manage
from load import SESSIONS, STORED_CONSENTS, seed_script


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=2000)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--database", default="consentsite_cpu")
    parser.add_argument("--scenarios", default="upsert,put,get-by")
    args = parser.parse_args()

    _, env = fresh_database(args.database)
    env["API_KEY_THROTTLE_RATE"] = "100000000/min"
    created = manage("create_api_key", "cpu", "-v0", env=env, capture_output=True, text=True)
    key = created.stdout.strip().splitlines()[-1]
    manage("shell", "-v0", "-c", seed_script(), env=env)

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "consentsite.settings"
    sys.path.insert(0, str(ROOT))
    from django.core.wsgi import get_wsgi_application

    application = get_wsgi_application()
    requests = {"upsert": upsert, "put": put, "get-by": get_by}
    print(f"{'scenario':<8} {'CPU ms/request (median of rounds)':>34} {'rounds':>30}")
    for name in args.scenarios.split(","):
        per_round = []
        for round_ in range(args.rounds + 1):
            started = time.process_time()
            for n in range(args.requests):
                status = call(application, key, *requests[name](round_, n))
                if not status.startswith("2"):
                    raise SystemExit(f"{name}: {status}")
            if round_:  # the first round warms up (connections, prepared statements, caches)
                per_round.append((time.process_time() - started) * 1000 / args.requests)
        rounds = " ".join(f"{value:.3f}" for value in per_round)
        print(f"{name:<8} {statistics.median(per_round):>34.3f} {rounds:>30}", flush=True)


def upsert(round_: int, n: int) -> tuple[str, str, str, bytes]:
    body = {
        "details": {"type": "EMAIL", "email": f"cpu-{round_}-{n}@example.com"},
        "state": "CONFIRMED",
        "lastConfirmationActivity": {"source": "FORM", "optInLevel": "SINGLE_CONFIRMATION"},
    }
    path = "/marketing-consent/v1/marketing-consent/upsert"
    return "POST", path, "", json.dumps(body).encode()


def put(round_: int, n: int) -> tuple[str, str, str, bytes]:
    preference = "OPT_IN" if (n // SESSIONS) % 2 == 0 else "OPT_OUT"
    path = f"/client/users/load-{n % SESSIONS}/profile/marketing-subscription"
    return "PUT", path, "", json.dumps({"email": {"preference": preference}}).encode()


def get_by(round_: int, n: int) -> tuple[str, str, str, bytes]:
    query = f"type=EMAIL&email=stored-{n % STORED_CONSENTS}@example.com"
    return "GET", "/marketing-consent/v1/marketing-consent/get-by", query, b""


def call(application, key: str, method: str, path: str, query: str, body: bytes) -> str:
    environ = {
        "REQUEST_METHOD": method,
        "PATH_INFO": path,
        "QUERY_STRING": query,
        "SERVER_NAME": "127.0.0.1",
        "SERVER_PORT": "80",
        "SERVER_PROTOCOL": "HTTP/1.1",
        "HTTP_HOST": "127.0.0.1",
        "HTTP_AUTHORIZATION": f"Api-Key {key}",
        "CONTENT_TYPE": "application/json",
        "CONTENT_LENGTH": str(len(body)),
        "REMOTE_ADDR": "127.0.0.1",
        "wsgi.input": io.BytesIO(body),
        "wsgi.url_scheme": "http",
        "wsgi.errors": sys.stderr,
    }
    answered = []
    chunks = application(environ, lambda status, headers: answered.append(status))
    b"".join(chunks)
    getattr(chunks, "close", lambda: None)()
    return answered[0]


if __name__ == "__main__":
    main()
