"""Delivery of change events to a live receiver, by the same code a worker runs."""

import json
import time
from datetime import timedelta
from pathlib import Path

import pytest
from django.utils import timezone

from consents.dates import format_date
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_delete,
    consent_upsert,
)
from consents.models import ConsentEvent, Door
from consents.webhooks import delivery
from consents.webhooks.models import EventType, WebhookAttempt, WebhookEndpoint
from consents.webhooks.payloads import ENTITY_FQDN, message_id

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door=Door.CONSENT_API, actor="crm-sync", request_id="req-1")
CONFIRM = ConsentChange(
    state="CONFIRMED",
    confirmation=ConfirmationActivity(source="FORM", opt_in_level="SINGLE_CONFIRMATION"),
)
REVOKE = ConsentChange(state="REVOKED", revoke=RevokeActivity(source="FORM"))


def upsert(address, change=CONFIRM, type="EMAIL"):
    return consent_upsert(type=type, address=address, change=change, context=CONTEXT)


def endpoint_for(receiver, **options):
    options.setdefault("event_types", EventType.values)
    return delivery.create_endpoint(url=receiver.url, **options)


def deliver_all(endpoint, rounds=200):
    """Run deliveries for an endpoint until nothing is left, waiting out its retries."""
    for _ in range(rounds):
        again = delivery.deliver_pending(endpoint.id)
        if again is None:
            endpoint.refresh_from_db()
            return endpoint
        time.sleep(again)
    raise AssertionError("deliveries did not finish")


def test_a_change_is_delivered_signed_in_the_platform_envelope(webhook_settings, receiver):
    endpoint = endpoint_for(receiver)
    result = upsert("ann@example.com")

    deliver_all(endpoint)

    [got] = receiver.received
    assert got.verified_by(endpoint.secret)
    event = result.event
    assert got.headers["webhook-id"] == message_id(event)
    entity = {
        "id": str(result.consent.id),
        "revision": "1",
        "details": {"type": "EMAIL", "email": "ann@example.com"},
        "state": "CONFIRMED",
        "lastConfirmationActivity": {
            "source": "FORM",
            "updatedDate": format_date(result.consent.confirmation_date),
            "optInLevel": "SINGLE_CONFIRMATION",
        },
        "extendedFields": {},
        "createdDate": format_date(result.consent.created_date),
        "updatedDate": format_date(result.consent.updated_date),
    }
    body = got.json()
    assert json.loads(body["createdEvent"]["entityAsJson"]) == entity
    assert body == {
        "id": message_id(event),
        "entityFqdn": ENTITY_FQDN,
        "slug": "created",
        "entityId": str(result.consent.id),
        "eventTime": format_date(event.recorded_at),
        "createdEvent": {"entityAsJson": body["createdEvent"]["entityAsJson"]},
        "consentProof": {
            "ledgerEventId": event.id,
            "kind": "CREATED",
            "previousState": "",
            "state": "CONFIRMED",
            "revision": "1",
            "door": "CONSENT_API",
            "actor": "crm-sync",
            "requestId": "req-1",
        },
    }
    attempt = WebhookAttempt.objects.get()
    assert (attempt.event_id, attempt.status_code, attempt.succeeded, attempt.error) == (
        event.id,
        200,
        True,
        "",
    )
    assert attempt.response_excerpt == "ok"
    endpoint.refresh_from_db()
    assert endpoint.cursor == event.id
    assert endpoint.last_delivered_at == attempt.attempted_at


def test_the_consent_api_shows_the_delivered_entity(webhook_settings, receiver, api_client):
    endpoint = endpoint_for(receiver)
    result = upsert("bob@example.com")
    deliver_all(endpoint)
    shown = api_client.get(f"/marketing-consent/v1/marketing-consent/{result.consent.id}")
    delivered = json.loads(receiver.received[0].json()["createdEvent"]["entityAsJson"])
    assert delivered == shown.json()["marketingConsent"]


