"""Celery tasks: deliver one endpoint's pending events, send one event again, and the periodic
sweep that finds endpoints with work a lost message left behind."""

from __future__ import annotations

from celery import shared_task
from django.conf import settings
from django.db.models import Q
from django.utils import timezone

from consents.models import ConsentEvent
from consents.webhooks import delivery
from consents.webhooks.models import WebhookEndpoint


@shared_task(ignore_result=True)
def deliver_endpoint(endpoint_id: int) -> None:
    again = delivery.deliver_pending(endpoint_id)
    # Later retries are left to the sweep, rather than held in a worker's memory for hours.
    if again is not None and again <= settings.WEBHOOK_SWEEP_SECONDS:
        deliver_endpoint.apply_async((endpoint_id,), countdown=again)


@shared_task(ignore_result=True)
def redeliver_event(endpoint_id: int, event_id: int) -> None:
    endpoint = WebhookEndpoint.objects.get(id=endpoint_id)
    delivery.redeliver(endpoint, ConsentEvent.objects.get(id=event_id))


@shared_task(ignore_result=True)
def sweep() -> None:
    """Queue a delivery for every active endpoint that has events past its cursor or a retry
    due, and is not being delivered right now."""
    now = timezone.now()
    latest = ConsentEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0
    due = (
        WebhookEndpoint.objects.filter(is_active=True)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, cursor__lt=latest))
        .values_list("id", flat=True)
    )
    for endpoint_id in due:
        deliver_endpoint.delay(endpoint_id)
