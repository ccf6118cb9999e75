"""The ledger, one test per ledger rule in docs/design.md (and one per public function)."""

from datetime import UTC, datetime, timedelta

import pytest
from django.utils import timezone

from consents.exceptions import (
    ConsentAlreadyExists,
    ConsentNotFound,
    InvalidAddress,
    InvalidChange,
    RevisionMismatch,
    StaleLink,
)
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    communication_eligibility,
    consent_confirm_by_link,
    consent_create,
    consent_delete,
    consent_remove,
    consent_revoke_by_link,
    consent_update,
    consent_upsert,
)
from consents.models import ConsentEvent, MarketingConsent

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(
    door="CONSENT_API",
    actor="crm-sync",
    request_id="req-1",
    ip_address="203.0.113.5",
    user_agent="crm/2",
)


def day(n: int) -> datetime:
    return datetime(2024, 1, n, tzinfo=UTC)


def opt_in(n: int | None = None, **fields) -> ConsentChange:
    return ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(
            source="FORM",
            updated_date=day(n) if n else None,
            opt_in_level="SINGLE_CONFIRMATION",
            **fields,
        ),
    )


def opt_out(n: int | None = None) -> ConsentChange:
    return ConsentChange(
        state="REVOKED", revoke=RevokeActivity(source="FORM", updated_date=day(n) if n else None)
    )


def upsert(change: ConsentChange, address: str = "ann@example.com", type: str = "EMAIL"):
    return consent_upsert(type=type, address=address, change=change, context=CONTEXT)


def event_row(event: ConsentEvent) -> tuple:
    return (event.kind, event.revision, event.previous_state, event.state, event.door, event.actor)


# 1. states and required activities


def test_a_new_consent_is_created_with_revision_1_and_a_created_event():
    result = upsert(opt_in(2))

    stored = MarketingConsent.objects.get()
    assert (stored.state, stored.revision, stored.confirmation_date) == ("CONFIRMED", 1, day(2))
    assert result.consent == stored
    assert event_row(result.event) == ("CREATED", 1, "", "CONFIRMED", "CONSENT_API", "crm-sync")
    assert (result.event.request_id, result.event.ip_address, result.event.user_agent) == (
        "req-1",
        "203.0.113.5",
        "crm/2",
    )
    assert (result.event.activity_source, result.event.activity_date) == ("FORM", day(2))


@pytest.mark.parametrize(
    ("change", "field"),
    [
        (ConsentChange(state="PENDING"), "lastConfirmationActivity"),
        (ConsentChange(state="CONFIRMED", revoke=RevokeActivity()), "lastConfirmationActivity"),
        (ConsentChange(state="REVOKED", confirmation=ConfirmationActivity()), "lastRevokeActivity"),
    ],
)
def test_a_state_without_its_activity_is_refused_and_nothing_is_written(change, field):
    with pytest.raises(InvalidChange) as refused:
        upsert(change)

    assert refused.value.field == field
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_unknown_state_keeps_an_existing_email_consent():
    upsert(opt_in(2))

    result = upsert(ConsentChange(state="UNKNOWN_STATE"))

    assert result.consent.state == "CONFIRMED"
    assert event_row(result.event)[:4] == ("UNCHANGED", 1, "CONFIRMED", "CONFIRMED")


def test_unknown_state_changes_an_existing_phone_consent():
    upsert(opt_in(2), "+14155550100", "PHONE")

    result = upsert(ConsentChange(state="UNKNOWN_STATE"), "+14155550100", "PHONE")

    assert (result.consent.state, result.consent.revision) == ("UNKNOWN_STATE", 2)


def test_a_new_email_consent_may_start_in_unknown_state():
    assert upsert(ConsentChange(state="UNKNOWN_STATE")).consent.state == "UNKNOWN_STATE"


# 2. no-op writes


