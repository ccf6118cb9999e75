"""Load benchmark: the service as production runs it (`make serve`) on PostgreSQL, loaded with wrk.

    python bench/load.py [--duration 10] [--connections 4,16,64] [--workers 2]
                          [--gunicorn-args ARGS]

It creates a fresh PostgreSQL database, starts `make serve` on it (BIND, WEB_CONCURRENCY), and
for each scenario and concurrency runs wrk for a fixed time, printing requests/s, p50 and p99
latency, errors, and the CPU time each request cost the server's processes (app: gunicorn's
master and workers), the database's server processes (db) and wrk itself (wrk), read from /proc
around the run, after a 1 s warm-up: a figure that other work on the machine changes much less
than requests/s. The scenarios:
  upsert   POST /marketing-consent/v1/marketing-consent/upsert, a new address per request
  put      PUT  /client/users/<correlation id>/profile/marketing-subscription, alternating
  get-by   GET  /marketing-consent/v1/marketing-consent/get-by over stored consents
  minimal  POST /bench/minimal: a DRF view validating 3 fields, no database (bench/minimal_view.py)
Beside each scenario, in the same run: the floor, the same SQL work done directly with psycopg by
as many threads, and service ÷ floor. Then the yardsticks: pgbench doing the upsert's write on the
real tables (2 clients), upsert ÷ pgbench, and get-by ÷ the minimal view. wrk comes from Debian's
packages and is installed if missing; pgbench comes with PostgreSQL.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import tempfile
import textwrap
import threading
import time
import urllib.request
import uuid
from collections.abc import Iterator

import psycopg
from common import ROOT, cpu_seconds, database_backends, fresh_database, manage, process_group

SESSIONS = 200
STORED_CONSENTS = 1000

UPSERT_LUA = """
local n = 0
function setup(thread) thread:set("tid", tostring(math.random(1, 1e9))) end
function request()
  n = n + 1
  local body = string.format('{"details":{"type":"EMAIL","email":"load-%s-%d@example.com"},'
    .. '"state":"CONFIRMED","lastConfirmationActivity":{"source":"FORM",'
    .. '"optInLevel":"SINGLE_CONFIRMATION"}}', tid, n)
  return wrk.format("POST", "/marketing-consent/v1/marketing-consent/upsert", nil, body)
end
"""

PUT_LUA = """
local n = 0
function request()
  n = n + 1
  local pref = (math.floor(n / %(sessions)d) %% 2 == 0) and "OPT_IN" or "OPT_OUT"
  local path = string.format("/client/users/load-%%d/profile/marketing-subscription",
    math.random(0, %(sessions)d - 1))
  return wrk.format("PUT", path, nil, '{"email":{"preference":"' .. pref .. '"}}')
end
"""

MINIMAL_LUA = """
function request()
  return wrk.format("POST", "/bench/minimal", nil, '{"name":"ada","count":3,"active":true}')
end
"""

GET_BY_LUA = """
function request()
  local path = string.format(
    "/marketing-consent/v1/marketing-consent/get-by?type=EMAIL&email=stored-%%d@example.com",
    math.random(0, %(consents)d - 1))
  return wrk.format("GET", path)
