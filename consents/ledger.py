"""The consent ledger: the only code that changes a consent.

Every door (member API, consent API, manage-consent links, admin, commands) calls one of the
`consent_<verb>` functions with a `ChangeContext`. Each call validates the change against the rules
in docs/design.md, writes the new state and exactly one `ConsentEvent` in the same transaction, and
returns a `LedgerResult`. A refused call raises a `ConsentError` and changes nothing.
"""

from __future__ import annotations

import copy
import dataclasses
import re
from collections import Counter
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from itertools import islice
from typing import Any, NamedTuple
from uuid import UUID, uuid4

from django.conf import settings
from django.db import IntegrityError, connection, models, transaction
from django.db.models import F, Q
from django.dispatch import Signal
from django.http import HttpRequest
from django.utils import timezone

from consents.addresses import erased_address, normalize_address
from consents.exceptions import (
    ConsentAlreadyExists,
    ConsentError,
    ConsentNotFound,
    InvalidAddress,
    InvalidChange,
    RevisionMismatch,
    StaleLink,
)
from consents.ledger_pg import staging_row, to_json, upsert_in_one_statement, upsert_many_in_sql
from consents.models import (
    ConfirmationSource,
    ConsentEvent,
    ConsentState,
    ConsentType,
    EventKind,
    MarketingConsent,
    OptInLevel,
    RevokeSource,
)

STATES_NEEDING_CONFIRMATION = frozenset({ConsentState.PENDING, ConsentState.CONFIRMED})
# Each enum's values, computed once: `TextChoices.values` builds a new list on every access.
_ENUM_VALUES = {
    choices: frozenset(choices.values)
    for choices in (ConsentState, ConfirmationSource, OptInLevel, RevokeSource)
}
# Activity dates later than this past the server's clock are refused: "latest consent wins", so a
# date far in the future would freeze the consent against every later opt-in or opt-out.
MAX_CLOCK_SKEW = timedelta(minutes=5)

# Sent inside the transaction that recorded events which changed a consent (created, updated,
# deleted): change-event delivery wakes once it commits (see consents/webhooks).
changes_recorded = Signal()
_CHANGING_KINDS = frozenset({EventKind.CREATED, EventKind.UPDATED, EventKind.DELETED})


def _announce(kinds: Iterable[str]) -> None:
    if not _CHANGING_KINDS.isdisjoint(kinds):
        changes_recorded.send(sender=ConsentEvent)


_UNSTORABLE_CHARACTERS = re.compile("[\x00\ud800-\udfff]")


def unstorable_json_fault(value: Any) -> str | None:
    """Why a JSON value cannot be stored as sent, or None. Text with NUL or a lone surrogate
    (PostgreSQL's jsonb refuses both; neither is text a person wrote), or nesting deeper than
    MAX_JSON_DEPTH. Walked without recursion, so that any depth is answered."""
    pending = [(value, 1)]
    while pending:
        item, depth = pending.pop()
        if isinstance(item, str):
            if _UNSTORABLE_CHARACTERS.search(item):
                return "Text may not contain NUL characters or lone surrogates."
        elif isinstance(item, dict | list):
            if depth > settings.MAX_JSON_DEPTH:
                return f"Nested deeper than {settings.MAX_JSON_DEPTH} levels."
            children = [*item.keys(), *item.values()] if isinstance(item, dict) else item
            pending += [(child, depth + 1) for child in children]
    return None