def test_the_same_request_twice_is_unchanged_without_a_new_revision():
    upsert(opt_in(2))

    result = upsert(opt_in(2))

    assert result.kind == "UNCHANGED"
    assert MarketingConsent.objects.get().revision == 1
    assert ConsentEvent.objects.count() == 2


def test_the_same_activity_without_a_date_twice_is_unchanged():
    first = upsert(opt_in())

    again = upsert(opt_in())

    assert again.kind == "UNCHANGED"
    assert again.consent.confirmation_date == first.consent.confirmation_date


def test_another_description_is_a_change():
    upsert(opt_in(2))

    assert upsert(opt_in(2, description="Re-signed.")).kind == "UPDATED"


# 3. latest consent wins


def test_an_older_opt_in_after_a_newer_opt_out_is_superseded():
    upsert(opt_out(5))

    result = upsert(opt_in(3))

    assert result.kind == "SUPERSEDED"
    assert (result.consent.state, result.consent.revision) == ("REVOKED", 1)
    assert result.event.activity_date == day(3)  # the date it was sent with
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_a_newer_opt_in_after_an_opt_out_wins():
    upsert(opt_out(5))

    result = upsert(opt_in(6))

    assert (result.kind, result.consent.state, result.consent.revision) == (
        "UPDATED",
        "CONFIRMED",
        2,
    )


def test_equal_dates_let_the_later_write_win():
    upsert(opt_in(4))

    assert upsert(opt_out(4)).consent.state == "REVOKED"


def test_no_date_means_now_and_wins_over_older_activity():
    upsert(opt_in(4))

    result = upsert(opt_out())

    assert result.consent.state == "REVOKED"
    assert timezone.now() - result.consent.revoke_date < timedelta(seconds=5)


# 4/5. revisions and optimistic concurrency


def test_each_real_change_adds_one_revision():
    upsert(opt_in(1))
    upsert(opt_out(2))
    upsert(opt_in(3))

    assert MarketingConsent.objects.get().revision == 3
    assert list(ConsentEvent.objects.order_by("id").values_list("revision", flat=True)) == [1, 2, 3]


def test_a_write_at_another_revision_is_refused_and_changes_nothing():
    created = upsert(opt_in(1))

    with pytest.raises(RevisionMismatch):
        consent_update(
            consent_id=created.consent.id, change=opt_out(2), context=CONTEXT, expected_revision=2
        )

    assert MarketingConsent.objects.get().state == "CONFIRMED"
    assert ConsentEvent.objects.count() == 1


def test_a_write_at_the_stored_revision_applies():
    created = upsert(opt_in(1))

    result = consent_update(
        consent_id=created.consent.id, change=opt_out(2), context=CONTEXT, expected_revision=1
    )

    assert (result.consent.state, result.consent.revision) == ("REVOKED", 2)


# the other public functions


def test_create_makes_a_confirmed_consent_and_refuses_a_second():
    result = consent_create(
        type="EMAIL", address="b@example.com", confirmation=ConfirmationActivity(), context=CONTEXT
    )
    assert (result.kind, result.consent.state) == ("CREATED", "CONFIRMED")

    with pytest.raises(ConsentAlreadyExists):
        consent_create(
            type="EMAIL",
            address="B@example.com",
            confirmation=ConfirmationActivity(),
            context=CONTEXT,
        )
    assert ConsentEvent.objects.count() == 1


def test_update_of_extended_fields_only():
    created = upsert(opt_in(1))
    fields = {"namespaces": {"_user_fields": {"a": "1"}}}

    result = consent_update(
        consent_id=created.consent.id,
        change=ConsentChange(extended_fields=fields),
        context=CONTEXT,
    )

    assert (result.consent.extended_fields, result.consent.state, result.consent.revision) == (
        fields,
        "CONFIRMED",
        2,
    )


def test_update_of_an_unknown_consent_is_not_found():
    with pytest.raises(ConsentNotFound):
        consent_update(
            consent_id="00000000-0000-0000-0000-000000000000", change=opt_out(), context=CONTEXT
        )


