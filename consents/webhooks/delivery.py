"""Delivering an endpoint's events: in ledger order, one worker at a time per endpoint, the head
event retried with backoff before anything after it is sent.

Ledger order is the event id. Ids are handed out when an event row is inserted, not when its
transaction commits, so a reader can see event 102 while 101's transaction is still open. An
endpoint's cursor therefore only moves over *settled* ids: on PostgreSQL, every id up to the
largest visible one once no writing transaction that began before we looked at it is still open
(a transaction holding an event id has written, so it has a transaction id). SQLite has one
writer at a time, so every visible id is settled. Nothing is ever skipped; a long transaction
only delays delivery.
"""

from __future__ import annotations

import logging
import random
import secrets
import threading
import time
from datetime import UTC, datetime, timedelta
from urllib.parse import urlsplit

import urllib3
from django.conf import settings
from django.db import connection, transaction
from django.db.models import Q
from django.utils import timezone
from standardwebhooks.webhooks import Webhook

from consents.models import ConsentEvent, MarketingConsent
from consents.selectors import (
    consents_after,
    first_event_since,
    latest_event_id,
    webhook_endpoint_by_id,
    webhook_endpoint_events,
    webhook_endpoint_has_work,
)
from consents.webhooks.models import WebhookAttempt, WebhookEndpoint
from consents.webhooks.payloads import encode, envelope, message_id
from consents.webhooks.targets import Target, UnsafeTarget, resolve

logger = logging.getLogger(__name__)

BATCH_SIZE = 200
ROUNDS_PER_TASK = 20
EXCERPT_CHARS = 500
SETTLE_POLLS = 100
SETTLE_POLL_SECONDS = 0.005

_SETTLED_SQL = """
SELECT EXISTS (
    SELECT 1 FROM pg_stat_activity
    WHERE datname = current_database() AND pid <> pg_backend_pid()
        AND backend_xid IS NOT NULL AND xact_start < %s
)
"""


def settled_event_id() -> int | None:
    """The largest event id up to which every id is settled (see the module's docstring), or
    None if writers that may hold a smaller id are still open after a short wait."""
    with connection.cursor() as cursor:
        cursor.execute("SELECT COALESCE(MAX(id), 0) FROM consents_consentevent")
        top = cursor.fetchone()[0]
        if connection.vendor != "postgresql":
            return top
        cursor.execute("SELECT clock_timestamp()")
        looked_at = cursor.fetchone()[0]
        for _ in range(SETTLE_POLLS):
            cursor.execute(_SETTLED_SQL, [looked_at])
            if not cursor.fetchone()[0]:
                return top
            time.sleep(SETTLE_POLL_SECONDS)
    return None


# --- one request ------------------------------------------------------------------------------

_local = threading.local()


def _pool(target: Target) -> urllib3.HTTPConnectionPool:
    """This thread's connection to a target, kept alive between events: one per address (a
    delivery sends one request at a time), with the request timeout."""
    pools = _local.__dict__.setdefault("pools", {})
    parts = urlsplit(target.connect_url)
    key = (parts.scheme, parts.hostname, parts.port, target.host)
    pool = pools.get(key)
    if pool is None:
        options = {
            "maxsize": 1,
            "timeout": urllib3.Timeout(settings.WEBHOOK_TIMEOUT_SECONDS),
            "retries": False,
        }
        if parts.scheme == "https":
            # TLS and certificate checks for the host name, on the connection to its address.
            options |= {"server_hostname": target.host, "assert_hostname": target.host}
        pool = pools[key] = urllib3.connection_from_url(target.connect_url, **options)
    return pool


def signature_header(endpoint: WebhookEndpoint, msg_id: str, at: datetime, body: str) -> str:
    """`webhook-signature`: one `v1,…` signature per secret that signs now, space-separated."""
    return " ".join(
        Webhook(secret).sign(msg_id, at, body) for secret in endpoint.signing_secrets(at)
    )