def to_millisecond(value: datetime | None) -> datetime | None:
    """A date to the millisecond: the precision every door and export writes dates back with.
    Activity dates are kept at it, so a consent read and written back is a no-op, never an
    older activity that would be superseded."""
    return value if value is None else value.replace(microsecond=value.microsecond // 1000 * 1000)


def _now() -> datetime:
    return to_millisecond(timezone.now())


@dataclass(frozen=True)
class ChangeContext:
    """Who asks for a change, through which door: recorded on the change's event."""

    door: str
    actor: str
    request_id: str = ""
    ip_address: str | None = None
    user_agent: str = ""
    note: str = ""

    @classmethod
    def from_request(cls, request: HttpRequest, *, door: str, actor: str) -> ChangeContext:
        return cls(
            door=door,
            actor=actor,
            request_id=getattr(request, "request_id", ""),
            ip_address=request.META.get("REMOTE_ADDR") or None,
            user_agent=request.META.get("HTTP_USER_AGENT", "")[:1000],
        )


@dataclass(frozen=True)
class ConfirmationActivity:
    """How and when a person agreed. No date means "now" (the server's time)."""

    source: str = ConfirmationSource.UNKNOWN_SOURCE
    description: str = ""
    updated_date: datetime | None = None
    opt_in_level: str = OptInLevel.UNKNOWN_OPT_IN_LEVEL

    def __post_init__(self) -> None:
        object.__setattr__(self, "updated_date", to_millisecond(self.updated_date))

    def same_as_stored(self, consent: MarketingConsent) -> bool:
        return consent.has_confirmation and (
            self.source,
            self.description,
            self.opt_in_level,
            self.updated_date or consent.confirmation_date,
        ) == (
            consent.confirmation_source,
            consent.confirmation_description,
            consent.confirmation_opt_in_level,
            consent.confirmation_date,
        )


@dataclass(frozen=True)
class RevokeActivity:
    """How and when a person withdrew. No date means "now" (the server's time)."""

    source: str = RevokeSource.UNKNOWN_SOURCE
    description: str = ""
    updated_date: datetime | None = None

    def __post_init__(self) -> None:
        object.__setattr__(self, "updated_date", to_millisecond(self.updated_date))

    def same_as_stored(self, consent: MarketingConsent) -> bool:
        return consent.has_revoke and (
            self.source,
            self.description,
            self.updated_date or consent.revoke_date,
        ) == (consent.revoke_source, consent.revoke_description, consent.revoke_date)


@dataclass(frozen=True)
class ConsentChange:
    """What a write asks for. `None` leaves a part as it is."""

    state: str | None = None
    confirmation: ConfirmationActivity | None = None
    revoke: RevokeActivity | None = None
    extended_fields: dict[str, Any] | None = None

    def validate(self, *, state_required: bool = False) -> None:
        """Refuse values outside their enums and states without their required activity:
        PENDING and CONFIRMED need a confirmation activity, REVOKED a revoke activity."""
        if state_required and self.state is None:
            raise InvalidChange("A state is required.", field="state")
        checks = [("state", self.state, ConsentState)]
        if self.confirmation is not None:
            checks += [
                ("lastConfirmationActivity.source", self.confirmation.source, ConfirmationSource),
                (
                    "lastConfirmationActivity.optInLevel",
                    self.confirmation.opt_in_level,
                    OptInLevel,
                ),
            ]
        if self.revoke is not None:
            checks.append(("lastRevokeActivity.source", self.revoke.source, RevokeSource))
        self._validate_dates()
        if self.extended_fields is not None:
            if not isinstance(self.extended_fields, dict):
                raise InvalidChange(
                    "Extended fields must be an object.", field="extendedFields", rule="FORMAT"
                )
            fault = unstorable_json_fault(self.extended_fields)
            if fault:
                raise InvalidChange(fault, field="extendedFields", rule="FORMAT")
        for field, value, choices in checks:
            if value is not None and value not in _ENUM_VALUES[choices]:
                raise InvalidChange(
                    f"{value!r} is not one of {', '.join(choices.values)}.",
                    field=field,
                    rule="INVALID_ENUM_VALUE",
                )
        if self.state in STATES_NEEDING_CONFIRMATION and self.confirmation is None:
            raise InvalidChange(
                f"A confirmation activity is required when the state is {self.state}.",
                field="lastConfirmationActivity",
            )
        if self.state == ConsentState.REVOKED and self.revoke is None:
            raise InvalidChange(
                "A revoke activity is required when the state is REVOKED.",
                field="lastRevokeActivity",
            )

    def _validate_dates(self) -> None:
        latest_allowed = None
        for field, activity in (
            ("lastConfirmationActivity", self.confirmation),
            ("lastRevokeActivity", self.revoke),
        ):
            date = activity.updated_date if activity else None
            if date is None:
                continue
            if timezone.is_naive(date):
                raise InvalidChange(
                    "The date needs a time zone.", field=f"{field}.updatedDate", rule="FORMAT"
                )
            latest_allowed = latest_allowed or timezone.now() + MAX_CLOCK_SKEW
            if date > latest_allowed:
                raise InvalidChange(
                    "The date is in the future.",
                    field=f"{field}.updatedDate",
                    rule="INVALID_VALUE",
                )

    def activity_date(self) -> datetime | None:
        """The date of the activity that justifies this change, if the request gave one."""
        if self.state in STATES_NEEDING_CONFIRMATION:
            activities = [self.confirmation]
        elif self.state == ConsentState.REVOKED:
            activities = [self.revoke]
        else:
            activities = [self.confirmation, self.revoke]
        return max((a.updated_date for a in activities if a and a.updated_date), default=None)

    def primary_activity(self) -> ConfirmationActivity | RevokeActivity | None:
        if self.state == ConsentState.REVOKED:
            return self.revoke
        return self.confirmation or self.revoke

    def primary_activity_name(self) -> str:
        """Which activity the change's event records: "confirmation", "revoke" or ""."""
        primary = self.primary_activity()
        if primary is None:
            return ""
        return "confirmation" if primary is self.confirmation else "revoke"

    def keeps_state_of(self, consent_type: str) -> bool:
        """An existing email consent asked for UNKNOWN_STATE keeps its state (ledger rule 1)."""
        return consent_type == ConsentType.EMAIL and self.state == ConsentState.UNKNOWN_STATE

    def as_json(self) -> dict[str, Any]:
        """The change as it was sent, for the event's proof: `dataclasses.asdict` without its
        parts left out, written out because it runs once per event."""
        parts = {
            "state": self.state,
            "confirmation": dict(vars(self.confirmation)) if self.confirmation else None,
            "revoke": dict(vars(self.revoke)) if self.revoke else None,
            "extended_fields": copy.deepcopy(self.extended_fields),
        }
        return {key: value for key, value in parts.items() if value is not None}


@dataclass(frozen=True)
class LedgerResult:
    consent: MarketingConsent
    event: ConsentEvent

    @property
    def kind(self) -> str:
        return self.event.kind


class Outcome(NamedTuple):
    """What a write did to one consent, without loading it: what bulk commands report."""

    kind: str
    type: str
    address: str
    previous_state: str
    state: str

    @classmethod
    def of(cls, result: LedgerResult) -> Outcome:
        consent = result.consent
        return cls(
            result.kind, consent.type, consent.address, result.event.previous_state, consent.state
        )


# --- public write functions --------------------------------------------------------------------


def consent_upsert(
    *,
    type: str,
    address: str,
    change: ConsentChange,
    context: ChangeContext,
    expected_revision: int | None = None,
) -> LedgerResult:
    """Create the consent of an address or update it, by the ledger rules in docs/design.md."""
    change.validate(state_required=True)
    address = normalize_address(type, address)
    if expected_revision is None and connection.vendor == "postgresql":
        # The hot path: the same rules in one statement (see consents/ledger_pg.py).
        now = _now()
        done = upsert_in_one_statement(
            type=type, address=address, change=change, context=context, now=now, new_id=uuid4()
        )
        if done is not None:
            consent, kind, previous_state, event_id = done
            event = _event(consent, kind, previous_state, change, context)
            event.id, event.recorded_at = event_id, now
            event._state.adding = False
            _announce([kind])
            return LedgerResult(consent=_as_asked(consent, address), event=event)
    return _upsert_with_lock(type, address, change, context, expected_revision)


@transaction.atomic
def _upsert_with_lock(
    type: str,
    address: str,
    change: ConsentChange,
    context: ChangeContext,
    expected_revision: int | None,
) -> LedgerResult:
    consent, created = _lock_or_create(type, address, change)
    if created:
        return _result(consent, EventKind.CREATED, "", change, context)
    return _apply(consent, change, context, expected_revision=expected_revision, address=address)


def consent_create(
    *,
    type: str,
    address: str,
    confirmation: ConfirmationActivity,
    context: ChangeContext,
    extended_fields: dict[str, Any] | None = None,
) -> LedgerResult:
    """Create a CONFIRMED consent; an address that already has one is refused."""
    change = ConsentChange(
        state=ConsentState.CONFIRMED, confirmation=confirmation, extended_fields=extended_fields
    )
    return consent_add(type=type, address=address, change=change, context=context)


@transaction.atomic
def consent_add(
    *, type: str, address: str, change: ConsentChange, context: ChangeContext
) -> LedgerResult:
    """Create the consent of an address as `change` asks; an address that already has one is
    refused with `ConsentAlreadyExists` naming it: changing a consent is an update, never a
    side effect of a create."""
    change.validate(state_required=True)
    address = normalize_address(type, address)
    consent, created = _lock_or_create(type, address, change)
    if not created:
        raise ConsentAlreadyExists(
            f"A consent for this {type.lower()} already exists.", consent_id=consent.id
        )
    return _result(consent, EventKind.CREATED, "", change, context)


@transaction.atomic
def consent_update(
    *,
    consent_id: UUID | str,
    change: ConsentChange,
    context: ChangeContext,
    expected_revision: int | None = None,
) -> LedgerResult:
    """Update the parts of a consent that `change` sets, optionally only at a given revision."""
    change.validate()
    return _apply(_locked(id=consent_id), change, context, expected_revision=expected_revision)


def consent_remove(
    *, type: str, address: str, revoke: RevokeActivity, context: ChangeContext
) -> LedgerResult:
    """Revoke the consent of an address. An address we never heard of is recorded as REVOKED,
    so that an older opt-in arriving later cannot subscribe it."""
    change = ConsentChange(state=ConsentState.REVOKED, revoke=revoke)
    return consent_upsert(type=type, address=address, change=change, context=context)


@dataclass(frozen=True)
class BatchItem:
    type: str
    address: str
    change: ConsentChange


@transaction.atomic
def consent_upsert_batch(
    *, items: Sequence[BatchItem], context: ChangeContext, dry_run: bool = False
) -> list[LedgerResult | ConsentError]:
    """Upsert many consents by the rules of `consent_upsert`, in item order, with one read and
    bulk writes for the whole batch instead of a round of queries per item.

    A refused item (bad address, missing activity…) gets its error in its place and nothing of it
    is written, so one bad item never fails the others. Each result holds a copy of the consent
    as it was right after its item (an address may appear more than once).

    With `dry_run`, every item is decided exactly as it would be, and nothing is locked or
    written: the results' events are unsaved."""
    return _upsert_accepted(*_accept(items), context=context, dry_run=dry_run)


def _upsert_accepted(
    outcomes: list[Any],
    accepted: list[tuple[int, tuple[str, str], ConsentChange]],
    *,
    context: ChangeContext,
    dry_run: bool,
) -> list[LedgerResult | ConsentError]:
    keys = {key for _, key, _ in accepted}
    consents = _lock_in_order(keys, lock=not dry_run)
    revisions = {key: consent.revision for key, consent in consents.items()}
    now = _now()
    created: dict[tuple[str, str], MarketingConsent] = {}
    changed_fields: dict[tuple[str, str], set[str]] = {}
    events: dict[int, ConsentEvent] = {}
    for index, key, change in accepted:
        consent = consents.get(key)
        if consent is None:
            consent = consents[key] = created[key] = _new_consent(*key, change, now)
            kind, previous_state = EventKind.CREATED, ""
        else:
            previous_state = consent.state
            kind, changed = _decide(consent, change, now, address=key[1])
            if key not in created and changed:
                changed_fields.setdefault(key, set()).update(changed)
        events[index] = _event(consent, kind, previous_state, change, context)
        answer = _as_asked(copy.copy(consent), key[1])
        outcomes[index] = LedgerResult(consent=answer, event=events[index])
    if dry_run:
        return outcomes

    lost = _insert_new_consents(created)
    _update_changed(consents, changed_fields, revisions)
    written = ConsentEvent.objects.bulk_create(
        [events[i] for i, key, _ in accepted if key not in lost]
    )
    _announce(event.kind for event in written)
    # A concurrent writer created these addresses first: replay their items one by one as
    # updates of the winner's row, in order.
    _lock_in_order(lost)
    for index, key, change in accepted:
        if key in lost:
            outcomes[index] = consent_upsert(
                type=key[0], address=key[1], change=change, context=context
            )
    return outcomes


def _update_changed(
    consents: dict[tuple[str, str], MarketingConsent],
    changed_fields: dict[tuple[str, str], set[str]],
    revisions: dict[tuple[str, str], int],
) -> None:
    """Save the changed consents of a batch: one UPDATE per group of consents given the same
    values (a mass revocation is one group), rather than `bulk_update`'s CASE per row and field,
    which costs seconds per thousand rows on SQLite. Each consent's revision moves by as many
    changes as the batch made to it."""
    if not changed_fields:
        return
    fields = sorted(set().union(*changed_fields.values()) - {"revision"})
    groups: dict[tuple[str, int], tuple[dict[str, Any], list[UUID]]] = {}
    for key in changed_fields:
        consent = consents[key]
        values = {name: getattr(consent, name) for name in fields}
        group = (to_json(values), consent.revision - revisions[key])
        groups.setdefault(group, (values, []))[1].append(consent.pk)
    for (_, changes), (values, ids) in groups.items():
        MarketingConsent.objects.filter(pk__in=ids).update(
            **values, revision=F("revision") + changes
        )


def _lock_in_order(
    keys: set[tuple[str, str]], *, lock: bool = True
) -> dict[tuple[str, str], MarketingConsent]:
    """Lock (or, with `lock=False`, only read) the consents of these addresses, by address; an
    erased address's tombstone stands for its consent. Every batch takes its locks (and makes its
    inserts) in (type, address) order, so that concurrent batches sharing addresses cannot
    deadlock."""
    if not keys:
        return {}
    tombstones = {(type, erased_address(address)): (type, address) for type, address in keys}
    rows = MarketingConsent.objects.filter(
        address__in={address for _, address in keys | tombstones.keys()}
    )
    if lock:
        rows = rows.select_for_update()
    found: dict[tuple[str, str], MarketingConsent] = {}
    for consent in rows.order_by("type", "address"):
        stored = (consent.type, consent.address)
        if stored in keys:
            found[stored] = consent  # the address in clear wins over a tombstone
        elif stored in tombstones:
            found.setdefault(tombstones[stored], consent)
    return found


@dataclass(frozen=True)
class PreparedBatch:
    """A batch checked and normalised, ready for `consent_upsert_many`: the part of the batch path
    that needs no database, so that a command can prepare its next batch in another thread while
    the current one is written."""

    outcomes: list[Any]  # each refused item's error in its place
    accepted: list[tuple[int, tuple[str, str], ConsentChange]]
    staging_rows: list[tuple] | None  # for the set-based path; None when it will not be taken


def prepare_batch(items: Sequence[BatchItem], *, dry_run: bool = False) -> PreparedBatch:
    """Validate and normalise a batch for `consent_upsert_many`, without touching the database."""
    outcomes, accepted = _accept(items)
    in_sql = not dry_run and connection.vendor == "postgresql"
    return PreparedBatch(outcomes, accepted, _staging_rows(accepted) if in_sql else None)


def consent_upsert_many(
    *,
    items: Sequence[BatchItem] | PreparedBatch,
    context: ChangeContext,
    dry_run: bool = False,
) -> list[Outcome | ConsentError]:
    """The bulk commands' batch path: `consent_upsert_batch`, its rules and its events, with
    outcomes instead of consents, so that nothing is loaded that is not reported. `items` may
    be a batch already made ready by `prepare_batch`.

    On PostgreSQL the batch is COPY'd into a staging table and merged by set-based statements
    (consents/ledger_pg.py), tested to give the same outcomes and events as the Python path.
    An address that appears several times in the batch is merged once per appearance, in order.
    A dry run takes the Python path, which writes nothing."""
    batch = items if isinstance(items, PreparedBatch) else prepare_batch(items, dry_run=dry_run)
    outcomes, accepted = batch.outcomes, batch.accepted
    if dry_run or connection.vendor != "postgresql":
        with transaction.atomic():
            results = _upsert_accepted(outcomes, accepted, context=context, dry_run=dry_run)
        return [
            outcome if isinstance(outcome, ConsentError) else Outcome.of(outcome)
            for outcome in results
        ]
    rows = batch.staging_rows if batch.staging_rows is not None else _staging_rows(accepted)
    with transaction.atomic():
        merged = upsert_many_in_sql(rows, context=context, now=_now())
        _announce(outcome[0] for outcome in merged.values())
        for index, key, change in accepted:
            if index in merged:
                outcomes[index] = Outcome(*merged[index])
            else:
                # A concurrent writer created the address first: its items from there on are
                # applied one by one, in order, as updates of the winner's row.
                result = consent_upsert(type=key[0], address=key[1], change=change, context=context)
                outcomes[index] = Outcome.of(result)
    return outcomes


def _staging_rows(accepted: list[tuple[int, tuple[str, str], ConsentChange]]) -> list[tuple]:
    """The staging table's rows of a batch; an address's n-th item goes to merge round n."""
    appearances: dict[tuple[str, str], int] = {}
    rows = []
    for index, key, change in accepted:
        merge_round = appearances[key] = appearances.get(key, -1) + 1
        rows.append(
            staging_row(
                index,
                merge_round,
                key,
                erased_address(key[1]),
                change,
                keeps_state=change.keeps_state_of(key[0]),
                activity=change.primary_activity_name(),
                request=to_json(change.as_json()),
            )
        )
    return rows


def _accept(
    items: Sequence[BatchItem],
) -> tuple[list[Any], list[tuple[int, tuple[str, str], ConsentChange]]]:
    """Validate and normalise a batch: each refused item's error in its place, and the
    accepted ones as (index, (type, normalised address), change)."""
    outcomes: list[Any] = [None] * len(items)
    accepted: list[tuple[int, tuple[str, str], ConsentChange]] = []
    for index, item in enumerate(items):
        try:
            item.change.validate(state_required=True)
            key = (item.type, normalize_address(item.type, item.address))
        except ConsentError as exc:
            outcomes[index] = exc
            continue
        accepted.append((index, key, item.change))
    return outcomes, accepted


def _insert_new_consents(created: dict[tuple[str, str], MarketingConsent]) -> set[tuple[str, str]]:
    """Insert new consents, skipping addresses a concurrent writer created meanwhile; return
    the keys of those skipped."""
    if not created:
        return set()
    MarketingConsent.objects.bulk_create(
        [created[key] for key in sorted(created)], ignore_conflicts=True
    )
    inserted = set(
        MarketingConsent.objects.filter(
            id__in=[consent.id for consent in created.values()]
        ).values_list("id", flat=True)
    )
    return {key for key, consent in created.items() if consent.id not in inserted}


@transaction.atomic
def consent_delete(*, consent_id: UUID | str, context: ChangeContext) -> LedgerResult:
    """Remove a consent's row. Its events, and a DELETED one, stay as proof."""
    consent = _locked(id=consent_id)
    result = _result(consent, EventKind.DELETED, consent.state, ConsentChange(), context)
    consent.delete()
    return result


@contextmanager
def _append_only_trigger_lifted() -> Iterator[None]:
    """Let this transaction's next statements past the event table's trigger, by django-pgtrigger's
    own switch (the `pgtrigger.ignore` setting, local to the transaction), then close it again.
    (`pgtrigger.ignore()` sets it in front of every statement, which server-side binding
    refuses.)"""
    if connection.vendor != "postgresql":
        yield
        return
    [trigger] = ConsentEvent._meta.triggers
    with connection.cursor() as cursor:
        lifted = f"{{{trigger.get_pgid(ConsentEvent)}}}"
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [lifted])
        try:
            yield
        finally:
            cursor.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")