def test_remove_revokes_and_an_unknown_address_is_recorded_revoked():
    upsert(opt_in(1))

    assert (
        consent_remove(
            type="EMAIL", address="ann@example.com", revoke=RevokeActivity(), context=CONTEXT
        ).consent.state
        == "REVOKED"
    )
    unknown = consent_remove(
        type="EMAIL", address="never@example.com", revoke=RevokeActivity(), context=CONTEXT
    )
    assert (unknown.kind, unknown.consent.state) == ("CREATED", "REVOKED")


def test_delete_removes_the_row_and_keeps_every_event():
    created = upsert(opt_in(1))

    result = consent_delete(consent_id=created.consent.id, context=CONTEXT)

    assert not MarketingConsent.objects.exists()
    assert result.kind == "DELETED"
    assert list(
        ConsentEvent.objects.order_by("id").values_list("kind", "consent_id", "address")
    ) == [
        ("CREATED", created.consent.id, "ann@example.com"),
        ("DELETED", created.consent.id, "ann@example.com"),
    ]


def test_confirm_by_link_is_a_double_opt_in_and_a_repeat_is_unchanged():
    pending = upsert(ConsentChange(state="PENDING", confirmation=ConfirmationActivity()))
    issued = timezone.now()

    result = consent_confirm_by_link(
        consent_id=pending.consent.id, issued_at=issued, context=CONTEXT
    )
    again = consent_confirm_by_link(
        consent_id=pending.consent.id, issued_at=issued, context=CONTEXT
    )

    assert (result.consent.state, result.consent.confirmation_source) == (
        "CONFIRMED",
        "LINK_CONFIRMATION",
    )
    assert result.consent.confirmation_opt_in_level == "DOUBLE_CONFIRMATION"
    assert again.kind == "UNCHANGED"


def test_a_confirmation_link_issued_before_a_later_revoke_is_stale():
    pending = upsert(ConsentChange(state="PENDING", confirmation=ConfirmationActivity()))
    issued = timezone.now()
    upsert(opt_out())

    with pytest.raises(StaleLink):
        consent_confirm_by_link(consent_id=pending.consent.id, issued_at=issued, context=CONTEXT)
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_revoke_by_link_and_a_repeat_is_unchanged():
    created = upsert(opt_in(1))

    result = consent_revoke_by_link(consent_id=created.consent.id, context=CONTEXT)
    again = consent_revoke_by_link(consent_id=created.consent.id, context=CONTEXT)

    assert (result.consent.state, result.consent.revoke_source) == ("REVOKED", "REVOKE_LINK")
    assert again.kind == "UNCHANGED"


def test_addresses_are_normalised_by_the_ledger():
    upsert(opt_in(1), "  ANN@Example.COM ")
    upsert(opt_in(1), "ann@example.com")

    assert list(MarketingConsent.objects.values_list("address", flat=True)) == ["ann@example.com"]


def test_an_invalid_address_is_refused():
    with pytest.raises(InvalidAddress):
        upsert(opt_in(1), "not an address")


# 7. eligibility


@pytest.mark.parametrize(
    ("state", "type", "granted"),
    [
        ("CONFIRMED", "EMAIL", True),
        ("CONFIRMED", "PHONE", True),
        ("REVOKED", "EMAIL", False),
        ("PENDING", "EMAIL", False),
        ("NEVER_CONFIRMED", "EMAIL", True),
        ("UNKNOWN_STATE", "EMAIL", True),
        ("NEVER_CONFIRMED", "PHONE", False),
        ("UNKNOWN_STATE", "PHONE", False),
        (None, "EMAIL", True),
        (None, "PHONE", False),
    ],
)
def test_eligibility(state, type, granted):
    consent = MarketingConsent(type=type, address="x", state=state) if state else None

    assert communication_eligibility(consent, type=type).granted is granted
