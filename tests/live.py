"""A live stack for fault tests: a throwaway PostgreSQL cluster of the test's own (on its own
port, in a temporary directory, stopped and started by the test; never the shared server) and the
app served by gunicorn against it, as in production."""

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

import psycopg

REPOSITORY = Path(__file__).resolve().parent.parent
POSTGRES_BINARIES = sorted(Path("/usr/lib/postgresql").glob("*/bin"))


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def wait_for(condition, what: str, attempts: int = 300) -> None:
    """Poll `condition` every 0.1 s until it holds (a failure names what never happened)."""
    for _ in range(attempts):
        if condition():
            return
        time.sleep(0.1)
    raise AssertionError(f"Never happened: {what}")


class ThrowawayPostgres:
    """A PostgreSQL cluster made for one test module. PostgreSQL refuses to run as root, so as
    root the cluster belongs to the `postgres` user."""

    def __init__(self) -> None:
        self.directory = Path(tempfile.mkdtemp(prefix="consentsite-pg-"))
        self.port = free_port()
        self.url = f"postgres://postgres@127.0.0.1:{self.port}/postgres"
        self.as_owner = ["runuser", "-u", "postgres", "--"] if os.geteuid() == 0 else []
        if self.as_owner:
            shutil.chown(self.directory, "postgres")
        self.bin = POSTGRES_BINARIES[-1]
        self._run(
            "initdb", "-D", "data", "-U", "postgres", "--auth=trust", "--no-sync", "-E", "UTF8"
        )

    def _run(self, program: str, *args: str) -> None:
        subprocess.run(
            [*self.as_owner, str(self.bin / program), *args],
            cwd=self.directory,
            check=True,
            capture_output=True,
        )

    def start(self) -> None:
        options = f"-p {self.port} -k {self.directory} -c listen_addresses=127.0.0.1 -c fsync=off"
        self._run("pg_ctl", "-D", "data", "-l", "server.log", "-w", "-o", options, "start")

    def stop(self) -> None:
        self._run("pg_ctl", "-D", "data", "-m", "fast", "-w", "stop")

    @contextmanager
    def frozen(self) -> Iterator[None]:
        """The server stops answering new connections (its postmaster is stopped, SIGSTOP) but
        its port stays open: a connection attempt hangs rather than fails."""
        postmaster = int((self.directory / "data" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGSTOP)
        try:
            yield
        finally:
            os.kill(postmaster, signal.SIGCONT)

    def connect(self, **kwargs) -> psycopg.Connection:
        return psycopg.connect(self.url.replace("postgres://", "postgresql://"), **kwargs)

    def remove(self) -> None:
        shutil.rmtree(self.directory, ignore_errors=True)


@dataclass
class Answer:
    status: int
    headers: dict[str, str]
    body: object

    @classmethod
    def of(cls, status: int, headers: object, content: bytes) -> "Answer":
        headers = dict(headers)
        json_body = headers.get("Content-Type", "").startswith("application/json")
        return cls(status, headers, json.loads(content) if json_body else content.decode())


class AppServer:
    """The app under gunicorn (one worker of four threads, as in production but smaller)."""

    def __init__(self, database_url: str, directory: Path, **settings: str) -> None:
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.env = {
            **os.environ,
            "DATABASE_URL": database_url,
            "DJANGO_SECRET_KEY": "live-fault-tests-only-secret-key-4Jx9qLm2vZ",
            "DJANGO_DEBUG": "false",
            "API_KEY_CACHE_SECONDS": "0",
            "LOG_LEVEL": "WARNING",
            **settings,
        }
        self.env.pop("DJANGO_SETTINGS_MODULE", None)
        self.log = open(directory / "app.log", "ab")  # noqa: SIM115 - closed by stop()
        self.process: subprocess.Popen | None = None

    def manage(self, *args: str) -> str:
        done = subprocess.run(
            [sys.executable, "manage.py", *args],
            cwd=REPOSITORY,
            env=self.env,
            check=True,
            capture_output=True,
            text=True,
        )
        return done.stdout

    def start(self) -> None:
        self.process = subprocess.Popen(
            [
                *(sys.executable, "-m", "gunicorn", "consentsite.wsgi"),
                *("--bind", f"127.0.0.1:{self.port}", "--workers", "1", "--threads", "4"),
            ],
            cwd=REPOSITORY,
            env=self.env,
            stdout=self.log,
            stderr=self.log,
        )
        wait_for(self.answers, "the app answered")

    def answers(self) -> bool:
        try:
            urllib.request.urlopen(f"{self.url}/healthz", timeout=5).close()
        except urllib.error.HTTPError:
            return True
        except OSError:
            return False
        return True

    def worker_pids(self) -> list[int]:
        """The gunicorn worker processes (children of the master)."""
        pids = []
        for stat in Path("/proc").glob("[0-9]*/stat"):
            try:
                fields = stat.read_text().rsplit(")", 1)[1].split()
            except OSError:
                continue
            if int(fields[1]) == self.process.pid:
                pids.append(int(stat.parent.name))
        return pids

    def kill_worker(self) -> None:
        """kill -9 the worker, as the OOM killer or gunicorn's timeout would; the master starts
        another."""
        [worker] = self.worker_pids()
        os.kill(worker, signal.SIGKILL)
        wait_for(lambda: self.worker_pids() not in ([], [worker]), "a new worker started")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)
        self.log.close()

    def send(self, method: str, path: str, body: object = None, **headers: str) -> Answer:
        """Send a request (a JSON body); its answer, with a JSON body read as such."""
        request = urllib.request.Request(
            f"{self.url}{path}",
            data=None if body is None else json.dumps(body).encode(),
            method=method,
            headers={"Content-Type": "application/json", **headers},
        )
        try:
            with urllib.request.urlopen(request, timeout=30) as response:
                return Answer.of(response.status, response.headers, response.read())
        except urllib.error.HTTPError as error:
            return Answer.of(error.code, error.headers, error.read())


@dataclass
class LiveStack:
    postgres: ThrowawayPostgres
    app: AppServer
    api_key: str


@contextmanager
def live_stack(**settings: str) -> Iterator[LiveStack]:
    """A throwaway cluster, migrated, with an API key, and the app served against it."""
    postgres = ThrowawayPostgres()
    postgres.start()
    app = AppServer(postgres.url, postgres.directory, **settings)
    try:
        app.manage("migrate", "--noinput", "-v", "0")
        # The demo members and consents, and a fresh API key (its last line).
        api_key = app.manage("seed_demo").split()[-1]
        app.start()
        try:
            yield LiveStack(postgres, app, api_key)
        finally:
            app.stop()
    finally:
        subprocess.run(
            [
                *postgres.as_owner,
                str(postgres.bin / "pg_ctl"),
                "-D",
                "data",
                "-m",
                "immediate",
                "stop",
            ],
            cwd=postgres.directory,
            capture_output=True,
        )
        postgres.remove()
