"""The body of a change event: the source platform's domain-event envelope, so that a consumer
written for its marketing-consent events parses ours, plus our proof in `consentProof`."""

from __future__ import annotations

import json
import uuid
from typing import Any

from consents.dates import format_date
from consents.models import ConsentEvent, EventKind, MarketingConsent
from consents.privacy.export import consent_record

ENTITY_FQDN = "wix.marketing.marketing_consent.v1.marketing_consent"
# Message ids are derived from the ledger event's id: the same event always has the same id, so
# consumers can drop duplicates (delivery is at least once).
MESSAGE_ID_NAMESPACE = uuid.UUID("0f9d6c54-2b1e-4c8e-9a55-51d3c1b0c0de")
SLUGS = {
    EventKind.CREATED: "created",
    EventKind.UPDATED: "updated",
    EventKind.DELETED: "deleted",
    EventKind.ERASED: "deleted",
}


def message_id(event: ConsentEvent) -> str:
    return str(uuid.uuid5(MESSAGE_ID_NAMESPACE, f"consent-event:{event.id}"))


def consent_as_recorded(event: ConsentEvent, consent: MarketingConsent | None) -> dict[str, Any]:
    """The consent as the consent API shows it, right after the event: the stored consent while
    it is still at the event's revision; otherwise (changed again since, or deleted) what the
    event itself recorded of it (its state, revision and the activity the change set). An erased
    address's consent is shown as the subject access export shows it: without the address or
    its hash."""
    if consent is not None and consent.revision == event.revision:
        return consent_record(consent)
    recorded = MarketingConsent(
        id=event.consent_id,
        type=event.type,
        address=event.address,
        state=event.state,
        revision=event.revision,
        created_date=event.recorded_at,
        updated_date=event.recorded_at,
    )
    if event.activity_date is not None:
        if event.activity_opt_in_level:
            recorded.confirmation_source = event.activity_source
            recorded.confirmation_description = event.activity_description
            recorded.confirmation_date = event.activity_date
            recorded.confirmation_opt_in_level = event.activity_opt_in_level
        else:
            recorded.revoke_source = event.activity_source
            recorded.revoke_description = event.activity_description
            recorded.revoke_date = event.activity_date
    return consent_record(recorded)


def envelope(event: ConsentEvent, consent: MarketingConsent | None) -> dict[str, Any]:
    slug = SLUGS[event.kind]
    entity = json.dumps(consent_as_recorded(event, consent), separators=(",", ":"))
    body: dict[str, Any] = {
        "id": message_id(event),
        "entityFqdn": ENTITY_FQDN,
        "slug": slug,
        "entityId": str(event.consent_id),
        "eventTime": format_date(event.recorded_at),
    }
    if slug == "created":
        body["createdEvent"] = {"entityAsJson": entity}
    elif slug == "updated":
        body["updatedEvent"] = {"currentEntityAsJson": entity}
    else:
        body["deletedEvent"] = {"movedToTrash": False, "deletedEntityAsJson": entity}
    body["consentProof"] = {
        "ledgerEventId": event.id,
        "kind": event.kind,
        "previousState": event.previous_state,
        "state": event.state,
        "revision": str(event.revision),
        "door": event.door,
        "actor": event.actor,
        "requestId": event.request_id,
    }
    return body


def encode(body: dict[str, Any]) -> str:
    return json.dumps(body, separators=(",", ":"))
