"""Change-event benchmark: steady upserts into PostgreSQL, delivered as signed webhooks by a
Celery worker to two local receivers.

    python bench/webhooks.py [--rate 300] [--duration 60] [--broker redis://127.0.0.1:6379/5]

It creates a fresh PostgreSQL database, two endpoints (both receivers on 127.0.0.1, which verify
every signature) and starts `celery -A consentsite worker --beat` on it. Writer threads then call
the ledger's upsert (a new address each, so every change is a `created` event) at a fixed rate
for the duration, noting when each commit returned. It prints the rate written, the events
delivered per second, the commit-to-receipt lag (p50, p99, max) and how many events were missing
or delivered twice; the CPU time each part used per change (the writers' process, the worker,
the two receivers, and the database's server processes serving them), which depends far less on
what else runs on the machine than the rates do; the load average before and after; then the
floor: signed POSTs to the same receivers from one thread with no database and no queue. The
goal: 300 changes/s for 60 s, every event delivered, p99 lag ≤ 2 s.
"""

from __future__ import annotations

import argparse
import json
import multiprocessing
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

from common import (
    PYTHON,
    ROOT,
    cpu_seconds,
    database_backends,
    fresh_database,
    manage,
    process_group,
)


class Receiver:
    """A receiver in its own process (so that it does not share the writers' interpreter):
    it verifies each signature and notes the first receipt time of each ledger event."""

    def __init__(self) -> None:
        self.ready = multiprocessing.Queue()
        self.results = multiprocessing.Queue()
        self.secret = multiprocessing.Queue()
        self.unique = multiprocessing.Value("i", 0)
        self.stop = multiprocessing.Event()
        self.process = multiprocessing.Process(target=self.serve, daemon=True)
        self.process.start()
        self.url = self.ready.get()

    def serve(self) -> None:
        from standardwebhooks.webhooks import Webhook, WebhookVerificationError

        first_seen: dict[int, float] = {}
        counts = {"duplicates": 0, "bad signatures": 0}
        lock = threading.Lock()
        verifier: list[Webhook] = []
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers["content-length"]))
                at = time.time()
                try:
                    verifier[0].verify(body, dict(self.headers.items()))
                except (WebhookVerificationError, IndexError):
                    counts["bad signatures"] += 1
                else:
                    event_id = json.loads(body)["consentProof"]["ledgerEventId"]
                    with lock:
                        if event_id < 0:  # the floor's requests
                            pass
                        elif event_id in first_seen:
                            counts["duplicates"] += 1
                        else:
                            first_seen[event_id] = at
                            receiver.unique.value += 1
                self.send_response(204)
                self.send_header("content-length", "0")
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        server.daemon_threads = True
        threading.Thread(target=server.serve_forever, daemon=True).start()
        self.ready.put(f"http://127.0.0.1:{server.server_address[1]}/hooks")
        verifier.append(Webhook(self.secret.get()))
        self.stop.wait()
        self.results.put((first_seen, counts))

    def finish(self) -> tuple[dict[int, float], dict[str, int]]:
        self.stop.set()
        return self.results.get()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rate", type=int, default=300, help="changes per second")
    parser.add_argument("--duration", type=int, default=60, help="seconds of writing")
    parser.add_argument("--writers", type=int, default=3, help="writer threads")
    parser.add_argument("--pool", default="threads", help="the worker's pool: threads or prefork")
    parser.add_argument("--concurrency", type=int, default=4, help="worker threads or processes")
    parser.add_argument(
        "--broker", default="redis://127.0.0.1:6379/5", help="'filesystem' for no server"
    )
    parser.add_argument("--database", default="consentsite_webhooks")
    args = parser.parse_args()

    _, env = fresh_database(args.database)
    broker_dir = tempfile.mkdtemp(prefix="bench-broker-")
    env |= {
        "WEBHOOK_ALLOW_INSECURE_TARGETS": "true",
        "CELERY_BROKER_URL": "filesystem://" if args.broker == "filesystem" else args.broker,
        "CELERY_FILESYSTEM_BROKER_DIR": broker_dir,
        "CELERY_BEAT_SCHEDULE_FILENAME": os.path.join(broker_dir, "beat-schedule"),
        "WEBHOOK_SWEEP_SECONDS": "5",
    }
    if args.broker.startswith("redis://"):
        subprocess.run(["redis-cli", "-u", args.broker, "flushdb"], check=True, capture_output=True)

    receivers = [Receiver(), Receiver()]
    secrets = []
    for receiver in receivers:
        out = manage("create_webhook", receiver.url, env=env, capture_output=True, text=True)
        secrets.append(out.stdout.splitlines()[-1])
        receiver.secret.put(secrets[-1])

    os.environ.update(env)
    os.environ["DJANGO_SETTINGS_MODULE"] = "consentsite.settings"
    sys.path.insert(0, str(ROOT))
    import django

    django.setup()
    from django.db import connection

    from consents.ledger import ChangeContext, ConfirmationActivity, ConsentChange, consent_upsert

    worker = subprocess.Popen(
        [PYTHON, "-m", "celery", "-A", "consentsite", "worker", "--beat", "--pool", args.pool,
         "--concurrency", str(args.concurrency), "--loglevel", "WARNING",
         "--without-heartbeat", "--without-gossip", "--without-mingle"],
        cwd=ROOT, env=env, start_new_session=True,
    )  # fmt: skip
    time.sleep(5)  # the worker's start

    change = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(source="FORM", opt_in_level="SINGLE_CONFIRMATION"),
    )
    context = ChangeContext(door="COMMAND", actor="bench")
    committed: dict[int, float] = {}
    lock = threading.Lock()
    start = time.time() + 0.5
    interval = args.writers / args.rate

    def write(index: int) -> None:
        n = 0
        while True:
            due = start + index / args.rate + n * interval
            if due >= start + args.duration:
                break
            pause = due - time.time()
            if pause > 0:
                time.sleep(pause)
            result = consent_upsert(
                type="EMAIL", address=f"bench-{index}-{n}@example.com", change=change,
                context=context,
            )  # fmt: skip
            done = time.time()
            with lock:
                committed[result.event.id] = done
            n += 1
        connection.close()

    load_before = os.getloadavg()
    parts = {
        "worker": process_group(worker.pid),
        "receivers": [r.process.pid for r in receivers],
    }
    cpu_before = {name: cpu_seconds(pids) for name, pids in parts.items()}
    writers_cpu = time.process_time()
    # The database's server processes serving this database: CPU as last seen, as a process
    # that exits (a closed connection) takes its count with it.
    connection.ensure_connection()  # this thread's, which lists them
    listed_by = connection.connection
    backends_first = {pid: cpu_seconds([pid]) for pid in database_backends(listed_by)}
    backends_last = dict(backends_first)

    def sample_backends() -> None:
        for pid in database_backends(listed_by):
            backends_first.setdefault(pid, 0.0)  # opened since the start
            backends_last[pid] = max(backends_last.get(pid, 0.0), cpu_seconds([pid]))

    writers = [threading.Thread(target=write, args=(i,)) for i in range(args.writers)]
    for thread in writers:
        thread.start()
    while any(thread.is_alive() for thread in writers):
        sample_backends()
        time.sleep(0.5)
    written_in = max(committed.values()) - start
    writers_cpu = time.process_time() - writers_cpu
    deadline = time.time() + 120
    while time.time() < deadline and any(r.unique.value < len(committed) for r in receivers):
        sample_backends()
        time.sleep(0.2)
    sample_backends()
    cpu = {name: cpu_seconds(pids) - cpu_before[name] for name, pids in parts.items()}
    cpu["database"] = sum(backends_last[pid] - backends_first[pid] for pid in backends_last)
    load_after = os.getloadavg()
    os.killpg(worker.pid, signal.SIGTERM)  # the worker and its embedded beat
    worker.wait(30)

    rate = len(committed) / written_in
    print(
        f"changes written: {len(committed)} in {written_in:.1f} s ({rate:.0f}/s; "
        f"goal {args.rate}/s for {args.duration} s)"
    )
    print(
        f"{'endpoint':<9} {'delivered':>9} {'events/s':>9} {'p50 lag s':>10} {'p99 lag s':>10} "
        f"{'max lag s':>10} {'missing':>8} {'twice':>6} {'bad sig':>8}"
    )
    floor_rate = floor(receivers[0].url, secrets[0])
    for number, receiver in enumerate(receivers, 1):
        first_seen, counts = receiver.finish()
        lags = sorted(first_seen[i] - committed[i] for i in committed if i in first_seen)
        missing = len(committed) - len(lags)
        span = max(first_seen.values()) - start if lags else 1
        p99 = lags[int(len(lags) * 0.99) - 1] if lags else float("nan")
        print(
            f"{number:<9} {len(lags):>9} {len(lags) / span:>9.0f} "
            f"{statistics.median(lags) if lags else float('nan'):>10.3f} {p99:>10.3f} "
            f"{(lags[-1] if lags else float('nan')):>10.3f} {missing:>8} "
            f"{counts['duplicates']:>6} {counts['bad signatures']:>8}"
        )
    per_change = {"writers": writers_cpu, **cpu}
    print(
        "CPU ms per change: "
        + ", ".join(f"{name} {seconds / len(committed) * 1000:.2f}" for name, seconds in
                    per_change.items())
        + f" (total {sum(per_change.values()) / len(committed) * 1000:.2f})"
    )  # fmt: skip
    print(
        "load average (1, 5, 15 min): before "
        + ", ".join(f"{x:.1f}" for x in load_before)
        + "; after "
        + ", ".join(f"{x:.1f}" for x in load_after)
    )
    print(f"floor: {floor_rate:.0f} signed POSTs/s from one thread to a receiver "
          "(no database, no queue)")  # fmt: skip


def floor(url: str, secret: str, seconds: float = 5.0) -> float:
    from datetime import UTC, datetime

    import urllib3
    from standardwebhooks.webhooks import Webhook

    body = json.dumps({"consentProof": {"ledgerEventId": -1}})
    sent = 0
    with urllib3.connection_from_url(url, maxsize=1) as client:
        end = time.monotonic() + seconds
        while time.monotonic() < end:
            at = datetime.now(UTC)
            client.urlopen(
                "POST",
                "/hooks",
                body=body.encode(),
                headers={
                    "webhook-id": f"floor-{sent}",
                    "webhook-timestamp": str(int(at.timestamp())),
                    "webhook-signature": Webhook(secret).sign(f"floor-{sent}", at, body),
                },
            )
            sent += 1
    return sent / seconds


if __name__ == "__main__":
    main()
