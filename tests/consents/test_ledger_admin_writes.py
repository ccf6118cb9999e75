"""The ledger functions behind the admin's add and mass revoke, and the many-consent writes the
commands share with it: create only, revoke many (by id or address), expire stale double opt-ins."""

from datetime import timedelta

import pytest
from django.utils import timezone

from consents.exceptions import ConsentAlreadyExists, InvalidChange
from consents.ledger import (
    ALREADY_REVOKED,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    Outcome,
    RevokeActivity,
    consent_add,
    consent_delete,
    consent_expire_pending,
    consent_revoke_addresses,
    consent_revoke_many,
    consent_upsert,
    stale_pending,
)
from consents.models import ConsentEvent, MarketingConsent
from tests.factories import MarketingConsentFactory

pytestmark = pytest.mark.django_db

STAFF = ChangeContext(door="ADMIN", actor="sam", note="Complaint 42")
SYSTEM = ChangeContext(door="CONSENT_API", actor="crm-sync")
OPT_IN = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM"))
OPT_OUT = ConsentChange(state="REVOKED", revoke=RevokeActivity(source="FORM"))


def test_add_creates_in_the_state_asked_for():
    result = consent_add(type="EMAIL", address="New@Example.com", change=OPT_OUT, context=STAFF)

    assert (result.kind, result.consent.address, result.consent.state) == (
        "CREATED",
        "new@example.com",
        "REVOKED",
    )
    assert ConsentEvent.objects.get().actor == "sam"


def test_add_refuses_an_address_that_has_a_consent_in_any_spelling_and_names_it():
    existing = consent_upsert(
        type="EMAIL", address="ann@example.com", change=OPT_OUT, context=SYSTEM
    ).consent

    with pytest.raises(ConsentAlreadyExists) as refused:
        consent_add(type="EMAIL", address=" ANN@example.com", change=OPT_IN, context=STAFF)

    assert refused.value.consent_id == existing.id
    assert refused.value.message == "A consent for this email already exists."
    existing.refresh_from_db()
    assert (existing.state, existing.revision) == ("REVOKED", 1)
    assert ConsentEvent.objects.count() == 1


def test_add_refuses_a_change_without_its_activity():
    with pytest.raises(InvalidChange):
        consent_add(
            type="EMAIL",
            address="a@example.com",
            change=ConsentChange(state="CONFIRMED"),
            context=STAFF,
        )

    assert not MarketingConsent.objects.exists()


def revoke(reason: str = "Complaint 42") -> RevokeActivity:
    return RevokeActivity(source="OTHER", description=reason)


def test_revoke_many_revokes_in_batches_and_leaves_revoked_ones_as_they_are():
    active = [
        consent_upsert(type="EMAIL", address=f"p{n}@example.com", change=OPT_IN, context=SYSTEM)
        for n in range(5)
    ]
    already = consent_upsert(
        type="PHONE", address="+14155550100", change=OPT_OUT, context=SYSTEM
    ).consent
    ids = [result.consent.id for result in active] + [already.id]

    counts = consent_revoke_many(consent_ids=ids, revoke=revoke(), context=STAFF, batch_size=2)

    assert counts == {"updated": 5, "already_revoked": 1}
    assert set(MarketingConsent.objects.values_list("state", "revoke_source")) == {
        ("REVOKED", "OTHER"),
        ("REVOKED", "FORM"),
    }
    already.refresh_from_db()
    assert (already.revision, already.revoke_source) == (1, "FORM")
    staff_events = ConsentEvent.objects.filter(actor="sam")
    assert sorted(e.address for e in staff_events) == [f"p{n}@example.com" for n in range(5)]
    assert {
        (e.kind, e.door, e.previous_state, e.state, e.activity_description, e.note)
        for e in staff_events
    } == {("UPDATED", "ADMIN", "CONFIRMED", "REVOKED", "Complaint 42", "Complaint 42")}


def test_revoke_many_skips_a_consent_deleted_meanwhile_without_recording_it_as_revoked():
    kept = consent_upsert(type="EMAIL", address="a@example.com", change=OPT_IN, context=SYSTEM)
    gone = consent_upsert(type="EMAIL", address="b@example.com", change=OPT_IN, context=SYSTEM)
    consent_delete(consent_id=gone.consent.id, context=SYSTEM)

    counts = consent_revoke_many(
        consent_ids=[kept.consent.id, gone.consent.id], revoke=revoke(), context=STAFF
    )

    assert counts == {"updated": 1, "not_found": 1}
    assert list(MarketingConsent.objects.values_list("address", "state")) == [
        ("a@example.com", "REVOKED")
    ]


def test_revoke_many_revokes_a_row_stored_in_a_legacy_spelling_in_place():
    legacy = MarketingConsentFactory(address="Legacy@Example.com ")

    counts = consent_revoke_many(consent_ids=[legacy.id], revoke=revoke(), context=STAFF)

    assert counts == {"updated": 1}
    assert list(MarketingConsent.objects.values_list("id", "address", "state")) == [
        (legacy.id, "Legacy@Example.com ", "REVOKED")
    ]


