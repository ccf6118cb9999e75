"""Changes the ledger refuses before anything is written, whichever door sent them."""

from datetime import datetime, timedelta

import pytest
from django.utils import timezone

from consents.exceptions import InvalidChange
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
    to_millisecond,
)
from consents.models import ConsentEvent, MarketingConsent

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door="CONSENT_API", actor="crm-sync")


@pytest.mark.parametrize(
    ("change", "field", "rule"),
    [
        (
            ConsentChange(
                state="CONFIRMED",
                confirmation=ConfirmationActivity(updated_date=datetime(2025, 1, 1)),  # noqa: DTZ001
            ),
            "lastConfirmationActivity.updatedDate",
            "FORMAT",
        ),
        (
            ConsentChange(
                state="REVOKED",
                revoke=RevokeActivity(updated_date=timezone.now() + timedelta(days=1)),
            ),
            "lastRevokeActivity.updatedDate",
            "INVALID_VALUE",
        ),
        (ConsentChange(state="NEVER_CONFIRMED", extended_fields=[1]), "extendedFields", "FORMAT"),
        (ConsentChange(state="OPTED_IN"), "state", "INVALID_ENUM_VALUE"),
        (
            ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="PIGEON")),
            "lastConfirmationActivity.source",
            "INVALID_ENUM_VALUE",
        ),
        (ConsentChange(), "state", "REQUIRED_FIELD"),
    ],
)
def test_refused_change_names_the_field_and_writes_nothing(change, field, rule):
    with pytest.raises(InvalidChange) as refused:
        consent_upsert(type="EMAIL", address="a@example.com", change=change, context=CONTEXT)

    assert (refused.value.field, refused.value.rule) == (field, rule)
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_a_date_within_the_clock_skew_is_accepted():
    soon = timezone.now() + timedelta(minutes=1)
    change = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(updated_date=soon))

    result = consent_upsert(type="EMAIL", address="a@example.com", change=change, context=CONTEXT)

    assert result.consent.confirmation_date == to_millisecond(soon)
