"""Waking endpoints when the ledger commits a change: one queued delivery per endpoint per
burst of commits. A wake that cannot be queued (broker down) is only late: the sweep finds it."""

from __future__ import annotations

import logging

from django.db import connection, transaction
from django.utils import timezone

from consents.webhooks.models import WebhookEndpoint

logger = logging.getLogger(__name__)


def on_changes_recorded(**kwargs) -> None:
    """The ledger's `changes_recorded` signal: wake the endpoints once the transaction commits."""
    transaction.on_commit(wake_endpoints)


def _asleep_endpoints() -> list[int]:
    """Active endpoints with no delivery queued and no retry pending. Every commit asks this,
    so it is one fixed statement rather than a query the ORM builds anew each time."""
    table = WebhookEndpoint._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE is_active AND NOT wake_pending"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= %s) ORDER BY id",
            [now],
        )
        return [row[0] for row in cursor.fetchall()]


def wake_endpoints() -> None:
    from consents.webhooks.tasks import deliver_endpoint

    try:
        for endpoint_id in _asleep_endpoints():
            claimed = WebhookEndpoint.objects.filter(id=endpoint_id, wake_pending=False)
            if not claimed.update(wake_pending=True):
                continue  # a concurrent commit woke it
            try:
                deliver_endpoint.delay(endpoint_id)
            except Exception:
                WebhookEndpoint.objects.filter(id=endpoint_id).update(wake_pending=False)
                raise
    except Exception:
        # The change is committed and its event is in the outbox: never fail the request.
        logger.exception("Could not queue change-event delivery; the sweep will pick it up.")
