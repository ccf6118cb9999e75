"""Reads: how every door reads consents, in one place (docs/design.md).

The ledger (`consents.ledger`) is the only code that writes and holds the rules; a selector reads
what is stored and asks the ledger's rules what it means (eligibility, the consent an event
recorded). Doors call selectors and translate what they answer into their own shapes. Each
selector's queries are pinned by tests/consents/test_selectors.py.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta
from uuid import UUID

from django.conf import settings
from django.db import connection
from django.db.models import Count, OuterRef, Q, QuerySet, Subquery
from django.utils import timezone

from consents.addresses import ERASED_PREFIX, by_address, stored_spellings
from consents.ledger import Eligibility, communication_eligibility, consent_as_recorded
from consents.links import UNSUBSCRIBE, consent_link, link_url
from consents.models import (
    CONSENT_COLUMNS,
    ConsentEvent,
    ConsentState,
    ConsentType,
    Door,
    EventKind,
    MarketingConsent,
)
from consents.revocations.models import RevokeJob
from consents.webhooks.models import WebhookEndpoint
from consentsite.rows import from_row

# The read of one address's consent (and its tombstone's): a constant statement with bound
# parameters, so that the hot path builds no query, and PostgreSQL runs it prepared (see
# DATABASE_PREPARE_THRESHOLD in docs/operations.md); SQLite caches it as a prepared statement.
_CONSENT_OF_ADDRESS_SQL = (
    f"SELECT {', '.join(CONSENT_COLUMNS)} FROM {MarketingConsent._meta.db_table} "
    "WHERE type = %s AND address IN (%s, %s)"
)


def consent_of_address(type: str, address: str) -> MarketingConsent | None:
    """The consent of a normalised address; for an erased address, its tombstone (a REVOKED
    consent whose stored address is the hash: check `is_erased` before showing it). One
    statement."""
    spellings = stored_spellings([(type, address)])
    with connection.cursor() as cursor:
        cursor.execute(_CONSENT_OF_ADDRESS_SQL, [type, *(stored for _, stored in spellings)])
        rows = cursor.fetchall()
    consents = (from_row(MarketingConsent, row) for row in rows)
    return by_address(consents, spellings).get((type, address))


@dataclass(frozen=True)
class AddressConsent:
    """What the doors answer of an address: its consent to show, whether marketing may be sent
    to it now and, while it is CONFIRMED, the link that unsubscribes it. No consent is shown for
    an address without one, nor for an erased address: that one is not eligible, without saying
    that it was erased (docs/privacy.md)."""

    consent: MarketingConsent | None
    eligibility: Eligibility
    unsubscribe_url: str | None = None


def address_consent(type: str, address: str) -> AddressConsent:
    """The consent of a normalised address with its eligibility (ledger rule 9). One statement."""
    consent = consent_of_address(type, address)
    eligibility = communication_eligibility(consent, type=type)
    if consent is None or consent.is_erased:
        return AddressConsent(None, eligibility)
    if consent.state != ConsentState.CONFIRMED:
        return AddressConsent(consent, eligibility)
    return AddressConsent(consent, eligibility, link_url(consent.id, purpose=UNSUBSCRIBE))


def consents_of_addresses(addresses: Iterable[tuple[str, str]]) -> list[MarketingConsent]:
    """The consent of each normalised address (`(type, address)`) that has one, in the addresses'
    order; for an erased address, its tombstone. One statement per address."""
    consents = (consent_of_address(type, address) for type, address in addresses)
    return [consent for consent in consents if consent is not None]


def consent_by_id(consent_id: UUID | str, *, erased_too: bool = False) -> MarketingConsent | None:
    """A consent by its id, or None (an unknown id, or one that is not a UUID). Never a
    tombstone unless `erased_too`: an erased address's consent is reached only through its
    address, so that no door shows, edits or confirms it by id; only the admin's ISO 27560
    receipt, which names a tombstone's data subject by the consent's id, reads one by id. One
    query."""
    try:
        consent_id = consent_id if isinstance(consent_id, UUID) else UUID(consent_id)
    except (TypeError, ValueError):
        return None
    objects = MarketingConsent.objects
    consents = objects.all() if erased_too else objects.not_erased()
    return consents.filter(id=consent_id).first()


@dataclass(frozen=True)
class ShownConsent:
    """A consent as a door shows it: the consent and the link that goes with it, if any
    (`{"type", "url"}`: confirm a PENDING consent, unsubscribe from a CONFIRMED one)."""

    consent: MarketingConsent
    link: dict[str, str] | None = None


def shown_consent(consent: MarketingConsent, *, with_link: bool = True) -> ShownConsent:
    """A consent as a door shows it, with its link unless `with_link` is false. No query."""
    return ShownConsent(consent, consent_link(consent) if with_link else None)


def sms_message_event(message_sid: str) -> ConsentEvent | None:
    """The event an inbound SMS message already recorded (the SMS door's retries are answered
    from it), or None. One query."""
    return ConsentEvent.objects.filter(door=Door.SMS, request_id=message_sid).first()


@dataclass(frozen=True)
class ConsentStatus:
    """An address's consent as a status: its state, and when and through which door that state
    was last set (`door` None when no event says: a consent written around the ledger)."""

    state: str
    updated_at: datetime
    door: str | None


def consent_statuses(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], ConsentStatus]:
    """The status of the consent of each normalised address (`(type, address)`) that has one;
    an erased address's tombstone stands for its consent. One query."""
    spellings = stored_spellings(keys)
    if not spellings:
        return {}
    rows = MarketingConsent.objects.filter(address__in={address for _, address in spellings})
    return {
        key: ConsentStatus(
            state=consent.state,
            updated_at=consent.last_status_update_at or consent.updated_date,
            door=consent.last_status_update_door,
        )
        for key, consent in by_address(_with_last_status_update(rows), spellings).items()
    }


