"""What the benchmarks share: a fresh PostgreSQL database and the service's environment on it."""

from __future__ import annotations

import os
import secrets
import subprocess
import sys
from pathlib import Path

import psycopg

ROOT = Path(__file__).resolve().parent.parent
PYTHON = sys.executable
ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"


def fresh_database(name: str) -> tuple[str, dict[str, str]]:
    """Drop and create the database `name`, migrate it; return its URL and an environment that
    runs the service (without debug) on it."""
    with psycopg.connect(ADMIN_URL, autocommit=True) as admin:
        admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        admin.execute(f'CREATE DATABASE "{name}"')
    database_url = f"postgres://postgres@127.0.0.1:5432/{name}"
    env = {
        **os.environ,
        "DJANGO_DEBUG": "false",
        "DJANGO_SECRET_KEY": secrets.token_urlsafe(50),
        "ERASURE_HASH_KEY": secrets.token_urlsafe(50),
        "DJANGO_ALLOWED_HOSTS": "127.0.0.1",
        "DATABASE_URL": database_url,
        "LOG_LEVEL": "WARNING",
    }
    manage("migrate", "-v0", env=env)
    return database_url, env


def manage(*args: str, env: dict[str, str], **kwargs: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [PYTHON, str(ROOT / "manage.py"), *args], env=env, check=True, cwd=ROOT, **kwargs
    )


def cpu_seconds(pids: list[int]) -> float:
    """User and system CPU time used so far by these processes (Linux), their threads included;
    a process that has exited counts as zero."""
    return sum(cpu_times(pids))


def cpu_times(pids: list[int]) -> tuple[float, float]:
    """User and system CPU time, apart, used so far by these processes (see cpu_seconds)."""
    user = system = 0
    for pid in pids:
        try:
            with open(f"/proc/{pid}/stat") as stat:
                fields = stat.read().rsplit(")", 1)[1].split()
        except FileNotFoundError:
            continue
        user, system = user + int(fields[11]), system + int(fields[12])  # utime, stime
    ticks = os.sysconf("SC_CLK_TCK")
    return user / ticks, system / ticks


def database_backends(conn: psycopg.Connection) -> list[int]:
    """The server processes of the clients connected to the database of `conn`, other than
    `conn`'s own."""
    rows = conn.execute(
        "SELECT pid FROM pg_stat_activity WHERE datname = current_database()"
        " AND backend_type = 'client backend' AND pid <> pg_backend_pid()"
    ).fetchall()
    return [pid for (pid,) in rows]


def process_group(pgid: int) -> list[int]:
    """The processes of a process group (a server started in a session of its own)."""
    pids = []
    for entry in os.listdir("/proc"):
        if entry.isdigit():
            try:
                with open(f"/proc/{entry}/stat") as stat:
                    fields = stat.read().rsplit(")", 1)[1].split()
            except FileNotFoundError:
                continue
            if int(fields[2]) == pgid:
                pids.append(int(entry))
    return pids
