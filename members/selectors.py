"""Reads of members and their sessions: for the member API, the member a path names and, on every
call with a correlation id, its session; for privacy requests, the members a person is; for the
admin, the consents of a member's addresses."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import Iterable

from django.db import connection
from django.db.models import Q, QuerySet
from django.utils import timezone

from consents.addresses import normalize_email, normalize_phone
from consents.models import ClientApiKey, ConsentType, MarketingConsent
from consentsite.rows import columns, from_row
from members.exceptions import AmbiguousIdentifier
from members.models import IdentifierType, Member, MemberSession

_SESSION_COLUMNS = columns(MemberSession, "s")

# Every member API call with a correlation id reads its session: a constant statement with bound
# parameters, so it builds no query and PostgreSQL runs it prepared.
_ACTIVE_SESSION_SQL = (
    f"SELECT {', '.join(_SESSION_COLUMNS + columns(Member, 'm'))} "
    f"FROM {MemberSession._meta.db_table} s JOIN {Member._meta.db_table} m ON m.id = s.member_id "
    "WHERE s.correlation_id = %s AND s.api_key_id = %s AND s.expires_at > %s"
)


def active_session(correlation_id: str, api_key: ClientApiKey) -> MemberSession | None:
    """The unexpired session of `correlation_id` started by the client of `api_key`, with its
    member; None for any other (unknown, expired, or another client's). One query."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_SESSION_SQL, [correlation_id, api_key.pk, now])
        row = cursor.fetchone()
    if row is None:
        return None
    session = from_row(MemberSession, row[: len(_SESSION_COLUMNS)])
    session.member = from_row(Member, row[len(_SESSION_COLUMNS) :])
    return session


def member_identified_by(identifier_type: str, identifier: str) -> Member | None:
    """The member that `identifier` names, read as `identifier_type` (an `IdentifierType`) says,
    or None. An email or phone is normalised first, as it is stored (raises `InvalidAddress`);
    an account id that is no UUID names no one, and asks nothing. One that more than one member
    has (emails and phone numbers are not unique) raises `AmbiguousIdentifier`. One query."""
    lookup = _identifier_lookup(identifier_type, identifier)
    if lookup is None:
        return None
    found = list(Member.objects.filter(**lookup)[:2])
    if len(found) > 1:
        raise AmbiguousIdentifier(identifier_type)
    return found[0] if found else None


def _identifier_lookup(identifier_type: str, identifier: str) -> dict[str, object] | None:
    """The column and value an identifier is stored as; None for an account id that is no UUID."""
    if identifier_type == IdentifierType.ACCOUNT_ID:
        try:
            return {"account_id": uuid.UUID(identifier)}
        except ValueError:
            return None
    if identifier_type == IdentifierType.EMAIL:
        return {"email": normalize_email(identifier)}
    if identifier_type == IdentifierType.PHONE_NUMBER:
        return {"phone": normalize_phone(identifier)}
    field = {IdentifierType.LOYALTY_ID: "loyalty_id", IdentifierType.EXTERNAL_ID: "external_id"}
    return {field[identifier_type]: identifier}


def members_with_address(type: str, address: str) -> QuerySet[Member]:
    """The members whose email (for an `EMAIL` address) or phone (for a `PHONE` one) is a
    normalised address, ordered by id: any number of them, as emails and phone numbers are not
    unique. A queryset; no query until it is evaluated."""
    field = "email" if type == ConsentType.EMAIL else "phone"
    return Member.objects.filter(**{field: address}).order_by("id")


def members_with_any_id(identifier: str) -> QuerySet[Member]:
    """The members whose account id, loyalty id or external id is `identifier` (an identifier
    that is no UUID is compared with the last two only), ordered by id. A queryset; no query
    until it is evaluated."""
    ids = Q(loyalty_id=identifier) | Q(external_id=identifier)
    with contextlib.suppress(ValueError):
        ids |= Q(account_id=uuid.UUID(identifier))
    return Member.objects.filter(ids).order_by("id")


def members_with_loyalty_or_external_id(
    loyalty_ids: Iterable[str], external_ids: Iterable[str]
) -> QuerySet[Member]:
    """The members whose loyalty id is one of `loyalty_ids` or whose external id is one of
    `external_ids` (an empty id names no one), ordered by id. A queryset, for a write to lock;
    no query until it is evaluated."""
    return Member.objects.filter(
        Q(loyalty_id__in=set(loyalty_ids) - {""}) | Q(external_id__in=set(external_ids) - {""})
    )


def consents_of_member(member: Member) -> list[MarketingConsent]:
    """The consents stored under a member's email and phone as they are spelt, the email's
    first: an erased address's tombstone, stored under a hash, is not among them. One query per
    address the member has."""
    addresses = [(ConsentType.EMAIL, member.email), (ConsentType.PHONE, member.phone)]
    return [
        consent
        for type, address in addresses
        if address
        for consent in MarketingConsent.objects.filter(type=type, address=address)
    ]