end
"""

# Each scenario's wrk script.
SCENARIOS = {
    "upsert": UPSERT_LUA,
    "put": PUT_LUA % {"sessions": SESSIONS},
    "get-by": GET_BY_LUA % {"consents": STORED_CONSENTS},
    "minimal": MINIMAL_LUA,
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--duration", type=int, default=10, help="seconds per run")
    parser.add_argument("--connections", default="4,16,64")
    parser.add_argument("--workers", type=int, default=2, help="WEB_CONCURRENCY")
    parser.add_argument("--port", type=int, default=8765)
    parser.add_argument("--database", default="consentsite_load")
    parser.add_argument("--scenarios", default="upsert,put,get-by,minimal")
    parser.add_argument(
        "--gunicorn-args",
        default="",
        help="more gunicorn options, to compare with the production settings "
        "(e.g. '--worker-class gthread --threads 1')",
    )
    args = parser.parse_args()
    connections = [int(c) for c in args.connections.split(",")]

    ensure_wrk()
    with serving(args.database, args.port, args.workers, args.gunicorn_args) as (
        server,
        database_url,
        key,
    ):
        print(f"{'scenario':<8} {'conns':>5} {'req/s':>9} {'p50 ms':>8} {'p99 ms':>8} "
              f"{'errors':>7} {'CPU ms/request: app':>20} {'db':>6} {'wrk':>6} "
              f"{'floor/s':>9} {'ratio':>6}")  # fmt: skip
        rps = {}
        for name in args.scenarios.split(","):
            lua = SCENARIOS[name]
            for conns in connections:
                # A short warm-up: every worker connected, its statements prepared.
                run_wrk(lua, key, args.port, conns, 1)
                app = process_group(server.pid)  # make, gunicorn's master and workers
                with psycopg.connect(database_url) as conn:
                    backends = database_backends(conn)
                app_cpu, db_cpu = cpu_seconds(app), cpu_seconds(backends)
                result = run_wrk(lua, key, args.port, conns, args.duration)
                per_request = 1000 / result["requests"]
                app_cpu = (cpu_seconds(app) - app_cpu) * per_request
                db_cpu = (cpu_seconds(backends) - db_cpu) * per_request
                rps[name, conns] = result["rps"]
                floor = raw_floor(name, database_url, conns, args.duration)
                print(
                    f"{name:<8} {conns:>5} {result['rps']:>9.0f} {result['p50']:>8.1f} "
                    f"{result['p99']:>8.1f} {result['errors']:>7} {app_cpu:>20.3f} "
                    f"{db_cpu:>6.3f} {result['wrk_cpu'] * per_request:>6.3f} "
                    + (f"{floor:>9.0f} {result['rps'] / floor:>6.2f}" if floor else ""),
                    flush=True,
                )
        pgbench = run_pgbench(database_url, args.duration)
        print(f"pgbench, the upsert's write, 2 clients: {pgbench:.0f} tps")
        for conns in connections:
            if ("upsert", conns) in rps:
                ratio = rps["upsert", conns] / pgbench
                print(f"upsert ÷ pgbench at {conns} connections: {ratio:.2f}")
            if ("get-by", conns) in rps and ("minimal", conns) in rps:
                ratio = rps["get-by", conns] / rps["minimal", conns]
                print(f"get-by ÷ minimal view at {conns} connections: {ratio:.2f}")


@contextlib.contextmanager
def serving(
    database: str, port: int, workers: int, gunicorn_args: str = ""
) -> Iterator[tuple[subprocess.Popen, str, str]]:
    """`make serve` on a fresh, seeded database, with the minimal view's route; yields the server
    (`make`, in a process group of its own), the database's URL and an API key."""
    database_url, env = fresh_database(database)
    # The throttle stays on (its count is part of every request's cost) but never refuses.
    env["API_KEY_THROTTLE_RATE"] = "100000000/min"
    created = manage("create_api_key", "load-test", "-v0", env=env, capture_output=True, text=True)
    key = created.stdout.strip().splitlines()[-1]
    manage("shell", "-v0", "-c", seed_script(), env=env)
    served = {
        **env,
        "BIND": f"127.0.0.1:{port}",
        "WEB_CONCURRENCY": str(workers),
        # The service's settings plus the minimal view's route.
        "DJANGO_SETTINGS_MODULE": "minimal_settings",
        "PYTHONPATH": os.pathsep.join([str(ROOT / "bench"), str(ROOT)]),
        "GUNICORN_CMD_ARGS": f"--log-level warning {gunicorn_args}",
    }
    server = subprocess.Popen(["make", "-s", "serve"], env=served, cwd=ROOT, start_new_session=True)
    try:
        wait_for(f"http://127.0.0.1:{port}/healthz")
        yield server, database_url, key
    finally:
        os.killpg(server.pid, signal.SIGTERM)
        server.wait(timeout=30)


def ensure_wrk() -> None:
    if shutil.which("wrk"):
        return
    print("wrk is missing: installing it from Debian's packages.", file=sys.stderr)
    subprocess.run(["apt-get", "update", "-qq"], check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=True)


