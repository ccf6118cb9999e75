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


def envelope(event: ConsentEvent, consent: MarketingConsent) -> dict[str, Any]:
    """The body of an event, `consent` being the consent as it was right after it
    (`consents.selectors.consents_after`), shown as the subject access export shows it: in the
    consent API's shape, an erased address's consent without the address or its hash."""
    slug = SLUGS[event.kind]
    entity = json.dumps(consent_record(consent), separators=(",", ":"))
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