def send(
    endpoint: WebhookEndpoint,
    event: ConsentEvent,
    consent: MarketingConsent,
    *,
    redelivery: bool = False,
) -> WebhookAttempt:
    """POST one event to one endpoint, with its consent as it was right after it; return the
    attempt (unsaved)."""
    body = encode(envelope(event, consent))
    msg_id = message_id(event)
    at = datetime.now(UTC)
    attempt = WebhookAttempt(endpoint=endpoint, event=event, redelivery=redelivery)
    headers = {
        "content-type": "application/json",
        "user-agent": "consentsite-webhooks",
        "webhook-id": msg_id,
        "webhook-timestamp": str(int(at.timestamp())),
        "webhook-signature": signature_header(endpoint, msg_id, at, body),
    }
    started = time.monotonic()
    try:
        target = resolve(endpoint.url)
        if target.host:
            headers["host"] = target.host
        parts = urlsplit(target.connect_url)
        response = _pool(target).urlopen(
            "POST",
            parts._replace(scheme="", netloc="").geturl() or "/",
            body=body.encode(),
            headers=headers,
            redirect=False,
            assert_same_host=False,
        )
    except UnsafeTarget as exc:
        attempt.error = f"Refused: {exc}"[:300]
    except urllib3.exceptions.NewConnectionError as exc:  # a subclass of the timeouts
        attempt.error = f"{type(exc).__name__}: {exc}"[:300]
    except urllib3.exceptions.TimeoutError:
        attempt.error = "Timed out."
    except urllib3.exceptions.HTTPError as exc:
        attempt.error = f"{type(exc).__name__}: {exc}"[:300]
    else:
        attempt.status_code = response.status
        attempt.succeeded = 200 <= response.status < 300
        attempt.response_excerpt = response.data.decode(errors="replace")[:EXCERPT_CHARS]
        if not attempt.succeeded:
            attempt.error = f"HTTP {response.status}"
    attempt.duration_ms = int((time.monotonic() - started) * 1000)
    attempt.attempted_at = timezone.now()
    return attempt


# --- the lease --------------------------------------------------------------------------------


def _lease_until() -> datetime:
    return timezone.now() + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)


def _acquire(endpoint_id: int) -> str | None:
    token = secrets.token_hex(16)
    now = timezone.now()
    taken = (
        WebhookEndpoint.objects.filter(id=endpoint_id, is_active=True)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .update(lease_token=token, lease_expires_at=_lease_until())
    )
    return token if taken else None


def _held(endpoint_id: int, token: str):
    return WebhookEndpoint.objects.filter(id=endpoint_id, lease_token=token)


def _renew(endpoint_id: int, token: str) -> bool:
    return bool(_held(endpoint_id, token).update(lease_expires_at=_lease_until()))


def _release(endpoint_id: int, token: str) -> None:
    _held(endpoint_id, token).update(lease_token="", lease_expires_at=None)


# --- draining an endpoint ---------------------------------------------------------------------


def retry_delay(failures: int) -> float:
    """Seconds before retrying a head event that has failed `failures` times: the schedule's
    step (its last step once past its end), with up to ±20% jitter."""
    schedule = settings.WEBHOOK_RETRY_SCHEDULE
    step = schedule[min(failures, len(schedule)) - 1]
    return step * random.uniform(0.8, 1.2)


def deliver_pending(endpoint_id: int) -> float | None:
    """Deliver what is due for one endpoint. Returns the seconds after which delivery should
    run again for it (a retry, or more events), or None when nothing is left to do.

    A commit queues a delivery only when the endpoint's `wake_pending` is clear, and only the
    lease's holder clears it, when it has caught up; it then looks once more, so a commit that
    found the flag set is delivered by the holder. A delivery that finds the lease taken leaves
    the flag alone: the holder looks again after releasing it."""
    token = _acquire(endpoint_id)
    if token is None:
        return None
    try:
        again = _drain(endpoint_id, token)
    finally:
        _release(endpoint_id, token)
    if again is None and webhook_endpoint_has_work(endpoint_id):
        return 0.0  # events committed while we were releasing
    return again


def _drain(endpoint_id: int, token: str) -> float | None:
    for _ in range(ROUNDS_PER_TASK):
        endpoint = webhook_endpoint_by_id(endpoint_id)
        if not endpoint.is_active or endpoint.lease_token != token:
            return None
        now = timezone.now()
        if endpoint.next_attempt_at is not None and endpoint.next_attempt_at > now:
            return None  # the failure that set it queued its retry (and the sweep finds it)
        settled = settled_event_id()
        if settled is None:
            return settings.WEBHOOK_SWEEP_SECONDS / 2
        if settled <= endpoint.cursor:
            if not endpoint.wake_pending:
                return None
            # Caught up: commits from now on queue a delivery; look once more for earlier ones.
            _held(endpoint_id, token).update(wake_pending=False)
            continue
        events = webhook_endpoint_events(
            endpoint, after=endpoint.cursor, up_to=settled, limit=BATCH_SIZE
        )
        consents = consents_after(events)
        delivered: list[WebhookAttempt] = []
        failed = None
        renewed_at = 0.0
        for event in events:
            # Renew the lease when less than half of it is left (it outlasts any one request).
            if time.monotonic() - renewed_at > settings.WEBHOOK_LEASE_SECONDS / 2:
                if not _renew(endpoint_id, token):
                    break
                renewed_at = time.monotonic()
            attempt = send(endpoint, event, consents[event.id])
            if not attempt.succeeded:
                failed = attempt
                break
            delivered.append(attempt)
        done_to = settled if failed is None and len(events) < BATCH_SIZE else None
        if delivered and done_to is None:
            done_to = delivered[-1].event_id
        if not _record(endpoint, token, delivered, done_to):
            return None
        if failed is not None:
            return _record_failure(endpoint, token, failed)
        if len(delivered) < len(events):
            return None  # lost the lease
    return 0.0


