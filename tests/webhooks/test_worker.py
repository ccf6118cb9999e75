"""Delivery by real Celery workers (`celery -A consentsite worker --beat`) on the configured
broker: Redis when CELERY_BROKER_URL names it (CI), else the filesystem transport."""

import contextlib
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from django.conf import settings

from consents.models import ConsentEvent
from consents.webhooks.models import WebhookAttempt
from tests.webhooks.test_delivery import endpoint_for, upsert

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

ROOT = Path(__file__).resolve().parents[2]
WAIT_SECONDS = 120


def start_worker(tmp_path: Path, **settings_env: str) -> subprocess.Popen:
    """A worker with its embedded beat on the test database; `settings_env` adds settings."""
    database = settings.DATABASES["default"]
    env = {
        **os.environ,
        "DJANGO_SETTINGS_MODULE": "consentsite.settings",
        "DATABASE_URL": (
            f"postgres://{database['USER']}@{database['HOST']}:{database['PORT']}/"
            f"{database['NAME']}"
        ),
        "CELERY_FILESYSTEM_BROKER_DIR": str(settings.CELERY_FILESYSTEM_BROKER_DIR),
        "WEBHOOK_ALLOW_INSECURE_TARGETS": "true",
        "WEBHOOK_RETRY_SCHEDULE": "0.2,0.5,1",
        "WEBHOOK_SWEEP_SECONDS": "1",
        "WEBHOOK_TIMEOUT_SECONDS": "1",
        "WEBHOOK_LEASE_SECONDS": "3",
        "LOG_LEVEL": "WARNING",
        **settings_env,
    }
    return subprocess.Popen(
        [
            sys.executable, "-m", "celery", "-A", "consentsite", "worker", "--beat",
            "--pool", "threads", "--concurrency", "4", "--loglevel", "WARNING",
            "--schedule", str(tmp_path / "beat-schedule"), "--without-heartbeat",
            "--without-gossip", "--without-mingle",
        ],
        cwd=ROOT,
        env=env,
        start_new_session=True,  # its own process group: the worker and its embedded beat
    )  # fmt: skip


def wait_until(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"gave up waiting: {what}")
        time.sleep(0.1)


def stop(worker: subprocess.Popen) -> None:
    """Stop a worker and its embedded beat (a child process)."""
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGTERM)
    try:
        worker.wait(20)
    except subprocess.TimeoutExpired:
        worker.kill()
        worker.wait()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(worker.pid, signal.SIGKILL)  # whatever of the group is still there


def in_order_once_each(received: list[int], expected: list[int]) -> bool:
    """Every expected event received, and each new one only after all before it."""
    first_sightings = list(dict.fromkeys(received))
    return first_sightings == expected


def test_a_worker_killed_mid_delivery_loses_nothing_and_keeps_order(
    webhook_settings, receiver, tmp_path
):
    def slowly(got):
        time.sleep(0.02)
        return 200

    receiver.answer = slowly
    endpoint = endpoint_for(receiver)
    worker = start_worker(tmp_path)
    try:
        ids = [upsert(f"k{n}@example.com").event.id for n in range(60)]
        wait_until(lambda: len(receiver.received) >= 10, "the first deliveries")
        os.killpg(worker.pid, signal.SIGKILL)
        worker.wait()
        ids += [upsert(f"late{n}@example.com").event.id for n in range(10)]
        assert len(set(receiver.ledger_event_ids())) < len(ids)

        worker = start_worker(tmp_path)
        wait_until(lambda: set(receiver.ledger_event_ids()) >= set(ids), "every event")
    finally:
        stop(worker)

    received = receiver.ledger_event_ids()
    assert in_order_once_each(received, ids)
    duplicates = len(received) - len(ids)
    print(f"{len(ids)} events, {duplicates} delivered twice after the kill")
    # After the restart, delivery resumed from the last event recorded as delivered.
    endpoint.refresh_from_db()
    assert endpoint.cursor == ConsentEvent.objects.order_by("-id").first().id


def test_a_receiver_down_for_a_while_gets_everything_in_order_after(
    webhook_settings, receiver, tmp_path
):
    receiver.status = 503
    endpoint = endpoint_for(receiver)
    worker = start_worker(tmp_path)
    try:
        ids = [upsert(f"d{n}@example.com").event.id for n in range(20)]
        wait_until(
            lambda: WebhookAttempt.objects.filter(status_code=503).count() >= 3,
            "three failed attempts",
        )
        receiver.status = 200
        wait_until(lambda: len(receiver.received) >= len(ids), "every event")
    finally:
        stop(worker)

    assert receiver.ledger_event_ids() == ids
    failed = set(WebhookAttempt.objects.filter(succeeded=False).values_list("event_id", flat=True))
    assert failed == {ids[0]}  # only the head was tried while the receiver was down
    endpoint.refresh_from_db()
    assert (endpoint.cursor, endpoint.head_attempts) == (ids[-1], 0)