# --- many consents, as the commands and the admin share them ---------------------------------

TOOL = ChangeContext(door="COMMAND", actor="tool")
REVOKE = RevokeActivity(source="OTHER", description="Complaint 42")


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def pending(address: str, *, requested: int) -> MarketingConsent:
    change = ConsentChange(
        state="PENDING",
        confirmation=ConfirmationActivity(source="FORM", updated_date=days_ago(requested)),
    )
    return consent_upsert(type="EMAIL", address=address, change=change, context=SYSTEM).consent


def test_revoke_many_without_keep_revoked_records_the_new_revoke_on_revoked_ones_too():
    revoked = consent_upsert(
        type="EMAIL", address="r@example.com", change=OPT_OUT, context=SYSTEM
    ).consent

    counts = consent_revoke_many(
        consent_ids=[revoked.id], revoke=REVOKE, context=STAFF, keep_revoked=False
    )

    assert counts == {"updated": 1}
    revoked.refresh_from_db()
    assert (revoked.state, revoked.revision, revoked.revoke_source) == ("REVOKED", 2, "OTHER")


def test_revoke_addresses_answers_each_address_in_order_and_creates_missing_ones():
    consent_upsert(type="EMAIL", address="r@example.com", change=OPT_OUT, context=SYSTEM)

    outcomes = consent_revoke_addresses(
        type="EMAIL",
        addresses=["new@example.com", "r@example.com", "new@example.com"],
        revoke=REVOKE,
        context=TOOL,
    )

    assert outcomes == [
        Outcome("CREATED", "EMAIL", "new@example.com", "", "REVOKED"),
        Outcome(ALREADY_REVOKED, "EMAIL", "r@example.com", "REVOKED", "REVOKED"),
        Outcome("UNCHANGED", "EMAIL", "new@example.com", "REVOKED", "REVOKED"),
    ]
    assert sorted(ConsentEvent.objects.filter(actor="tool").values_list("address", "kind")) == [
        ("new@example.com", "CREATED"),
        ("new@example.com", "UNCHANGED"),
    ]


def test_revoke_addresses_dry_run_decides_and_writes_nothing():
    outcomes = consent_revoke_addresses(
        type="EMAIL", addresses=["new@example.com"], revoke=REVOKE, context=TOOL, dry_run=True
    )

    assert outcomes == [Outcome("CREATED", "EMAIL", "new@example.com", "", "REVOKED")]
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_revoke_refuses_a_revoke_activity_outside_its_enum():
    with pytest.raises(InvalidChange):
        consent_revoke_addresses(
            type="EMAIL",
            addresses=["a@example.com"],
            revoke=RevokeActivity(source="NOPE"),
            context=TOOL,
        )
    assert not MarketingConsent.objects.exists()


def test_expire_pending_expires_only_stale_ones_and_keeps_their_proof():
    old = pending("old@example.com", requested=40)
    recent = pending("recent@example.com", requested=5)
    cutoff = days_ago(30)

    expired = consent_expire_pending(consent_ids=[old.id, recent.id], cutoff=cutoff, context=TOOL)

    assert [(consent.id, outcome) for consent, outcome in expired] == [
        (old.id, Outcome("UPDATED", "EMAIL", "old@example.com", "PENDING", "NEVER_CONFIRMED"))
    ]
    assert expired[0][0].confirmation_date == old.confirmation_date
    assert list(stale_pending(cutoff)) == []
    old.refresh_from_db()
    assert (old.state, old.revision, old.confirmation_source) == ("NEVER_CONFIRMED", 2, "FORM")
    event = ConsentEvent.objects.get(actor="tool")
    assert (event.kind, event.previous_state, event.state, event.request) == (
        "UPDATED",
        "PENDING",
        "NEVER_CONFIRMED",
        {"state": "NEVER_CONFIRMED"},
    )


def test_expire_pending_changes_a_legacy_spelling_in_place_and_its_dry_run_writes_nothing():
    legacy = MarketingConsentFactory(
        address="Legacy@Example.com ", state="PENDING", confirmation_date=days_ago(40)
    )

    dry = consent_expire_pending(
        consent_ids=[legacy.id], cutoff=days_ago(30), context=TOOL, dry_run=True
    )
    legacy.refresh_from_db()
    assert (dry[0][1].kind, legacy.state) == ("UPDATED", "PENDING")
    assert not ConsentEvent.objects.exists()

    consent_expire_pending(consent_ids=[legacy.id], cutoff=days_ago(30), context=TOOL)

    assert list(MarketingConsent.objects.values_list("id", "address", "state")) == [
        (legacy.id, "Legacy@Example.com ", "NEVER_CONFIRMED")
    ]