def _record(
    endpoint: WebhookEndpoint, token: str, delivered: list[WebhookAttempt], done_to: int | None
) -> bool:
    """Save successful attempts and move the cursor past them, if we still hold the lease."""
    with transaction.atomic():
        if done_to is not None and done_to > endpoint.cursor:
            changes = {"cursor": done_to}
            if delivered:
                changes |= {
                    "head_attempts": 0,
                    "next_attempt_at": None,
                    "failing_since": None,
                    "last_delivered_at": delivered[-1].attempted_at,
                }
            if not _held(endpoint.id, token).update(**changes):
                return False
            endpoint.cursor = done_to
        WebhookAttempt.objects.bulk_create(delivered)
    return True


def _record_failure(endpoint: WebhookEndpoint, token: str, attempt: WebhookAttempt) -> float | None:
    """Save a failed attempt of the head event; schedule its retry, or disable the endpoint
    on 410 Gone. Once the schedule is used up the endpoint is marked failing and the head is
    still retried, at the schedule's last step: nothing after it is skipped."""
    attempt.save()
    held = _held(endpoint.id, token)
    if attempt.status_code == 410:
        held.update(is_active=False, disabled_reason=f"410 Gone on {attempt.attempted_at:%c} UTC")
        return None
    failures = endpoint.head_attempts + 1
    delay = retry_delay(failures)
    changes = {
        "head_attempts": failures,
        "next_attempt_at": timezone.now() + timedelta(seconds=delay),
    }
    if failures >= len(settings.WEBHOOK_RETRY_SCHEDULE) and endpoint.failing_since is None:
        changes["failing_since"] = timezone.now()
    held.update(**changes)
    return delay


# --- operator actions --------------------------------------------------------------------------


def redeliver(endpoint: WebhookEndpoint, event: ConsentEvent) -> WebhookAttempt:
    """Send one event again, outside the ordered stream (the consumer sees the same id)."""
    attempt = send(endpoint, event, consents_after([event])[event.id], redelivery=True)
    attempt.save()
    return attempt


def replay_since(endpoint: WebhookEndpoint, since: datetime) -> None:
    """Deliver again, in order, every event recorded since `since`. A delivery running for the
    endpoint loses its lease and stops."""
    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        cursor=starting_cursor(since),
        head_attempts=0,
        next_attempt_at=None,
        failing_since=None,
        lease_token="",
        lease_expires_at=None,
    )


def starting_cursor(since: datetime | None) -> int:
    """The cursor of a new endpoint: after the latest event ("from now"), or before the first
    event recorded since `since`."""
    first = first_event_since(since) if since is not None else None
    return first.id - 1 if first else latest_event_id()


def rotate_secret(endpoint: WebhookEndpoint) -> str:
    """Give the endpoint a new secret; the old one keeps signing for the overlap period."""
    from consents.webhooks.models import new_secret

    endpoint.previous_secret = endpoint.secret
    endpoint.previous_secret_expires_at = timezone.now() + timedelta(
        seconds=settings.WEBHOOK_SECRET_OVERLAP_SECONDS
    )
    endpoint.secret = new_secret()
    endpoint.save(update_fields=["secret", "previous_secret", "previous_secret_expires_at"])
    return endpoint.secret


def create_endpoint(
    *,
    url: str,
    event_types: list[str],
    consent_type: str = "",
    description: str = "",
    since: datetime | None = None,
) -> WebhookEndpoint:
    """A new endpoint, starting after the latest event, or replaying from `since`. Refuses
    unsafe URLs (UnsafeTarget) and unknown event types (ValueError)."""
    from consents.webhooks.models import EventType
    from consents.webhooks.targets import check_url

    check_url(url)
    unknown = sorted(set(event_types) - set(EventType.values))
    if unknown or not event_types:
        raise ValueError(f"Event types must be among {', '.join(EventType.values)}.")
    return WebhookEndpoint.objects.create(
        url=url,
        event_types=[t for t in EventType.values if t in event_types],
        consent_type=consent_type,
        description=description,
        cursor=starting_cursor(since),
    )
