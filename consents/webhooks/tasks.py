"""Celery tasks: deliver one endpoint's pending events, send one event again, and the periodic
sweep that finds endpoints with work a lost message left behind."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings

from consents.selectors import event_by_id, webhook_endpoint_by_id, webhook_endpoints_due
from consents.webhooks import delivery


@shared_task(ignore_result=True)
def deliver_endpoint(endpoint_id: int) -> None:
    again = delivery.deliver_pending(endpoint_id)
    # Later retries are left to the sweep, rather than held in a worker's memory for hours.
    if again is not None and again <= settings.WEBHOOK_SWEEP_SECONDS:
        deliver_endpoint.apply_async((endpoint_id,), countdown=again)


@shared_task(ignore_result=True)
def redeliver_event(endpoint_id: int, event_id: int) -> None:
    delivery.redeliver(webhook_endpoint_by_id(endpoint_id), event_by_id(event_id))


@shared_task(ignore_result=True)
def sweep() -> None:
    """Queue a delivery for every active endpoint that has events past its cursor or a retry
    due, and is not being delivered right now."""
    for endpoint_id in webhook_endpoints_due():
        deliver_endpoint.delay(endpoint_id)
