"""export_person --format iso27560: each consent as a DPV-27560 consent record."""

import json
from datetime import UTC, datetime
from unittest import mock

import pytest

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    consent_erase,
    consent_upsert,
)
from consents.models import MarketingConsent
from consents.privacy.iso27560 import consent_receipt
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door="CONSENT_API", actor="crm")
CONTEXT_LD = {
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "dct": "http://purl.org/dc/terms/",
    "dpv-27560": "https://w3id.org/dpv/schema/dpv-27560#",
}


@pytest.fixture
def confirmed() -> MarketingConsent:
    MemberFactory(email="grace@example.com", phone="")
    change = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(
            source="FORM",
            opt_in_level="DOUBLE_CONFIRMATION",
            updated_date=datetime(2025, 3, 4, 5, 6, 7, tzinfo=UTC),
        ),
    )
    with mock.patch("django.utils.timezone.now", return_value=datetime(2025, 3, 5, tzinfo=UTC)):
        result = consent_upsert(
            type="EMAIL", address="grace@example.com", change=change, context=CONTEXT
        )
    return result.consent


def records(run_command, *args: str) -> list[dict]:
    return json.loads(run_command("export_person", *args, "--format", "iso27560").stdout)


def test_a_consent_is_a_record_with_every_field_the_profile_makes_mandatory_that_we_hold(
    confirmed, run_command
):
    [record] = records(run_command, "--email", "Grace@Example.com")

    assert record == {
        "@context": CONTEXT_LD,
        "@id": f"urn:uuid:{confirmed.id}",
        "@type": "dpv:ConsentRecord",
        "dct:conformsTo": "https://w3id.org/dpv/schema/dpv-27560#record",
        "dct:identifier": str(confirmed.id),
        "dct:created": "2025-03-05T00:00:00.000Z",
        "dct:modified": "2025-03-05T00:00:00.000Z",
        "dct:hasVersion": "1",
        "dpv:hasDataSubject": {"@type": "dpv:DataSubject", "dct:identifier": "grace@example.com"},
        "dpv:hasProcess": {
            "@type": "dpv:Process",
            "dpv:hasPurpose": "dpv:DirectMarketing",
            "dpv:hasPersonalData": "pd:EmailAddress",
            "dpv:hasLegalBasis": "dpv:ExpressedConsent",
        },
        "dpv:hasConsentStatus": {
            "@type": "dpv:ConsentGiven",
            "dpv:isIndicatedAtTime": "2025-03-04T05:06:07.000Z",
            "dpv:isIndicatedBy": "dpv:DataSubject",
            "dpv:hasIndicationMethod": "FORM, DOUBLE_CONFIRMATION",
            "dpv:hasDuration": {"@type": "dpv:EndlessDuration"},
        },
    }


def test_an_erased_address_is_a_withdrawn_record_without_the_address(confirmed, run_command):
    with mock.patch("django.utils.timezone.now", return_value=datetime(2025, 6, 1, tzinfo=UTC)):
        consent_erase(type="EMAIL", address="grace@example.com", context=CONTEXT)

    [record] = records(run_command, "--email", "grace@example.com")

    assert record["dpv:hasDataSubject"] == f"urn:uuid:{confirmed.id}"
    assert record["dpv:hasConsentStatus"]["@type"] == "dpv:ConsentWithdrawn"
    assert record["dpv:hasConsentStatus"]["dpv:isIndicatedAtTime"] == "2025-06-01T00:00:00.000Z"
    assert "grace" not in json.dumps(record) and "erased:" not in json.dumps(record)


def test_a_receipt_holds_a_copy_of_the_records(confirmed):
    with mock.patch("django.utils.timezone.now", return_value=datetime(2025, 7, 1, tzinfo=UTC)):
        receipt = consent_receipt([confirmed])

    assert receipt["@type"] == "dpv:ConsentReceipt"
    assert receipt["dct:conformsTo"] == "https://w3id.org/dpv/schema/dpv-27560#receipt"
    assert receipt["@id"] == f"urn:uuid:{receipt['dpv:hasIdentifier']}"
    assert receipt["dct:created"] == "2025-07-01T00:00:00.000Z"
    [record] = receipt["dpv:hasRecordOfActivity"]
    assert record["dct:identifier"] == str(confirmed.id)
