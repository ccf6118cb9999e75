"""What the database enforces, and the proof that cannot be rewritten."""

import pytest
from django.db import IntegrityError, transaction

from consents.models import ConsentEvent, MarketingConsent
from tests.factories import (
    ClientApiKeyFactory,
    ConsentEventFactory,
    IdempotencyRecordFactory,
    MarketingConsentFactory,
    MemberFactory,
    MemberSessionFactory,
)

pytestmark = pytest.mark.django_db


@pytest.mark.parametrize(
    "factory",
    [
        MemberFactory,
        MemberSessionFactory,
        MarketingConsentFactory,
        ConsentEventFactory,
        ClientApiKeyFactory,
        IdempotencyRecordFactory,
    ],
)
def test_every_model_has_a_working_factory(factory):
    assert factory().pk is not None


@pytest.mark.parametrize(
    "fields",
    [
        {"state": "OPTED_IN"},
        {"type": "FAX"},
        {"address": ""},
        {"state": "CONFIRMED", "confirmation_date": None},
        {"state": "REVOKED", "revoke_date": None},
        {"confirmation_source": "PIGEON"},
        {"revision": 0},
    ],
)
def test_the_database_refuses_impossible_consents(fields):
    with pytest.raises(IntegrityError), transaction.atomic():
        MarketingConsentFactory(**fields)


def test_one_consent_per_address_and_type():
    MarketingConsentFactory(address="a@example.com")

    with pytest.raises(IntegrityError), transaction.atomic():
        MarketingConsentFactory(address="a@example.com")


def test_events_cannot_be_changed_or_deleted():
    event = ConsentEventFactory()

    for attempt in (
        event.save,
        event.delete,
        ConsentEvent.objects.all().delete,
        lambda: ConsentEvent.objects.update(actor="x"),
    ):
        with pytest.raises(TypeError, match="append-only"):
            attempt()
    assert ConsentEvent.objects.get().actor == "crm-sync"


def test_events_outlive_their_consent():
    event = ConsentEventFactory()
    MarketingConsent.objects.all().delete()

    assert ConsentEvent.objects.get().consent_id == event.consent_id
