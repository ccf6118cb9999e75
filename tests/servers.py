"""consentsite served by a real HTTP server in a child process: `runserver` (development) or
gunicorn with gunicorn.conf.py (production), on 127.0.0.1 and a free port, with its own SQLite
database prepared through manage.py."""

import contextlib
import http.client
import os
import socket
import subprocess
import sys
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

BASE_DIR = Path(__file__).resolve().parent.parent
SERVERS = ("runserver", "gunicorn")
MEMBERS_CSV = (
    "loyalty_id,external_id,email,phone,first_name,last_name\n"
    "LOY-ADA,,ada@example.com,+14155550123,Ada,Lovelace\n"
)


@dataclass(frozen=True)
class Answer:
    status: int
    headers: http.client.HTTPMessage
    body: bytes


@dataclass(frozen=True)
class Server:
    host: str
    port: int
    api_key: str

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    def request(
        self, method: str, path: str, body: bytes | None = None, headers: dict | None = None
    ) -> Answer:
        """Send exactly these headers (http.client adds Host and Content-Length only)."""
        connection = http.client.HTTPConnection(self.host, self.port, timeout=30)
        try:
            connection.request(method, path, body=body, headers=headers or {})
            response = connection.getresponse()
            return Answer(response.status, response.headers, response.read())
        finally:
            connection.close()


def server_environment(directory: Path) -> dict[str, str]:
    return {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "consentsite.settings",
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": "server-test-only-secret-key-0123456789-abcdefghij",
        "DATABASE_URL": f"sqlite:///{directory / 'db.sqlite3'}",
        "LOG_LEVEL": "WARNING",
        "PYTHONUNBUFFERED": "1",
    }


def manage(environment: dict[str, str], *args: str) -> str:
    done = subprocess.run(
        [sys.executable, "manage.py", *args],
        cwd=BASE_DIR,
        env=environment,
        capture_output=True,
        text=True,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    return done.stdout


def prepare_database(directory: Path) -> tuple[dict[str, str], str]:
    """Migrate a new database, create an API key and import one member (loyalty id LOY-ADA).
    Returns the server's environment and the key."""
    environment = server_environment(directory)
    manage(environment, "migrate", "--noinput")
    api_key = manage(environment, "create_api_key", "server-test").strip().splitlines()[-1]
    members = directory / "members.csv"
    members.write_text(MEMBERS_CSV, encoding="utf-8")
    manage(environment, "import_members", str(members), "--apply")
    return environment, api_key


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def server_command(kind: str, port: int) -> list[str]:
    address = f"127.0.0.1:{port}"
    if kind == "runserver":
        return [sys.executable, "manage.py", "runserver", "--noreload", address]
    return [
        sys.executable, "-m", "gunicorn", "-c", "gunicorn.conf.py", "--bind", address,
        "--workers", "1",
    ]  # fmt: skip


@contextlib.contextmanager
def running_server(
    kind: str, environment: dict[str, str], api_key: str, log: Path
) -> Iterator[Server]:
    """Start the server, wait until /healthz answers, and stop it afterwards."""
    port = free_port()
    with log.open("wb") as output:
        process = subprocess.Popen(
            server_command(kind, port),
            cwd=BASE_DIR,
            env=environment,
            stdout=output,
            stderr=subprocess.STDOUT,
        )
        server = Server("127.0.0.1", port, api_key)
        try:
            _wait_until_serving(server, process, log)
            yield server
        finally:
            process.terminate()
            process.wait(timeout=30)


def _wait_until_serving(server: Server, process: subprocess.Popen, log: Path) -> None:
    for _ in range(600):
        if process.poll() is not None:
            raise AssertionError(f"The server stopped:\n{log.read_text(errors='replace')}")
        with contextlib.suppress(OSError):
            if server.request("GET", "/healthz").status == 200:
                return
        with contextlib.suppress(subprocess.TimeoutExpired):
            process.wait(timeout=0.1)
    raise AssertionError(f"The server did not answer:\n{log.read_text(errors='replace')}")