def test_events_are_delivered_in_ledger_order_and_filtered(webhook_settings, receiver):
    endpoint = endpoint_for(receiver, event_types=[EventType.CREATED, EventType.DELETED])
    everything = endpoint_for(receiver, consent_type="EMAIL")
    first = upsert("cat@example.com")
    upsert("cat@example.com", REVOKE)
    upsert("+14155550100", type="PHONE")
    upsert("cat@example.com", REVOKE)  # UNCHANGED: not a change event
    consent_delete(consent_id=first.consent.id, context=CONTEXT)

    deliver_all(endpoint)
    slugs = [(got.json()["slug"], got.json()["entityId"]) for got in receiver.received]
    assert [slug for slug, _ in slugs] == ["created", "created", "deleted"]
    receiver.received.clear()

    deliver_all(everything)
    events = ConsentEvent.objects.filter(type="EMAIL", kind__in=["CREATED", "UPDATED", "DELETED"])
    assert receiver.ledger_event_ids() == sorted(events.values_list("id", flat=True))
    assert [got.json()["slug"] for got in receiver.received] == ["created", "updated", "deleted"]
    deleted = receiver.received[-1].json()["deletedEvent"]
    assert json.loads(deleted["deletedEntityAsJson"])["state"] == "REVOKED"
    assert deleted["movedToTrash"] is False
    latest = ConsentEvent.objects.order_by("-id").first().id
    assert [e.cursor for e in WebhookEndpoint.objects.order_by("id")] == [latest, latest]


def test_an_endpoint_starts_from_now_or_replays_from_a_time(webhook_settings, receiver):
    old = upsert("dan@example.com")
    newer = upsert("eve@example.com")
    later = newer.event.recorded_at
    from_now = endpoint_for(receiver)
    deliver_all(from_now)
    assert receiver.received == []

    replaying = endpoint_for(receiver, since=later)
    deliver_all(replaying)
    assert receiver.ledger_event_ids() == [newer.event.id]
    assert old.event.id not in receiver.ledger_event_ids()


def test_receiver_down_means_retries_then_catching_up_in_order(webhook_settings, receiver):
    answers = iter([503, 503, 500])
    receiver.answer = lambda got: next(answers, 200)
    endpoint = endpoint_for(receiver)
    ids = [upsert(f"p{n}@example.com").event.id for n in range(5)]

    deliver_all(endpoint)

    assert receiver.ledger_event_ids() == ids
    failed = WebhookAttempt.objects.filter(succeeded=False).order_by("id")
    assert [(a.event_id, a.status_code, a.error) for a in failed] == [
        (ids[0], 503, "HTTP 503"),
        (ids[0], 503, "HTTP 503"),
        (ids[0], 500, "HTTP 500"),
    ]
    assert WebhookAttempt.objects.filter(succeeded=True).count() == 5
    assert (endpoint.cursor, endpoint.head_attempts, endpoint.next_attempt_at) == (ids[-1], 0, None)


def test_a_timeout_is_retried(webhook_settings, receiver):
    webhook_settings.WEBHOOK_TIMEOUT_SECONDS = 0.2
    slow = iter([True])

    def answer(got):
        if next(slow, False):
            time.sleep(0.5)
        return 200

    receiver.answer = answer
    endpoint = endpoint_for(receiver)
    event = upsert("slow@example.com").event
    delivery._local.__dict__.clear()  # a client with this test's timeout

    deliver_all(endpoint)

    attempts = list(WebhookAttempt.objects.order_by("id").values_list("error", "succeeded"))
    assert attempts == [("Timed out.", False), ("", True)]
    assert receiver.ledger_event_ids()[-1] == event.id
    delivery._local.__dict__.clear()


def test_used_up_retries_mark_the_endpoint_failing_and_hold_the_head(webhook_settings, receiver):
    receiver.status = 500
    endpoint = endpoint_for(receiver)
    ids = [upsert(f"q{n}@example.com").event.id for n in range(2)]

    for _ in range(len(webhook_settings.WEBHOOK_RETRY_SCHEDULE)):
        time.sleep(max(delivery.deliver_pending(endpoint.id) or 0, 0))
    endpoint.refresh_from_db()

    assert endpoint.failing_since is not None
    assert endpoint.cursor < ids[0]
    assert set(WebhookAttempt.objects.values_list("event_id", flat=True)) == {ids[0]}
    receiver.status = 200
    deliver_all(endpoint)
    assert receiver.ledger_event_ids() == ids
    assert endpoint.failing_since is None