def seed_script() -> str:
    return textwrap.dedent(f"""
        from datetime import timedelta
        from django.utils import timezone
        from consents.ledger import BatchItem, ChangeContext, ConfirmationActivity, ConsentChange
        from consents.ledger import consent_upsert_batch
        from consents.models import ClientApiKey
        from members.models import Member, MemberSession
        api_key = ClientApiKey.objects.get()
        for n in range({SESSIONS}):
            member = Member.objects.create(email=f"member-{{n}}@example.com")
            MemberSession.objects.create(
                correlation_id=f"load-{{n}}", member=member, channel="WEBSITE", api_key=api_key,
                expires_at=timezone.now() + timedelta(days=1))
        change = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM"))
        addresses = [f"stored-{{n}}@example.com" for n in range({STORED_CONSENTS})]
        addresses += [f"member-{{n}}@example.com" for n in range({SESSIONS})]
        consent_upsert_batch(
            items=[BatchItem("EMAIL", address, change) for address in addresses],
            context=ChangeContext(door="COMMAND", actor="bench"))
        # Statistics, as a production database has them (autovacuum gathers them within a
        # minute): without them the planner may probe the unique (type, address) index by type
        # alone and filter every consent of that type, and a prepared statement keeps that plan.
        from django.db import connection
        with connection.cursor() as cursor:
            cursor.execute("ANALYZE")
    """)


def wait_for(url: str) -> None:
    for _ in range(100):
        try:
            with urllib.request.urlopen(url, timeout=1):
                return
        except OSError:
            time.sleep(0.2)
    raise SystemExit(f"The service did not start at {url}.")


def run_wrk(lua: str, key: str, port: int, connections: int, duration: int) -> dict:
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as script:
        script.write(lua)
    threads = min(connections, 2)
    wrk = subprocess.Popen(
        [
            "wrk", f"-t{threads}", f"-c{connections}", f"-d{duration}s", "--latency",
            "-s", script.name,
            "-H", f"Authorization: Api-Key {key}",
            "-H", "Content-Type: application/json",
            f"http://127.0.0.1:{port}",
        ],
        stdout=subprocess.PIPE,
        text=True,
    )  # fmt: skip
    output = wrk.stdout.read()
    _, status, usage = os.wait4(wrk.pid, 0)  # wait4 for wrk's own CPU time
    wrk.returncode = os.waitstatus_to_exitcode(status)
    os.unlink(script.name)
    if wrk.returncode:
        raise SystemExit(f"wrk failed ({wrk.returncode}):\n{output}")
    non_2xx = re.search(r"Non-2xx or 3xx responses: (\d+)", output)
    socket_errors = re.search(
        r"Socket errors: connect (\d+), read (\d+), write (\d+), timeout (\d+)", output
    )
    errors = int(non_2xx.group(1)) if non_2xx else 0
    if socket_errors:
        errors += sum(int(g) for g in socket_errors.groups())
    return {
        "rps": float(re.search(r"Requests/sec:\s+([\d.]+)", output).group(1)),
        "p50": latency_ms(re.search(r"50%\s+([\d.]+\w+)", output).group(1)),
        "p99": latency_ms(re.search(r"99%\s+([\d.]+\w+)", output).group(1)),
        "errors": errors,
        "requests": int(re.search(r"(\d+) requests in", output).group(1)),
        "wrk_cpu": usage.ru_utime + usage.ru_stime,
    }


def latency_ms(text: str) -> float:
    value, unit = re.match(r"([\d.]+)(\w+)", text).groups()
    return float(value) * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60000.0}[unit]


# The floor: the SQL each scenario needs at the least, straight through psycopg.
FLOOR_SQL = {
    "upsert": [
        """INSERT INTO consents_marketingconsent (id, type, address, state, revision,
               confirmation_source, confirmation_description, confirmation_date,
               confirmation_opt_in_level, revoke_source, revoke_description, extended_fields,
               created_date, updated_date)
           VALUES (%(id)s, 'EMAIL', %(address)s, 'CONFIRMED', 1, 'FORM', '', now(),
               'SINGLE_CONFIRMATION', '', '', '{}', now(), now())
           ON CONFLICT (type, address) DO UPDATE SET revision = consents_marketingconsent.revision
           RETURNING id""",
        """INSERT INTO consents_consentevent (consent_id, type, address, kind, revision,
               previous_state, state, requested_state, activity_source, activity_description,
               activity_opt_in_level, activity_date, request, door, actor, request_id,
               user_agent, note, recorded_at)
           VALUES (%(id)s, 'EMAIL', %(address)s, 'CREATED', 1, '', 'CONFIRMED', 'CONFIRMED',
               'FORM', '', 'SINGLE_CONFIRMATION', now(), '{}', 'CONSENT_API', 'load', '', '', '',
               now())""",
    ],
    "put": [
        """SELECT m.email FROM members_membersession s JOIN members_member m ON m.id = s.member_id
           WHERE s.correlation_id = %(correlation_id)s AND s.expires_at > now()""",
        """UPDATE consents_marketingconsent SET state = 'CONFIRMED', revision = revision + 1
           WHERE type = 'EMAIL' AND address = %(member_email)s RETURNING id""",
        """INSERT INTO consents_consentevent (consent_id, type, address, kind, revision,
               previous_state, state, requested_state, activity_source, activity_description,
               activity_opt_in_level, request, door, actor, request_id, user_agent, note,
               recorded_at)
           VALUES (%(id)s, 'EMAIL', %(member_email)s, 'UPDATED', 2, 'CONFIRMED', 'CONFIRMED',
               'CONFIRMED', 'FORM', '', 'SINGLE_CONFIRMATION', '{}', 'MEMBER_API', 'load', '', '',
               '', now())""",
    ],
    "get-by": [
        """SELECT * FROM consents_marketingconsent WHERE type = 'EMAIL' AND address = %(stored)s""",
    ],
}


