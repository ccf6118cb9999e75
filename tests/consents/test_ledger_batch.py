"""The ledger's batch path: the rules of consent_upsert, with set-based reads and bulk writes."""

from datetime import UTC, datetime

import pytest

from consents.exceptions import InvalidAddress, InvalidChange
from consents.ledger import (
    BatchItem,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
    consent_upsert_batch,
)
from consents.models import ConsentEvent, MarketingConsent

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door="COMMAND", actor="import_consents", request_id="req-1")


def confirmed(day: int) -> ConsentChange:
    return ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(
            source="FORM", updated_date=datetime(2025, 1, day, tzinfo=UTC)
        ),
    )


def revoked(day: int) -> ConsentChange:
    return ConsentChange(
        state="REVOKED",
        revoke=RevokeActivity(source="FORM", updated_date=datetime(2025, 1, day, tzinfo=UTC)),
    )


def test_batch_creates_updates_and_reports_bad_items_in_place():
    consent_upsert(type="EMAIL", address="old@example.com", change=confirmed(1), context=CONTEXT)

    outcomes = consent_upsert_batch(
        items=[
            BatchItem("EMAIL", "New@Example.com", confirmed(2)),
            BatchItem("EMAIL", "not an address", confirmed(2)),
            BatchItem("EMAIL", "old@example.com", revoked(3)),
            BatchItem("PHONE", "+1 415 555 0100", ConsentChange(state="PENDING")),
        ],
        context=CONTEXT,
    )

    assert [type(o).__name__ for o in outcomes] == [
        "LedgerResult",
        "InvalidAddress",
        "LedgerResult",
        "InvalidChange",
    ]
    assert isinstance(outcomes[1], InvalidAddress)
    assert isinstance(outcomes[3], InvalidChange)
    assert outcomes[3].field == "lastConfirmationActivity"
    assert [outcomes[0].kind, outcomes[2].kind] == ["CREATED", "UPDATED"]
    rows = dict(MarketingConsent.objects.values_list("address", "state"))
    assert rows == {"new@example.com": "CONFIRMED", "old@example.com": "REVOKED"}
    old = MarketingConsent.objects.get(address="old@example.com")
    assert old.revision == 2
    events = ConsentEvent.objects.filter(actor="import_consents").order_by("id")
    assert [(e.address, e.kind, e.revision, e.previous_state, e.state) for e in events] == [
        ("old@example.com", "CREATED", 1, "", "CONFIRMED"),
        ("new@example.com", "CREATED", 1, "", "CONFIRMED"),
        ("old@example.com", "UPDATED", 2, "CONFIRMED", "REVOKED"),
    ]


def test_batch_applies_repeated_addresses_in_order_and_keeps_latest_consent():
    outcomes = consent_upsert_batch(
        items=[
            BatchItem("EMAIL", "a@example.com", confirmed(1)),
            BatchItem("EMAIL", "a@example.com", revoked(5)),
            BatchItem("EMAIL", "a@example.com", confirmed(3)),
            BatchItem("EMAIL", "a@example.com", revoked(5)),
        ],
        context=CONTEXT,
    )

    assert [o.kind for o in outcomes] == ["CREATED", "UPDATED", "SUPERSEDED", "UNCHANGED"]
    assert [o.consent.state for o in outcomes] == ["CONFIRMED", "REVOKED", "REVOKED", "REVOKED"]
    assert [o.consent.revision for o in outcomes] == [1, 2, 2, 2]
    consent = MarketingConsent.objects.get()
    assert (consent.state, consent.revision) == ("REVOKED", 2)
    assert list(ConsentEvent.objects.order_by("id").values_list("kind", "revision")) == [
        ("CREATED", 1),
        ("UPDATED", 2),
        ("SUPERSEDED", 2),
        ("UNCHANGED", 2),
    ]


def test_batch_keeps_state_of_new_email_consent_asked_for_unknown_state_later():
    outcomes = consent_upsert_batch(
        items=[
            BatchItem("EMAIL", "b@example.com", confirmed(1)),
            BatchItem("EMAIL", "b@example.com", ConsentChange(state="UNKNOWN_STATE")),
        ],
        context=CONTEXT,
    )

    assert [o.kind for o in outcomes] == ["CREATED", "UNCHANGED"]
    assert MarketingConsent.objects.get().state == "CONFIRMED"


def test_replaying_a_batch_changes_nothing():
    items = [BatchItem("EMAIL", f"p{n}@example.com", confirmed(2)) for n in range(5)]
    consent_upsert_batch(items=items, context=CONTEXT)

    outcomes = consent_upsert_batch(items=items, context=CONTEXT)

    assert {o.kind for o in outcomes} == {"UNCHANGED"}
    assert set(MarketingConsent.objects.values_list("revision", flat=True)) == {1}
    assert ConsentEvent.objects.count() == 10


def test_batch_reads_and_writes_in_a_fixed_number_of_queries(django_assert_max_num_queries):
    consent_upsert_batch(
        items=[BatchItem("EMAIL", f"q{n}@example.com", confirmed(1)) for n in range(50)],
        context=CONTEXT,
    )
    items = [BatchItem("EMAIL", f"q{n}@example.com", revoked(2)) for n in range(100)]

    # Savepoint, read, insert, check inserted, bulk update, events, release; SQLite splits the
    # event insert in a few statements (its limit on query parameters). Never one per item.
    with django_assert_max_num_queries(9):
        consent_upsert_batch(items=items, context=CONTEXT)

    assert MarketingConsent.objects.filter(state="REVOKED").count() == 100


def described(outcomes: list) -> list:
    return [
        type(o).__name__
        if isinstance(o, Exception)
        else (o.kind, o.consent.state, o.consent.revision, o.event.previous_state)
        for o in outcomes
    ]


def test_dry_run_decides_as_applying_would_and_writes_nothing(django_assert_num_queries):
    consent_upsert(type="EMAIL", address="old@example.com", change=revoked(5), context=CONTEXT)
    items = [
        BatchItem("EMAIL", "new@example.com", confirmed(2)),
        BatchItem("EMAIL", "old@example.com", confirmed(3)),
        BatchItem("EMAIL", "old@example.com", revoked(6)),
        BatchItem("EMAIL", "bad address", confirmed(2)),
    ]
    before = list(MarketingConsent.objects.values())

    # Savepoint, one read without a lock, release: no write.
    with django_assert_num_queries(3):
        dry = consent_upsert_batch(items=items, context=CONTEXT, dry_run=True)

    assert list(MarketingConsent.objects.values()) == before
    assert ConsentEvent.objects.count() == 1
    assert [o.event.pk for o in dry[:3]] == [None, None, None]
    assert described(dry) == [
        ("CREATED", "CONFIRMED", 1, ""),
        ("SUPERSEDED", "REVOKED", 1, "REVOKED"),
        ("UPDATED", "REVOKED", 2, "REVOKED"),
        "InvalidAddress",
    ]
    applied = consent_upsert_batch(items=items, context=CONTEXT)
    assert described(applied) == described(dry)
