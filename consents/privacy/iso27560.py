"""Consents as ISO/IEC TS 27560:2023 consent records and receipts, in the DPV-27560 profile that
the W3C Data Privacy Vocabularies and Controls Community Group publishes for the standard
(https://w3id.org/dpv/guides/consent-27560). What we fill and what we cannot: docs/privacy.md."""

import uuid
from typing import Any

from django.utils import timezone

from consents.dates import format_date
from consents.models import ConsentState, ConsentType, MarketingConsent
from consents.privacy.person import Person
from consents.selectors import consents_of_addresses

CONTEXT = {
    "dpv": "https://w3id.org/dpv#",
    "pd": "https://w3id.org/dpv/pd#",
    "dct": "http://purl.org/dc/terms/",
    "dpv-27560": "https://w3id.org/dpv/schema/dpv-27560#",
}
RECORD_PROFILE = "https://w3id.org/dpv/schema/dpv-27560#record"
RECEIPT_PROFILE = "https://w3id.org/dpv/schema/dpv-27560#receipt"
STATUS = {
    ConsentState.CONFIRMED: "dpv:ConsentGiven",
    ConsentState.PENDING: "dpv:ConsentRequested",
    ConsentState.REVOKED: "dpv:ConsentWithdrawn",
    ConsentState.NEVER_CONFIRMED: "dpv:ConsentUnknown",
    ConsentState.UNKNOWN_STATE: "dpv:ConsentUnknown",
}
PERSONAL_DATA = {ConsentType.EMAIL: "pd:EmailAddress", ConsentType.PHONE: "pd:TelephoneNumber"}


def consent_record(consent: MarketingConsent) -> dict[str, Any]:
    """One consent as a DPV-27560 consent record (JSON-LD). An erased address's tombstone names
    its data subject by the consent's id, never by the address or its hash."""
    subject = (
        f"urn:uuid:{consent.id}"
        if consent.is_erased
        else {"@type": "dpv:DataSubject", "dct:identifier": consent.address}
    )
    return {
        "@context": CONTEXT,
        "@id": f"urn:uuid:{consent.id}",
        "@type": "dpv:ConsentRecord",
        "dct:conformsTo": RECORD_PROFILE,
        "dct:identifier": str(consent.id),
        "dct:created": format_date(consent.created_date),
        "dct:modified": format_date(consent.updated_date),
        "dct:hasVersion": str(consent.revision),
        "dpv:hasDataSubject": subject,
        "dpv:hasProcess": {
            "@type": "dpv:Process",
            "dpv:hasPurpose": "dpv:DirectMarketing",
            "dpv:hasPersonalData": PERSONAL_DATA[consent.type],
            "dpv:hasLegalBasis": "dpv:ExpressedConsent",
        },
        "dpv:hasConsentStatus": _status(consent),
    }


def _status(consent: MarketingConsent) -> dict[str, Any]:
    """The consent event: its state, when and how it was indicated, and by whom."""
    status: dict[str, Any] = {"@type": STATUS[consent.state]}
    if consent.state == ConsentState.REVOKED:
        when, method = consent.revoke_date, [consent.revoke_source]
    elif consent.state in (ConsentState.CONFIRMED, ConsentState.PENDING):
        when = consent.confirmation_date
        method = [consent.confirmation_source, consent.confirmation_opt_in_level]
    else:
        when, method = consent.updated_date, []
    status["dpv:isIndicatedAtTime"] = format_date(when)
    if method:
        status["dpv:isIndicatedBy"] = "dpv:DataSubject"
        status["dpv:hasIndicationMethod"] = ", ".join(filter(None, method))
    # We keep a consent until the person withdraws it: no end is set.
    status["dpv:hasDuration"] = {"@type": "dpv:EndlessDuration"}
    return status


def consent_receipt(consents: list[MarketingConsent]) -> dict[str, Any]:
    """A DPV-27560 consent receipt: a copy of the records, as the guide's profile has it."""
    receipt_id = str(uuid.uuid4())
    return {
        "@context": CONTEXT,
        "@id": f"urn:uuid:{receipt_id}",
        "@type": "dpv:ConsentReceipt",
        "dct:conformsTo": RECEIPT_PROFILE,
        "dpv:hasIdentifier": receipt_id,
        "dct:created": format_date(timezone.now()),
        "dpv:hasRecordOfActivity": [consent_record(consent) for consent in consents],
    }


def consent_records(person: Person) -> list[dict[str, Any]]:
    """The consent record of each of a person's addresses that has a consent."""
    return [consent_record(consent) for consent in consents_of_addresses(person.addresses)]