def test_410_gone_disables_the_endpoint(webhook_settings, receiver):
    receiver.status = 410
    endpoint = endpoint_for(receiver)
    upsert("gone@example.com")
    upsert("gone2@example.com")

    deliver_all(endpoint)

    assert not endpoint.is_active
    assert endpoint.disabled_reason.startswith("410 Gone on ")
    assert WebhookAttempt.objects.count() == 1
    assert delivery.deliver_pending(endpoint.id) is None
    assert WebhookAttempt.objects.count() == 1


def test_a_rotated_secret_signs_with_both_during_the_overlap(webhook_settings, receiver):
    endpoint = endpoint_for(receiver)
    old_secret = endpoint.secret
    new_secret = delivery.rotate_secret(endpoint)
    assert new_secret != old_secret
    upsert("rot@example.com")
    deliver_all(endpoint)
    [during] = receiver.received
    assert during.verified_by(old_secret) and during.verified_by(new_secret)
    assert len(during.headers["webhook-signature"].split(" ")) == 2

    WebhookEndpoint.objects.filter(id=endpoint.id).update(
        previous_secret_expires_at=timezone.now() - timedelta(seconds=1)
    )
    upsert("rot2@example.com")
    deliver_all(endpoint)
    after = receiver.received[1]
    assert after.verified_by(new_secret)
    assert not after.verified_by(old_secret)


def test_replay_since_delivers_again_in_order(webhook_settings, receiver):
    endpoint = endpoint_for(receiver)
    events = [upsert(f"r{n}@example.com").event for n in range(3)]
    before, ids = events[0].recorded_at, [event.id for event in events]
    deliver_all(endpoint)

    delivery.replay_since(endpoint, before)
    deliver_all(endpoint)

    assert receiver.ledger_event_ids() == ids + ids
    first, again = receiver.received[0], receiver.received[3]
    assert first.headers["webhook-id"] == again.headers["webhook-id"]


def test_redeliver_sends_one_event_again_outside_the_stream(webhook_settings, receiver):
    endpoint = endpoint_for(receiver)
    events = [upsert(f"s{n}@example.com").event for n in range(2)]
    deliver_all(endpoint)

    attempt = delivery.redeliver(endpoint, events[0])

    assert attempt.redelivery and attempt.succeeded
    assert receiver.ledger_event_ids() == [events[0].id, events[1].id, events[0].id]
    endpoint.refresh_from_db()
    assert endpoint.cursor == events[1].id


def test_a_loopback_target_is_refused_at_delivery(webhook_settings, receiver):
    endpoint = endpoint_for(receiver)
    upsert("ssrf@example.com")
    webhook_settings.WEBHOOK_ALLOW_INSECURE_TARGETS = False
    webhook_settings.DEBUG = True  # plain HTTP allowed: the address is what is refused

    again = delivery.deliver_pending(endpoint.id)

    assert again is not None
    assert receiver.received == []
    attempt = WebhookAttempt.objects.get()
    assert attempt.error == "Refused: The URL points to a loopback address."
    assert attempt.status_code is None


def test_the_readme_consumer_snippet_verifies_and_reads_a_delivery(webhook_settings, receiver):
    readme = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = readme[readme.index("## Change events") :]
    start = section.index("```python\n") + len("```python\n")
    snippet = section[start : section.index("\n```", start)]
    endpoint = endpoint_for(receiver)
    upsert("readme@example.com", REVOKE)
    deliver_all(endpoint)
    [got] = receiver.received
    handled = []
    scope = {
        "already_handled": lambda event_id: False,
        "update_suppression_list": lambda details, may_send: handled.append((details, may_send)),
    }
    exec(snippet.replace("whsec_…", endpoint.secret), scope)

    assert scope["receive"](got.body, got.headers) == 204
    assert handled == [({"type": "EMAIL", "email": "readme@example.com"}, False)]
    tampered = got.body.replace(b"REVOKED", b"CONFIRMED")
    assert scope["receive"](tampered, got.headers) == 400