@transaction.atomic
def consent_renormalize(*, consent_id: UUID | str, context: ChangeContext) -> list[LedgerResult]:
    """Move a consent stored under an address not in normalised form (a row written by raw SQL
    or by older rules) to its normalised address.

    When that address has a consent already, the two become one: the consent with the newest
    activity is kept, at the normalised address, and the other is deleted (equal dates keep the
    one already there). Returns the kept consent's result (UPDATED when it moved, UNCHANGED when
    it stayed), then the deleted one's (DELETED, its note naming the consent it merged into).
    An erased address's tombstone counts as its consent: when it is kept, the deleted consent's
    events lose their personal data as the address's other events did (docs/privacy.md).
    Raises `InvalidAddress` when the stored address cannot be normalised."""
    consent = _locked(id=consent_id)
    stored_address = consent.address
    address = normalize_address(consent.type, stored_address)
    if address == stored_address:
        return [_result(consent, EventKind.UNCHANGED, consent.state, ConsentChange(), context)]
    other = _stored(consent.type, address)
    if other is None:
        return [_move(consent, address, context, f"Address normalised from {stored_address!r}.")]
    # The older consent gives way; on equal dates the one already at the address stays.
    ours, theirs = _activity_order(consent), _activity_order(other)
    keep, drop = (consent, other) if ours > theirs else (other, consent)
    why = "activity as new, at that address already" if ours == theirs else "newer activity"
    merged = f"{drop.id} ({drop.address!r}) merged into it."
    dropped = _result(
        drop,
        EventKind.DELETED,
        drop.state,
        ConsentChange(),
        _noted(context, f"Merged into {keep.id} at {address!r}, kept for its {why}."),
    )
    drop.delete()
    if keep.is_erased:
        _redact_events(
            ConsentEvent.objects.filter(consent_id=dropped.event.consent_id),
            address=keep.address,
            **_ERASED_EVENT_FIELDS,
        )
        merged = f"{dropped.event.consent_id} merged into it."
    if keep is consent:
        kept = _move(
            consent, address, context, f"Address normalised from {stored_address!r}; {merged}"
        )
    else:
        kept = _result(
            keep, EventKind.UNCHANGED, keep.state, ConsentChange(), _noted(context, merged)
        )
    return [kept, dropped]


