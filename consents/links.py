"""Signed confirmation and unsubscribe links (docs/design.md).

A token carries the consent id and its issue time, never the address. It is signed with Django's
signing and a per-purpose salt, so a token made for one purpose is refused for the other.
Confirmation tokens expire after CONFIRMATION_LINK_MAX_AGE; unsubscribe tokens keep working, as
an opt-out must always be possible.
"""

import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from urllib.parse import urlencode
from uuid import UUID

from django.conf import settings
from django.core import signing

from consents.exceptions import ExpiredLink, InvalidLink
from consents.models import ConsentState, MarketingConsent

CONFIRM = "CONFIRMATION"
UNSUBSCRIBE = "REVOKE_CONFIRMATION"

_SALTS = {CONFIRM: "consents.links.confirm", UNSUBSCRIBE: "consents.links.unsubscribe"}
_PATHS = {CONFIRM: "/_manage-consent/subscribe", UNSUBSCRIBE: "/_manage-consent/unsubscribe"}


@dataclass(frozen=True)
class LinkToken:
    consent_id: UUID
    issued_at: datetime


@cache
def _signer(purpose: str) -> signing.TimestampSigner:
    """One signer per purpose for the process (the secret key is read once, at first use)."""
    return signing.TimestampSigner(salt=_SALTS[purpose])


def make_token(consent_id: UUID, *, purpose: str) -> str:
    issued_ms = int(time.time() * 1000)
    return _signer(purpose).sign_object({"c": str(consent_id), "t": issued_ms})


def read_token(token: str, *, purpose: str) -> LinkToken:
    """The consent id and issue time in a token; InvalidLink or ExpiredLink if unusable."""
    max_age = settings.CONFIRMATION_LINK_MAX_AGE if purpose == CONFIRM else None
    try:
        payload = _signer(purpose).unsign_object(token, max_age=max_age)
        return LinkToken(
            consent_id=UUID(payload["c"]),
            issued_at=datetime.fromtimestamp(payload["t"] / 1000, tz=UTC),
        )
    except signing.SignatureExpired as exc:
        raise ExpiredLink("This link has expired.") from exc
    except (signing.BadSignature, KeyError, TypeError, ValueError) as exc:
        raise InvalidLink("This link is not valid.") from exc


def link_url(consent_id: UUID, *, purpose: str) -> str:
    query = urlencode({"token": make_token(consent_id, purpose=purpose)})
    return f"{settings.PUBLIC_BASE_URL}{_PATHS[purpose]}?{query}"


def consent_link(consent: MarketingConsent) -> dict[str, str] | None:
    """The link a write response hands out: confirm a PENDING consent, revoke a CONFIRMED one."""
    purpose = {ConsentState.PENDING: CONFIRM, ConsentState.CONFIRMED: UNSUBSCRIBE}.get(
        consent.state
    )
    if purpose is None:
        return None
    return {"type": purpose, "url": link_url(consent.id, purpose=purpose)}
