"""Activity dates are kept to the millisecond, the precision every door and export writes them
back with: a consent read and written back is UNCHANGED, never SUPERSEDED by its own copy."""

from datetime import UTC, datetime

import pytest

from consents.dates import format_date, parse_date
from consents.exceptions import StaleLink
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_confirm_by_link,
    consent_revoke_by_link,
    consent_upsert,
)

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door="CONSENT_API", actor="crm")


def test_an_activity_sent_with_microseconds_is_kept_to_the_millisecond():
    sent = datetime(2025, 1, 2, 3, 4, 5, 678901, tzinfo=UTC)
    change = ConsentChange(
        state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM", updated_date=sent)
    )

    result = consent_upsert(type="EMAIL", address="a@example.com", change=change, context=CONTEXT)

    assert result.consent.confirmation_date == datetime(2025, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    assert RevokeActivity(updated_date=sent).updated_date.microsecond == 678000


def test_a_consent_dated_now_written_back_as_read_is_unchanged():
    created = consent_upsert(
        type="EMAIL",
        address="b@example.com",
        change=ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM")),
        context=CONTEXT,
    ).consent
    revoked = consent_revoke_by_link(consent_id=created.id, context=CONTEXT).consent
    read_back = ConsentChange(
        state="REVOKED",
        revoke=RevokeActivity(
            source=revoked.revoke_source,
            description=revoked.revoke_description,
            updated_date=parse_date(format_date(revoked.revoke_date)),
        ),
    )

    result = consent_upsert(
        type="EMAIL", address="b@example.com", change=read_back, context=CONTEXT
    )

    assert (result.kind, result.consent.revision) == ("UNCHANGED", 2)


def test_an_unsubscribe_in_the_same_millisecond_as_a_confirmation_link_makes_it_stale():
    pending = consent_upsert(
        type="EMAIL",
        address="c@example.com",
        change=ConsentChange(state="PENDING", confirmation=ConfirmationActivity(source="FORM")),
        context=CONTEXT,
    ).consent
    revoked = consent_revoke_by_link(consent_id=pending.id, context=CONTEXT).consent
    issued_in_that_millisecond = revoked.revoke_date.replace(
        microsecond=revoked.revoke_date.microsecond + 999
    )

    with pytest.raises(StaleLink):
        consent_confirm_by_link(
            consent_id=pending.id, issued_at=issued_in_that_millisecond, context=CONTEXT
        )
