"""consent_renormalize: a consent stored in a legacy spelling moves to its normalised address,
or merges with the consent already there (latest consent wins)."""

from datetime import UTC, datetime

import pytest

from consents.exceptions import InvalidAddress
from consents.ledger import ChangeContext, consent_renormalize
from consents.models import ConsentEvent, MarketingConsent
from tests.factories import MarketingConsentFactory

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door="COMMAND", actor="normalize_addresses")


def day(number: int) -> datetime:
    return datetime(2025, 1, number, tzinfo=UTC)


def events() -> list[tuple]:
    return list(
        ConsentEvent.objects.order_by("id").values_list(
            "consent_id", "address", "kind", "revision", "previous_state", "state", "note"
        )
    )


def test_moves_a_consent_to_its_normalised_address():
    legacy = MarketingConsentFactory(address=" Bob@Example.COM", confirmation_date=day(1))

    [result] = consent_renormalize(consent_id=legacy.id, context=CONTEXT)

    legacy.refresh_from_db()
    assert (legacy.address, legacy.revision, legacy.state) == ("bob@example.com", 2, "CONFIRMED")
    assert (result.kind, result.consent.address) == ("UPDATED", "bob@example.com")
    assert events() == [
        (legacy.id, "bob@example.com", "UPDATED", 2, "CONFIRMED", "CONFIRMED",
         "Address normalised from ' Bob@Example.COM'."),
    ]  # fmt: skip
    assert ConsentEvent.objects.get().actor == "normalize_addresses"


def test_a_legacy_consent_with_newer_activity_replaces_the_one_at_the_address():
    legacy = MarketingConsentFactory(
        address="Bob@Example.com",
        state="REVOKED",
        revoke_source="FORM",
        revoke_date=day(9),
        confirmation_date=day(1),
    )
    current = MarketingConsentFactory(address="bob@example.com", confirmation_date=day(5))

    kept, dropped = consent_renormalize(consent_id=legacy.id, context=CONTEXT)

    assert list(MarketingConsent.objects.values_list("id", "address", "state", "revision")) == [
        (legacy.id, "bob@example.com", "REVOKED", 2)
    ]
    assert (kept.kind, dropped.kind) == ("UPDATED", "DELETED")
    assert events() == [
        (current.id, "bob@example.com", "DELETED", 1, "CONFIRMED", "CONFIRMED",
         f"Merged into {legacy.id} at 'bob@example.com', kept for its newer activity."),
        (legacy.id, "bob@example.com", "UPDATED", 2, "REVOKED", "REVOKED",
         f"Address normalised from 'Bob@Example.com'; {current.id} ('bob@example.com') "
         "merged into it."),
    ]  # fmt: skip


def test_a_legacy_consent_with_older_activity_gives_way_to_the_one_at_the_address():
    legacy = MarketingConsentFactory(address="Bob@Example.com", confirmation_date=day(9))
    current = MarketingConsentFactory(
        address="bob@example.com", state="REVOKED", revoke_source="FORM", revoke_date=day(10)
    )

    kept, dropped = consent_renormalize(consent_id=legacy.id, context=CONTEXT)

    assert list(MarketingConsent.objects.values_list("id", "address", "state", "revision")) == [
        (current.id, "bob@example.com", "REVOKED", 1)
    ]
    assert (kept.kind, kept.consent.id, dropped.kind) == ("UNCHANGED", current.id, "DELETED")
    assert events() == [
        (legacy.id, "Bob@Example.com", "DELETED", 1, "CONFIRMED", "CONFIRMED",
         f"Merged into {current.id} at 'bob@example.com', kept for its newer activity."),
        (current.id, "bob@example.com", "UNCHANGED", 1, "REVOKED", "REVOKED",
         f"{legacy.id} ('Bob@Example.com') merged into it."),
    ]  # fmt: skip


def test_on_equal_dates_the_consent_already_at_the_address_stays():
    legacy = MarketingConsentFactory(address="Bob@Example.com", confirmation_date=day(3))
    current = MarketingConsentFactory(address="bob@example.com", confirmation_date=day(3))

    kept, _ = consent_renormalize(consent_id=legacy.id, context=CONTEXT)

    assert kept.consent.id == current.id
    assert list(MarketingConsent.objects.values_list("id", flat=True)) == [current.id]
    assert ConsentEvent.objects.get(kind="DELETED").note == (
        f"Merged into {current.id} at 'bob@example.com', kept for its activity as new, at that "
        "address already."
    )


def test_an_address_that_cannot_be_normalised_is_refused_and_left_alone():
    legacy = MarketingConsentFactory(address="not an address")

    with pytest.raises(InvalidAddress):
        consent_renormalize(consent_id=legacy.id, context=CONTEXT)

    assert MarketingConsent.objects.get().address == "not an address"
    assert ConsentEvent.objects.count() == 0


def test_a_normalised_address_is_left_as_it_is():
    consent = MarketingConsentFactory(address="bob@example.com")

    [result] = consent_renormalize(consent_id=consent.id, context=CONTEXT)

    assert (result.kind, result.consent.revision) == ("UNCHANGED", 1)
