"""Erasing a person tells the endpoints: `marketing_consent.deleted` for each erased consent, in
order after its earlier events, and no body sent after the erasure carries the address or its
hash."""

import json

import pytest

from consents.ledger import ChangeContext
from consents.models import ConsentEvent, Door, MarketingConsent
from consents.privacy.erasure import erase_person
from consents.privacy.person import find_person
from consents.webhooks.models import EventType
from consents.webhooks.payloads import message_id
from consents.webhooks.wake import wake_endpoints
from tests.webhooks.test_delivery import REVOKE, deliver_all, endpoint_for, upsert

pytestmark = pytest.mark.django_db

ERASING = ChangeContext(door=Door.COMMAND, actor="erase_person", note="Request 2026-118")
ADDRESS = "grace.hopper@example.com"
# Its local part holds letters no identifier (hexadecimal) can hold, so finding it means a leak.
LOCAL_PART = b"grace.hopper"


def erase(address=ADDRESS):
    return erase_person(find_person(email=address), context=ERASING)


def test_an_erased_consent_is_delivered_as_deleted_after_its_earlier_events(
    webhook_settings, receiver
):
    endpoint = endpoint_for(receiver)
    created = upsert(ADDRESS)
    deliver_all(endpoint)
    updated = upsert(ADDRESS, REVOKE)

    erase()
    deliver_all(endpoint)

    erased = ConsentEvent.objects.get(kind="ERASED")
    tombstone = MarketingConsent.objects.get(id=created.consent.id)
    assert receiver.ledger_event_ids() == [created.event.id, updated.event.id, erased.id]
    assert [got.json()["slug"] for got in receiver.received] == ["created", "updated", "deleted"]
    got = receiver.received[-1]
    assert got.verified_by(endpoint.secret)
    body = got.json()
    assert body == {
        "id": message_id(erased),
        "entityFqdn": body["entityFqdn"],
        "slug": "deleted",
        "entityId": str(created.consent.id),
        "eventTime": body["eventTime"],
        "deletedEvent": {
            "movedToTrash": False,
            "deletedEntityAsJson": body["deletedEvent"]["deletedEntityAsJson"],
        },
        "consentProof": {
            "ledgerEventId": erased.id,
            "kind": "ERASED",
            "previousState": "REVOKED",
            "state": "REVOKED",
            "revision": "3",
            "door": "COMMAND",
            "actor": "erase_person",
            "requestId": "",
        },
    }
    entity = json.loads(body["deletedEvent"]["deletedEntityAsJson"])
    assert (entity["id"], entity["details"], entity["state"], entity["erased"]) == (
        str(created.consent.id),
        {"type": "EMAIL"},
        "REVOKED",
        True,
    )
    # Sent after the erasure: neither the address nor its hash, nor the erasure's reason.
    for after_erasure in receiver.received[1:]:
        for personal in (LOCAL_PART, tombstone.address.encode(), b"erased:", b"2026-118"):
            assert personal not in after_erasure.body
    assert ADDRESS.encode() in receiver.received[0].body  # sent before it


def test_an_endpoint_without_deleted_events_hears_nothing_of_an_erasure(webhook_settings, receiver):
    endpoint = endpoint_for(receiver, event_types=[EventType.CREATED, EventType.UPDATED])
    created = upsert(ADDRESS)

    erase()
    deliver_all(endpoint)

    assert receiver.ledger_event_ids() == [created.event.id]
    assert LOCAL_PART not in receiver.received[0].body
    assert endpoint.cursor == ConsentEvent.objects.get(kind="ERASED").id


def test_an_erasure_wakes_the_endpoints_when_it_commits(
    webhook_settings, receiver, django_capture_on_commit_callbacks
):
    endpoint_for(receiver)
    upsert(ADDRESS)
    with django_capture_on_commit_callbacks() as callbacks:
        erase()
    assert wake_endpoints in callbacks