def _with_last_status_update(consents: QuerySet[MarketingConsent]) -> QuerySet[MarketingConsent]:
    """Annotate each consent with the time and door of the last write that set its state:
    replays (UNCHANGED), refused old writes (SUPERSEDED) and writes that left the state alone
    (only extended fields) did not update the status, whatever door they came through."""
    last_update = (
        ConsentEvent.objects.filter(
            consent=OuterRef("pk"), kind__in=[EventKind.CREATED, EventKind.UPDATED]
        )
        .exclude(requested_state="")
        .order_by("-recorded_at", "-id")
    )
    return consents.annotate(
        last_status_update_at=Subquery(last_update.values("recorded_at")[:1]),
        last_status_update_door=Subquery(last_update.values("door")[:1]),
    )


def consents_after(events: Sequence[ConsentEvent]) -> dict[int, MarketingConsent]:
    """Each event's consent as it was right after the event, by event id: the stored consent
    while it is still at the event's revision; otherwise (changed again since, or deleted) the
    consent as the event recorded it (the ledger's `consent_as_recorded`). One query."""
    stored = MarketingConsent.objects.in_bulk({event.consent_id for event in events})
    after = {}
    for event in events:
        consent = stored.get(event.consent_id)
        if consent is None or consent.revision != event.revision:
            consent = consent_as_recorded(event)
        after[event.id] = consent
    return after


def event_by_id(event_id: int) -> ConsentEvent:
    """An event by its id; raises `ConsentEvent.DoesNotExist` for an unknown one. One query."""
    return ConsentEvent.objects.get(id=event_id)


def latest_event_id() -> int:
    """The id of the latest event, 0 when there is none. One query."""
    return ConsentEvent.objects.order_by("-id").values_list("id", flat=True).first() or 0


def first_event_since(since: datetime) -> ConsentEvent | None:
    """The first event, in ledger order, recorded at or after `since`, or None. One query."""
    return ConsentEvent.objects.filter(recorded_at__gte=since).order_by("id").first()