def _move(
    consent: MarketingConsent, address: str, context: ChangeContext, note: str
) -> LedgerResult:
    consent.address = address
    consent.revision += 1
    consent.updated_date = _now()
    consent.save(update_fields=["address", "revision", "updated_date"])
    return _result(
        consent, EventKind.UPDATED, consent.state, ConsentChange(), _noted(context, note)
    )


def _activity_order(consent: MarketingConsent) -> datetime:
    """A consent's newest activity date, for "latest consent wins"; none counts as oldest."""
    return consent.newest_activity_date or datetime.min.replace(tzinfo=UTC)


def _noted(context: ChangeContext, note: str) -> ChangeContext:
    """The context with what the ledger did added to its note."""
    return dataclasses.replace(context, note=" ".join(filter(None, (context.note, note))))


def _link_description(done: str, context: ChangeContext, *, by_staff: bool) -> str:
    """What a link activity says happened. A link used in a browser signed in to the admin names
    the staff user: their click is not the recipient's, and the proof must not say it is."""
    if by_staff:
        return f"{done} by staff user {context.actor!r}, signed in to the admin: not the recipient."
    return f"{done}."


@transaction.atomic
def consent_confirm_by_link(
    *,
    consent_id: UUID | str,
    issued_at: datetime,
    context: ChangeContext,
    by_staff: bool = False,
) -> LedgerResult:
    """The person clicked Confirm behind a confirmation link: a double opt-in. With `by_staff`,
    a staff user did (`context.actor`): recorded as such, with no opt-in level claimed."""
    consent = _locked(id=consent_id)
    check_confirmation_link(consent, issued_at=issued_at)
    change = ConsentChange(
        state=ConsentState.CONFIRMED,
        confirmation=ConfirmationActivity(
            source=ConfirmationSource.LINK_CONFIRMATION,
            description=_link_description(
                "Confirmed through the confirmation link", context, by_staff=by_staff
            ),
            opt_in_level=OptInLevel.UNKNOWN_OPT_IN_LEVEL
            if by_staff
            else OptInLevel.DOUBLE_CONFIRMATION,
        ),
    )
    return _apply(consent, change, context)


