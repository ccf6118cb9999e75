"""consentsite/asgi.py serves with a bounded number of database connections: under ASGI each
request runs in a context of its own, so a connection kept for reuse would never be reused, only
left open, one more per request, until PostgreSQL refuses connections."""

import json
import subprocess
import sys

import pytest
from django.conf import settings

from tests.factories import ClientApiKeyFactory
from tests.servers import BASE_DIR

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

REQUESTS = 20

# Sends REQUESTS get-by requests (an address never stored: an empty answer) through
# consentsite.asgi's application, one after another as a server would (each in its own task),
# and prints the database's other connections before and after them.
DRIVER = """
import asyncio, json, sys, time
import psycopg
from consentsite.asgi import application
from django.db import connection

key, requests = sys.argv[1], int(sys.argv[2])
dsn = connection.get_connection_params()

def others():
    with psycopg.connect(dbname=dsn["dbname"], user=dsn.get("user"), host=dsn.get("host"),
                         port=dsn.get("port")) as probe:
        return probe.execute(
            "SELECT count(*) FROM pg_stat_activity"
            " WHERE datname = current_database() AND pid <> pg_backend_pid()"
            # This process's connections only (PGAPPNAME names them): another test's server
            # may still be closing its own, and an autovacuum worker may visit at any time.
            " AND application_name = 'asgi-driver'"
        ).fetchone()[0]

async def request():
    scope = {
        "type": "http", "asgi": {"version": "3.0"}, "http_version": "1.1", "method": "GET",
        "scheme": "http", "path": "/marketing-consent/v1/marketing-consent/get-by",
        "raw_path": b"/marketing-consent/v1/marketing-consent/get-by",
        "query_string": b"type=EMAIL&email=nobody@example.com", "root_path": "",
        "headers": [(b"host", b"127.0.0.1"), (b"authorization", f"Api-Key {key}".encode())],
        "client": ("127.0.0.1", 50000), "server": ("127.0.0.1", 80),
    }
    sent, bodies = [], [{"type": "http.request", "body": b"", "more_body": False}]
    async def receive():
        if bodies:
            return bodies.pop()
        await asyncio.Event().wait()  # the client stays connected
    async def send(message):
        sent.append(message)
    await asyncio.create_task(application(scope, receive, send))
    return sent[0]["status"]

before = others()
statuses = [asyncio.run(request()) for _ in range(requests)]
# A closed connection's server process may take a moment to leave pg_stat_activity; a leaked one
# stays open as long as this process lives, so waiting a little cannot hide a leak.
deadline = time.monotonic() + 5
after = others()
while after > before and time.monotonic() < deadline:
    time.sleep(0.05)
    after = others()
print(json.dumps({"before": before, "after": after, "statuses": statuses}))
"""


def test_asgi_requests_leave_no_database_connection_behind(tmp_path):
    api_key = ClientApiKeyFactory(name="asgi")
    database = settings.DATABASES["default"]
    environment = {
        "DJANGO_SETTINGS_MODULE": "consentsite.test_settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "DATABASE_CONN_MAX_AGE": "60",
        "PATH": "/usr/bin:/bin",
        "PGAPPNAME": "asgi-driver",
    }

    done = subprocess.run(
        [sys.executable, "-c", DRIVER, api_key.clear_key, str(REQUESTS)],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )

    assert done.returncode == 0, done.stderr
    counts = json.loads(done.stdout.strip().splitlines()[-1])
    assert counts["statuses"] == [200] * REQUESTS
    assert counts["after"] <= counts["before"]