def webhook_endpoint_by_id(endpoint_id: int) -> WebhookEndpoint:
    """An endpoint, with its delivery state, by its id; raises `WebhookEndpoint.DoesNotExist`
    for an unknown one. One query."""
    return WebhookEndpoint.objects.get(id=endpoint_id)


def webhook_endpoint_has_work(endpoint_id: int) -> bool:
    """Whether an active endpoint has something to deliver now: its head event's retry is due,
    or, with no retry pending, an event lies past its cursor. False for an inactive or unknown
    endpoint. Two queries (one when no active endpoint has the id, or a retry is pending)."""
    endpoint = WebhookEndpoint.objects.filter(id=endpoint_id, is_active=True).first()
    if endpoint is None:
        return False
    if endpoint.next_attempt_at is not None:
        return endpoint.next_attempt_at <= timezone.now()
    return ConsentEvent.objects.filter(id__gt=endpoint.cursor).exists()


def webhook_endpoint_events(
    endpoint: WebhookEndpoint, *, after: int, up_to: int, limit: int
) -> list[ConsentEvent]:
    """The first `limit` events, in ledger order, that an endpoint subscribes to (its
    `matching_events`) with an id past `after` and at most `up_to`. One query."""
    return list(endpoint.matching_events().filter(id__gt=after, id__lte=up_to)[:limit])


def asleep_webhook_endpoints() -> list[int]:
    """The ids of the active endpoints with no delivery queued and no retry pending, in id
    order: those a commit wakes. Every commit asks this, so it is one fixed statement rather
    than a query the ORM builds anew each time. One query."""
    table = WebhookEndpoint._meta.db_table
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(
            f"SELECT id FROM {table} WHERE is_active AND NOT wake_pending"
            " AND (next_attempt_at IS NULL OR next_attempt_at <= %s) ORDER BY id",
            [now],
        )
        return [row[0] for row in cursor.fetchall()]


def webhook_endpoints_due() -> list[int]:
    """The ids of the active endpoints that no delivery holds (no unexpired lease) and that have
    a retry due or, with none pending, events past their cursor; in id order. Two queries."""
    now = timezone.now()
    latest = latest_event_id()
    due = (
        WebhookEndpoint.objects.filter(is_active=True)
        .filter(Q(lease_expires_at__isnull=True) | Q(lease_expires_at__lt=now))
        .filter(Q(next_attempt_at__lte=now) | Q(next_attempt_at__isnull=True, cursor__lt=latest))
    )
    return list(due.values_list("id", flat=True))


def stalled_revoke_jobs() -> QuerySet[RevokeJob]:
    """Unfinished revoke jobs without progress for REVOKE_JOB_STALLED_SECONDS: queued while the
    broker was down, or whose worker was killed. A queryset; no query until it is evaluated."""
    since = timezone.now() - timedelta(seconds=settings.REVOKE_JOB_STALLED_SECONDS)
    return RevokeJob.objects.exclude(status=RevokeJob.Status.DONE).filter(updated_at__lt=since)


def consents_not_erased(
    *, state: str | None = None, type: str | None = None
) -> QuerySet[MarketingConsent]:
    """Every consent but the erased addresses' tombstones (of `state` and of `type` when given),
    ordered by type and address: a queryset, for a door to count and walk (`iterator()`, or
    `consents.batches.keyset_batches`, which orders by id). No query until it is evaluated."""
    consents = MarketingConsent.objects.not_erased().order_by("type", "address")
    if state:
        consents = consents.filter(state=state)
    if type:
        consents = consents.filter(type=type)
    return consents


def email_consents_at_domain(domain: str) -> QuerySet[MarketingConsent]:
    """The email consents whose address is at `domain`, a normalised domain (exactly it, not its
    subdomains). Compared without regard to case, so that a row stored in a legacy spelling is
    found too (a door reports it rather than miss it). A queryset; no query until evaluated."""
    return MarketingConsent.objects.filter(type=ConsentType.EMAIL, address__iendswith=f"@{domain}")


