"""The ledger functions behind the admin's add and mass revoke: create only, and revoke many."""

import pytest

from consents.exceptions import ConsentAlreadyExists, InvalidChange
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_add,
    consent_delete,
    consent_revoke_many,
    consent_upsert,
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