@transaction.atomic
def consent_revoke_by_link(
    *, consent_id: UUID | str, context: ChangeContext, by_staff: bool = False
) -> LedgerResult:
    """The person unsubscribed through an unsubscribe link (page or RFC 8058 one-click). With
    `by_staff`, a staff user did (`context.actor`), and the activity says so."""
    change = ConsentChange(
        state=ConsentState.REVOKED,
        revoke=RevokeActivity(
            source=RevokeSource.REVOKE_LINK,
            description=_link_description(
                "Unsubscribed through the link", context, by_staff=by_staff
            ),
        ),
    )
    return _apply(_locked(id=consent_id), change, context)


def consent_revoke_many(
    *,
    consent_ids: Iterable[UUID | str],
    revoke: RevokeActivity,
    context: ChangeContext,
    batch_size: int = 1000,
) -> Counter[str]:
    """Revoke the consents with these ids, `batch_size` at a time (one transaction each), through
    the batch path of `consent_upsert_many`, so that any number of them takes bounded memory.

    A consent revoked already is left as it is (its revoke activity is the proof that matters),
    and one deleted meanwhile is skipped. Returns counts of `already_revoked`, `not_found` and
    of each event kind written (`updated`)."""
    change = ConsentChange(state=ConsentState.REVOKED, revoke=revoke)
    change.validate()
    counts: Counter[str] = Counter()
    ids = iter(consent_ids)
    while batch := list(islice(ids, batch_size)):
        with transaction.atomic():
            rows = list(
                MarketingConsent.objects.select_for_update()
                .filter(id__in=batch)
                .order_by("type", "address")
                .values_list("id", "type", "address", "state")
            )
            if missing := len(set(map(str, batch))) - len(rows):
                counts["not_found"] += missing
            items = []
            for consent_id, type, address, state in rows:
                if state == ConsentState.REVOKED:
                    counts["already_revoked"] += 1
                elif _is_normalised(type, address):
                    items.append(BatchItem(type=type, address=address, change=change))
                else:  # a legacy spelling: the batch path would key it by its normalised address
                    result = _apply(_locked(id=consent_id), change, context)
                    counts[result.kind.lower()] += 1
            for outcome in consent_upsert_many(items=items, context=context):
                if isinstance(outcome, ConsentError):
                    raise outcome
                counts[outcome.kind.lower()] += 1
    return counts


