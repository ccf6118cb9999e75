"""Waking endpoints when the ledger commits a change: one queued delivery per endpoint per
burst of commits. A wake that cannot be queued (broker down) is only late: the sweep finds it."""

from __future__ import annotations

import logging

from django.db import transaction

from consents.selectors import asleep_webhook_endpoints
from consents.webhooks.models import WebhookEndpoint

logger = logging.getLogger(__name__)


def on_changes_recorded(**kwargs) -> None:
    """The ledger's `changes_recorded` signal: wake the endpoints once the transaction commits."""
    transaction.on_commit(wake_endpoints)


def wake_endpoints() -> None:
    from consents.webhooks.tasks import deliver_endpoint

    try:
        for endpoint_id in asleep_webhook_endpoints():
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