def consent_counts_by_state() -> dict[str, int]:
    """How many consents are in each state, tombstones among them (REVOKED); a state that no
    consent is in is left out. One query."""
    return dict(MarketingConsent.objects.values_list("state").annotate(Count("id")))


def consent_events_of(
    consents: Iterable[MarketingConsent], addresses: Iterable[tuple[str, str]]
) -> list[ConsentEvent]:
    """Every event of these consents and of the normalised addresses (`(type, address)`), also
    those of an address's earlier consents, deleted since: newest first. One query."""
    belongs = Q(consent_id__in=[consent.id for consent in consents])
    for type, address in addresses:
        belongs |= Q(type=type, address=address)
    return list(ConsentEvent.objects.filter(belongs).order_by("-recorded_at", "-id"))


def member_api_addresses(account_ids: Sequence[str]) -> set[tuple[str, str]]:
    """The addresses (`(type, address)`) whose consents the members of these account ids set
    through the member API (the actor it records), erased ones left out: a member who changed
    email still set the old address's consent. One query (none for no account id)."""
    events = ConsentEvent.objects.filter(door=Door.MEMBER_API, actor__in=account_ids).exclude(
        address__startswith=ERASED_PREFIX
    )
    return set(events.values_list("type", "address").distinct())


@dataclass(frozen=True)
class SortKey:
    """A column that consents are ordered by, and its direction."""

    column: str
    descending: bool = False

    @property
    def ordering(self) -> str:
        return f"-{self.column}" if self.descending else self.column

    def flipped(self) -> SortKey:
        return SortKey(self.column, not self.descending)


@dataclass(frozen=True)
class ConsentsPage:
    """Consents in the order they were asked in, and whether more lie beyond them in the
    direction they were read (after the last one, or, read backwards, before the first one)."""

    consents: list[MarketingConsent]
    more: bool


def consents_page(
    where: Q,
    order: Sequence[SortKey],
    limit: int,
    *,
    after: Sequence[object] | None = None,
    before: Sequence[object] | None = None,
) -> ConsentsPage:
    """A page of at most `limit` not-erased consents matching `where`, in `order`, whose last key
    must be unique (the id) so that no two consents tie in it: the first ones; or, given a keyset
    position (one value per key of `order`: those of a consent that ended a page), the first ones
    strictly `after` it, or the last ones strictly `before` it. Read by position, not by OFFSET,
    so that a page costs the same wherever it is. One query, of `limit + 1` rows: the one past
    the page says whether there are more."""
    if after is not None and before is not None:
        raise ValueError("A page is read after a position or before one, not both.")
    backwards = before is not None
    position = before if backwards else after
    # Read backwards, the page is the first `limit` in the opposite order, turned round.
    read_order = [key.flipped() for key in order] if backwards else list(order)
    consents = MarketingConsent.objects.not_erased().filter(where)
    if position is not None:
        consents = consents.filter(_beyond(read_order, position))
    rows = list(consents.order_by(*(key.ordering for key in read_order))[: limit + 1])
    more = len(rows) > limit
    rows = rows[:limit]
    if backwards:
        rows.reverse()
    return ConsentsPage(consents=rows, more=more)


def _beyond(order: Sequence[SortKey], position: Sequence[object]) -> Q:
    """The rows that come strictly after `position` in `order`: greater in the first key (less,
    for a descending one), or equal in it and greater in the next, and so on."""
    beyond, equal_so_far = Q(), Q()
    for key, value in zip(order, position, strict=True):
        op = "lt" if key.descending else "gt"
        beyond |= equal_so_far & Q(**{f"{key.column}__{op}": value})
        equal_so_far &= Q(**{key.column: value})
    return beyond