def _is_normalised(type: str, address: str) -> bool:
    try:
        return normalize_address(type, address) == address
    except InvalidAddress:
        return False


# --- privacy (docs/privacy.md) ------------------------------------------------------------------

# What an event keeps of its request once its person is erased: the facts (kind, door, actor,
# states, activity source, level and dates, revision, request id, time), none of the free text.
_ERASED_EVENT_FIELDS = {
    "activity_description": "",
    "request": {},
    "ip_address": None,
    "user_agent": "",
    "note": "",
}


@transaction.atomic
def consent_erase(*, type: str, address: str, context: ChangeContext) -> LedgerResult:
    """Forget an address but keep its opt-out: its consent becomes a tombstone, stored under the
    address's keyed hash, REVOKED as of now (the erasure request is an opt-out too), its dates
    kept and its free text and extended fields removed; its events (and the events of earlier
    consents of the address) lose their personal data; one ERASED event records the erasure,
    with `context` saying who and why. An address without a consent gets a tombstone as well,
    so that an older opt-in arriving later cannot subscribe it (rule 7). Every door then finds
    the tombstone by the address's hash and treats it as that REVOKED consent."""
    address = normalize_address(type, address)
    erased = erased_address(address)
    stored = {
        consent.address: consent
        for consent in MarketingConsent.objects.select_for_update().filter(
            type=type, address__in=[address, erased]
        )
    }
    now = _now()
    consent = stored.get(address)
    tombstone = stored.get(erased)
    if consent is not None and tombstone is not None:
        # Both spellings stored (written around the ledger): the tombstone gives way.
        tombstone.delete()
    consent = consent or tombstone
    revoke = RevokeActivity(source=RevokeSource.OTHER, updated_date=now)
    if consent is None:
        change = ConsentChange(state=ConsentState.REVOKED, revoke=revoke)
        consent = _new_consent(type, erased, change, now)
        consent.save(force_insert=True)
        previous_state = ""
    else:
        previous_state = consent.state
        consent.address = erased
        consent.state = ConsentState.REVOKED
        consent.confirmation_description = ""
        consent.revoke_source, consent.revoke_description = revoke.source, revoke.description
        consent.revoke_date = now
        consent.extended_fields = {}
        consent.revision += 1
        consent.updated_date = now
        consent.save()
    _redact_events(
        ConsentEvent.objects.filter(Q(consent_id=consent.id) | Q(type=type, address=address)),
        address=erased,
        **_ERASED_EVENT_FIELDS,
    )
    return _result(consent, EventKind.ERASED, previous_state, ConsentChange(), context)