# pgbench's script: the upsert's write (the consent and its event) as one statement.
PGBENCH_SCRIPT = """\\set n random(1, 2000000000)
WITH consent AS (
  INSERT INTO consents_marketingconsent (id, type, address, state, revision,
      confirmation_source, confirmation_description, confirmation_date,
      confirmation_opt_in_level, revoke_source, revoke_description, extended_fields,
      created_date, updated_date)
  VALUES (gen_random_uuid(), 'EMAIL', 'pgbench-' || :n || '@example.com', 'CONFIRMED', 1,
      'FORM', '', now(), 'SINGLE_CONFIRMATION', '', '', '{}', now(), now())
  ON CONFLICT (type, address) DO UPDATE SET revision = consents_marketingconsent.revision
  RETURNING id, address)
INSERT INTO consents_consentevent (consent_id, type, address, kind, revision, previous_state,
    state, requested_state, activity_source, activity_description, activity_opt_in_level,
    activity_date, request, door, actor, request_id, user_agent, note, recorded_at)
SELECT id, 'EMAIL', address, 'CREATED', 1, '', 'CONFIRMED', 'CONFIRMED', 'FORM', '',
    'SINGLE_CONFIRMATION', now(), '{}', 'CONSENT_API', 'load', '', '', '', now() FROM consent;
"""


def run_pgbench(database_url: str, duration: int) -> float:
    """Transactions per second of pgbench running PGBENCH_SCRIPT with 2 clients."""
    with tempfile.NamedTemporaryFile("w", suffix=".sql", delete=False) as script:
        script.write(PGBENCH_SCRIPT)
    output = subprocess.run(
        ["pgbench", "-n", "-M", "prepared", "-c", "2", "-j", "2", "-T", str(duration),
         "-f", script.name, database_url],
        check=True,
        capture_output=True,
        text=True,
    ).stdout  # fmt: skip
    os.unlink(script.name)
    return float(re.search(r"tps = ([\d.]+)", output).group(1))


def raw_floor(scenario: str, database_url: str, connections: int, duration: int) -> float:
    """Operations per second of the scenario's SQL done by `connections` threads directly
    (0 for a scenario without SQL)."""
    if scenario not in FLOOR_SQL:
        return 0.0
    counts = [0] * connections
    deadline = time.monotonic() + duration

    def worker(index: int) -> None:
        with psycopg.connect(database_url) as conn:
            while time.monotonic() < deadline:
                n = random.randrange(SESSIONS)
                params = {
                    "id": uuid.uuid4(),
                    "address": f"floor-{uuid.uuid4().hex}@example.com",
                    "correlation_id": f"load-{n}",
                    "member_email": f"member-{n}@example.com",
                    "stored": f"stored-{random.randrange(STORED_CONSENTS)}@example.com",
                }
                with conn.transaction():
                    for sql in FLOOR_SQL[scenario]:
                        cursor = conn.execute(sql, params)
                        rows = cursor.fetchall() if cursor.description else []
                        if rows and "RETURNING" in sql:
                            params["id"] = rows[0][0]
                counts[index] += 1

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(connections)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return sum(counts) / duration


if __name__ == "__main__":
    main()
