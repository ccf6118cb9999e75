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