def evidence_redact(*, recorded_before: datetime, batch_size: int, dry_run: bool = True) -> int:
    """Remove the IP address and user agent of events recorded before a date, keeping the rest,
    in batches of one transaction each. Returns how many events had (dry run: have) some."""
    with_evidence = ConsentEvent.objects.filter(recorded_at__lt=recorded_before).filter(
        Q(ip_address__isnull=False) | ~Q(user_agent="")
    )
    if dry_run:
        return with_evidence.count()
    redacted = 0
    while True:
        with transaction.atomic():
            batch = list(with_evidence.order_by("id").values_list("id", flat=True)[:batch_size])
            if not batch:
                return redacted
            redacted += _redact_events(
                ConsentEvent.objects.filter(id__in=batch), ip_address=None, user_agent=""
            )


def _redact_events(events: models.QuerySet[ConsentEvent], **blanks: Any) -> int:
    """The only code that rewrites events, and only to remove personal data from them (erasure,
    evidence retention): the deliberate exception to their append-only rule. It bypasses
    ConsentEventQuerySet's guard and, for this statement only, the database's trigger; the
    caller's transaction holds both."""
    with _append_only_trigger_lifted():
        return models.QuerySet.update(events, **blanks)


# --- reading -----------------------------------------------------------------------------------


def check_confirmation_link(consent: MarketingConsent, *, issued_at: datetime) -> None:
    """Raise `StaleLink` when a confirmation link issued at `issued_at` may no longer confirm
    this consent: it was unsubscribed since. Both dates are to the millisecond: an unsubscribe in
    the link's own millisecond counts as later, so that a confirmation never undoes it."""
    if consent.revoke_date is not None and consent.revoke_date >= to_millisecond(issued_at):
        raise StaleLink(
            "This confirmation link was sent before you unsubscribed, so it can no longer "
            "subscribe you."
        )


@dataclass(frozen=True)
class Eligibility:
    granted: bool
    reason: str


def consent_of_address(type: str, address: str) -> MarketingConsent | None:
    """The consent of a normalised address; for an erased address, its tombstone (a REVOKED
    consent whose stored address is the hash: check `is_erased` before showing it)."""
    return _lock_in_order({(type, address)}, lock=False).get((type, address))


def communication_eligibility(consent: MarketingConsent | None, *, type: str) -> Eligibility:
    """May we send marketing to this address now? (ledger rule 9 in docs/design.md)"""
    state = consent.state if consent else ConsentState.UNKNOWN_STATE
    if state == ConsentState.CONFIRMED:
        return Eligibility(True, "CONFIRMED_CONSENT")
    if state == ConsentState.REVOKED:
        return Eligibility(False, "CONSENT_REVOKED")
    if state == ConsentState.PENDING:
        return Eligibility(False, "CONFIRMATION_PENDING")
    if type == ConsentType.EMAIL:
        return Eligibility(True, "NO_CONSENT_REQUIRED")
    return Eligibility(False, "NO_CONSENT")


# --- internals ---------------------------------------------------------------------------------


def _locked(**lookup: Any) -> MarketingConsent:
    """Lock a consent found by id. A tombstone is found only through its address: by id it is
    not found, so that nothing edits, deletes or confirms it around the ledger's rules."""
    try:
        return MarketingConsent.objects.not_erased().select_for_update().get(**lookup)
    except (MarketingConsent.DoesNotExist, ValueError) as exc:
        raise ConsentNotFound("Marketing consent not found.") from exc


def _new_consent(type: str, address: str, change: ConsentChange, now: datetime) -> MarketingConsent:
    consent = MarketingConsent(
        type=type, address=address, created_date=now, updated_date=now, revision=1
    )
    _set_fields(consent, change, now, creating=True)
    return consent


def _lock_or_create(
    type: str, address: str, change: ConsentChange
) -> tuple[MarketingConsent, bool]:
    """Lock the consent of an address (or its tombstone), or create it. A concurrent creator wins
    the unique constraint; the loser then locks the winner's row and carries on as an update."""
    consent = _stored(type, address)
    if consent is not None:
        return consent, False
    consent = _new_consent(type, address, change, _now())
    try:
        with transaction.atomic():
            consent.save(force_insert=True)
    except IntegrityError:
        consent = _stored(type, address)
        if consent is None:
            raise
        return consent, False
    return consent, True


def _stored(type: str, address: str) -> MarketingConsent | None:
    """Lock the consent of a normalised address; for an erased address, its tombstone, which
    the rules then treat as the address's REVOKED consent (docs/privacy.md)."""
    return _lock_in_order({(type, address)}).get((type, address))


