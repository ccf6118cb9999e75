"""The subject access export (docs/privacy.md): one JSON document with everything held about a
person: their member records, the consents of their addresses in the consent API's shape, and
every proof event, newest first."""

from typing import Any

from django.utils import timezone

from consents.addresses import is_erased
from consents.api.serializers import MarketingConsentSerializer
from consents.dates import format_date
from consents.models import ConsentEvent, MarketingConsent
from consents.privacy.person import Person
from consents.selectors import consent_events_of, consents_of_addresses
from members.models import Member


def subject_access_export(person: Person) -> dict[str, Any]:
    consents = consents_of_addresses(person.addresses)
    events = consent_events_of(consents, person.addresses)
    return {
        "exportedAt": format_date(timezone.now()),
        "scope": person.scope,
        "members": [member_record(member) for member in person.members],
        "consents": [consent_record(consent) for consent in consents],
        "events": [event_record(event) for event in events],
    }


def member_record(member: Member) -> dict[str, Any]:
    return {
        "accountId": str(member.account_id),
        "loyaltyId": member.loyalty_id,
        "externalId": member.external_id,
        "email": member.email,
        "phone": member.phone,
        "firstName": member.first_name,
        "lastName": member.last_name,
        "createdAt": format_date(member.created_at),
        "updatedAt": format_date(member.updated_at),
    }


def consent_record(consent: MarketingConsent) -> dict[str, Any]:
    """A consent in the consent API's shape; an erased address's tombstone without its hash,
    marked `erased`."""
    body = MarketingConsentSerializer(consent).data
    if consent.is_erased:
        body["details"] = {"type": consent.type}
        body["erased"] = True
    return body


def event_record(event: ConsentEvent) -> dict[str, Any]:
    return {
        "consentId": str(event.consent_id),
        "type": event.type,
        "address": None if is_erased(event.address) else event.address,
        "kind": event.kind,
        "revision": event.revision,
        "previousState": event.previous_state,
        "state": event.state,
        "requestedState": event.requested_state,
        "activity": {
            "source": event.activity_source,
            "description": event.activity_description,
            "optInLevel": event.activity_opt_in_level,
            "date": format_date(event.activity_date) if event.activity_date else None,
        },
        "request": event.request,
        "door": event.door,
        "actor": event.actor,
        "requestId": event.request_id,
        "ipAddress": event.ip_address,
        "userAgent": event.user_agent,
        "note": event.note,
        "recordedAt": format_date(event.recorded_at),
    }