def _as_asked(consent: MarketingConsent, address: str) -> MarketingConsent:
    """The consent as the caller is answered: a tombstone shown under the address the caller
    sent, so that no door hands out the hash. Only the answer; the row keeps its hash."""
    consent.address = address
    return consent


def _apply(
    consent: MarketingConsent,
    change: ConsentChange,
    context: ChangeContext,
    *,
    expected_revision: int | None = None,
    address: str | None = None,
) -> LedgerResult:
    """Apply a change to a locked consent and save what it changed. `address` is the address
    the change was sent for, when the consent was found by it (it may be its tombstone)."""
    previous_state = consent.state
    kind, changed = _decide(
        consent, change, _now(), expected_revision=expected_revision, address=address
    )
    if changed:
        consent.save(update_fields=changed)
    result = _result(consent, kind, previous_state, change, context)
    if address is not None:
        _as_asked(result.consent, address)
    return result


def _decide(
    consent: MarketingConsent,
    change: ConsentChange,
    now: datetime,
    *,
    expected_revision: int | None = None,
    address: str | None = None,
) -> tuple[str, list[str]]:
    """Apply a change to a consent in memory, by the ledger rules in docs/design.md.

    A tombstone (found by `address`, the address the change was sent for) that the change takes
    out of REVOKED gets that address in clear again: only a change that wins over its opt-out
    can do that. Returns the event kind and the fields to save (none unless UPDATED)."""
    if expected_revision is not None and expected_revision != consent.revision:
        raise RevisionMismatch(
            f"The consent is at revision {consent.revision}, not {expected_revision}."
        )
    newest = consent.newest_activity_date
    sent_date = change.activity_date()
    # An erased address's opt-out also wins over an equal date: only a newer confirmation (the
    # person's own, after the erasure) may undo it.
    if (
        newest is not None
        and sent_date is not None
        and (sent_date < newest or (sent_date == newest and consent.is_erased))
    ):
        return EventKind.SUPERSEDED, []
    before = _snapshot(consent)
    _set_fields(consent, change, now, creating=False)
    if address is not None and consent.state != ConsentState.REVOKED:
        consent.address = address
    changed = [name for name, value in before.items() if getattr(consent, name) != value]
    if not changed:
        return EventKind.UNCHANGED, []
    consent.revision += 1
    consent.updated_date = now
    return EventKind.UPDATED, [*changed, "revision", "updated_date"]


_TRACKED_FIELDS = (
    "address",
    "state",
    "confirmation_source",
    "confirmation_description",
    "confirmation_date",
    "confirmation_opt_in_level",
    "revoke_source",
    "revoke_description",
    "revoke_date",
    "extended_fields",
)


def _snapshot(consent: MarketingConsent) -> dict[str, Any]:
    return {name: getattr(consent, name) for name in _TRACKED_FIELDS}


def _set_fields(
    consent: MarketingConsent, change: ConsentChange, now: datetime, *, creating: bool
) -> None:
    """Copy a change onto a consent (in memory). An activity sent again without a date keeps
    its stored date, so that replaying a request is a no-op."""
    if change.state is not None and (creating or not change.keeps_state_of(consent.type)):
        consent.state = change.state
    if change.confirmation is not None:
        activity = change.confirmation
        if not activity.same_as_stored(consent):
            consent.confirmation_source = activity.source
            consent.confirmation_description = activity.description
            consent.confirmation_opt_in_level = activity.opt_in_level
            consent.confirmation_date = activity.updated_date or now
    if change.revoke is not None:
        activity = change.revoke
        if not activity.same_as_stored(consent):
            consent.revoke_source = activity.source
            consent.revoke_description = activity.description
            consent.revoke_date = activity.updated_date or now
    if change.extended_fields is not None:
        consent.extended_fields = change.extended_fields


def _result(
    consent: MarketingConsent,
    kind: str,
    previous_state: str,
    change: ConsentChange,
    context: ChangeContext,
) -> LedgerResult:
    event = _event(consent, kind, previous_state, change, context)
    event.save()
    _announce([kind])
    return LedgerResult(consent=consent, event=event)


def _event(
    consent: MarketingConsent,
    kind: str,
    previous_state: str,
    change: ConsentChange,
    context: ChangeContext,
) -> ConsentEvent:
    """The (unsaved) proof of one ledger call on a consent, as the consent is after it."""
    activity = change.primary_activity()
    activity_fields = {}
    if activity is not None:
        confirming = isinstance(activity, ConfirmationActivity)
        stored_date = consent.confirmation_date if confirming else consent.revoke_date
        activity_fields = {
            "activity_source": activity.source,
            "activity_description": activity.description,
            "activity_opt_in_level": activity.opt_in_level if confirming else "",
            # A superseded activity was not stored: record the date it was sent with.
            "activity_date": activity.updated_date if kind == EventKind.SUPERSEDED else stored_date,
        }
    return ConsentEvent(
        consent_id=consent.id,
        type=consent.type,
        address=consent.address,
        kind=kind,
        revision=consent.revision,
        previous_state=previous_state,
        state=consent.state,
        requested_state=change.state or "",
        request=change.as_json(),
        door=context.door,
        actor=context.actor,
        request_id=context.request_id,
        ip_address=context.ip_address,
        user_agent=context.user_agent,
        note=context.note,
        **activity_fields,
    )
