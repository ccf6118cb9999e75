"""Many consents at once, by the rules of `consent_upsert`: the Python path (one read and bulk
writes per batch; SQLite and dry runs) and, on PostgreSQL, the staged set-based merge of
`consents.ledger.postgres`."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NamedTuple
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F, Q, QuerySet

from consents.addresses import normalize_address
from consents.batches import batched
from consents.exceptions import ConsentError, InvalidAddress
from consents.ledger.changes import (
    BatchItem,
    ChangeContext,
    ConsentChange,
    LedgerResult,
    Outcome,
    RevokeActivity,
    announce,
    current_time,
)
from consents.ledger.locking import apply_locked, consent_upsert, lock_in_order, locked
from consents.ledger.postgres import (
    result_of,
    staging_copy_data,
    staging_row,
    to_json,
    upsert_many_in_sql,
)
from consents.ledger.rules import as_asked, decide, event_for, new_consent
from consents.models import ConsentEvent, ConsentState, EventKind, MarketingConsent


@transaction.atomic
def consent_upsert_batch(
    *, items: Sequence[BatchItem], context: ChangeContext, dry_run: bool = False
) -> list[LedgerResult | ConsentError]:
    """Upsert many consents by the rules of `consent_upsert`, in item order, with one read and
    bulk writes for the whole batch instead of a round of queries per item.

    A refused item (bad address, missing activity…) gets its error in its place and nothing of it
    is written, so one bad item never fails the others. Each result holds a copy of the consent
    as it was right after its item (an address may appear more than once).

    On PostgreSQL the batch takes the set-based path of `consent_upsert_many`. With `dry_run`,
    every item is decided exactly as it would be, and nothing is locked or written: the results'
    events are unsaved."""
    outcomes, accepted = _accept(items)
    if dry_run or connection.vendor != "postgresql":
        return _upsert_accepted(outcomes, accepted, context=context, dry_run=dry_run)
    return _merge_accepted(outcomes, accepted, _staging_rows(accepted), context, consents=True)


@transaction.atomic
def upsert_batch_in_python(
    *, items: Sequence[BatchItem], context: ChangeContext
) -> list[LedgerResult | ConsentError]:
    """`consent_upsert_batch` on the Python path whatever the database: what the set-based path
    is tested against."""
    return _upsert_accepted(*_accept(items), context=context, dry_run=False)


def _upsert_accepted(
    outcomes: list[Any],
    accepted: list[tuple[int, tuple[str, str], ConsentChange]],
    *,
    context: ChangeContext,
    dry_run: bool,
) -> list[LedgerResult | ConsentError]:
    keys = {key for _, key, _ in accepted}
    consents = lock_in_order(keys, lock=not dry_run)
    revisions = {key: consent.revision for key, consent in consents.items()}
    now = current_time()
    created: dict[tuple[str, str], MarketingConsent] = {}
    changed_fields: dict[tuple[str, str], set[str]] = {}
    events: dict[int, ConsentEvent] = {}
    for index, key, change in accepted:
        consent = consents.get(key)
        if consent is None:
            consent = consents[key] = created[key] = new_consent(*key, change, now)
            kind, previous_state = EventKind.CREATED, ""
        else:
            previous_state = consent.state
            kind, changed = decide(consent, change, now, address=key[1])
            if key not in created and changed:
                changed_fields.setdefault(key, set()).update(changed)
        events[index] = event_for(consent, kind, previous_state, change, context)
        answer = as_asked(copy.copy(consent), key[1])
        outcomes[index] = LedgerResult(consent=answer, event=events[index])
    if dry_run:
        return outcomes

    lost = _insert_new_consents(created)
    _update_changed(consents, changed_fields, revisions)
    written = ConsentEvent.objects.bulk_create(
        [events[i] for i, key, _ in accepted if key not in lost]
    )
    announce(event.kind for event in written)
    # A concurrent writer created these addresses first: replay their items one by one as
    # updates of the winner's row, in order.
    lock_in_order(lost)
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


@dataclass(frozen=True)
class PreparedBatch:
    """A batch checked and normalised, ready for `consent_upsert_many`: the part of the batch path
    that needs no database, so that a command can prepare its next batch in another thread while
    the current one is written."""

    outcomes: list[Any]  # each refused item's error in its place
    accepted: list[tuple[int, tuple[str, str], ConsentChange]]
    staging_rows: list[tuple] | None  # for the set-based path; None when it will not be taken
    copy_data: bytearray | None = None  # `staging_copy_data(staging_rows)`, if made beforehand


def prepare_batch(items: Sequence[BatchItem], *, dry_run: bool = False) -> PreparedBatch:
    """Validate and normalise a batch for `consent_upsert_many`, without touching the database."""
    outcomes, accepted = _accept(items)
    if dry_run or connection.vendor != "postgresql":
        return PreparedBatch(outcomes, accepted, None)
    rows = _staging_rows(accepted)
    return PreparedBatch(outcomes, accepted, rows, staging_copy_data(rows))


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
    (consents/ledger/postgres.py), tested to give the same outcomes and events as the Python path.
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
        return _merge_accepted(
            outcomes, accepted, rows, context, consents=False, copy_data=batch.copy_data
        )


def _merge_accepted(
    outcomes: list[Any],
    accepted: list[tuple[int, tuple[str, str], ConsentChange]],
    rows: list[tuple],
    context: ChangeContext,
    *,
    consents: bool,
    copy_data: bytearray | None = None,
) -> list[Any]:
    """Merge a batch in SQL; each item's outcome, or with `consents` its `LedgerResult`."""
    now = current_time()
    merged = upsert_many_in_sql(
        rows, context=context, now=now, consents=consents, copy_data=copy_data
    )
    announce(answer[0] for answer in merged.values())
    for index, key, change in accepted:
        if index not in merged:
            # A concurrent writer created the address first: its items from there on are
            # applied one by one, in order, as updates of the winner's row.
            result = consent_upsert(type=key[0], address=key[1], change=change, context=context)
            outcomes[index] = result if consents else Outcome.of(result)
        elif consents:
            outcomes[index] = result_of(merged[index], change, context, now, key[1])
        else:
            outcomes[index] = Outcome(*merged[index])
    return outcomes


def _staging_rows(accepted: list[tuple[int, tuple[str, str], ConsentChange]]) -> list[tuple]:
    """The merge's input rows of a batch; an address's n-th item goes to merge round n."""
    appearances: dict[tuple[str, str], int] = {}
    rows = []
    for index, key, change in accepted:
        merge_round = appearances[key] = appearances.get(key, -1) + 1
        rows.append(staging_row(index, merge_round, key, change))
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


# The kind of a revoke `consent_revoke_many` left alone: the consent was revoked already.
ALREADY_REVOKED = "ALREADY_REVOKED"


class Target(NamedTuple):
    """A consent a many-consent write aims at: its address, and the id and state of its stored
    row (locked), if it has one."""

    type: str
    address: str
    consent_id: UUID | None = None
    state: str = ""


def consent_revoke_many(
    *,
    revoke: RevokeActivity,
    context: ChangeContext,
    consent_ids: Iterable[UUID | str] = (),
    keep_revoked: bool = True,
    batch_size: int = 1000,
) -> Counter[str]:
    """Revoke the consents with these ids, `batch_size` at a time (one transaction each), through
    the batch path of `consent_upsert_many`, so that any number of them takes bounded memory.

    With `keep_revoked`, a consent revoked already is left as it is (its revoke activity is the
    proof that matters). One deleted meanwhile is skipped. Returns counts of `already_revoked`,
    `not_found` and of each event kind written (`updated`)."""
    counts: Counter[str] = Counter()
    for batch in batched(consent_ids, batch_size):
        with transaction.atomic():
            rows = list(
                MarketingConsent.objects.select_for_update()
                .filter(id__in=batch)
                .order_by("type", "address")
                .values_list("type", "address", "id", "state")
            )
            if missing := len(set(map(str, batch))) - len(rows):
                counts["not_found"] += missing
            targets = [Target(*row) for row in rows]
            for outcome in _revoke(targets, revoke, context, keep_revoked=keep_revoked):
                if isinstance(outcome, ConsentError):
                    raise outcome
                counts[outcome.kind.lower()] += 1
    return counts


def consent_revoke_addresses(
    *,
    type: str,
    addresses: Sequence[str],
    revoke: RevokeActivity,
    context: ChangeContext,
    keep_revoked: bool = True,
    dry_run: bool = False,
) -> list[Outcome | ConsentError]:
    """Revoke the consents of these normalised addresses in one transaction, by the rules of
    `consent_revoke_many`; an address without a consent gets one in REVOKED. Returns each
    address's outcome in order, of kind `ALREADY_REVOKED` where one was left alone. A dry run
    decides the same and writes nothing."""
    with transaction.atomic():
        stored = MarketingConsent.objects.filter(type=type, address__in=set(addresses))
        if not dry_run:
            stored = stored.select_for_update()
        found = {
            address: (consent_id, state)
            for address, consent_id, state in stored.order_by("address").values_list(
                "address", "id", "state"
            )
        }
        targets = [Target(type, address, *found.get(address, ())) for address in addresses]
        return _revoke(targets, revoke, context, keep_revoked=keep_revoked, dry_run=dry_run)


def _revoke(
    targets: Sequence[Target],
    revoke: RevokeActivity,
    context: ChangeContext,
    *,
    keep_revoked: bool,
    dry_run: bool = False,
) -> list[Outcome | ConsentError]:
    change = ConsentChange(state=ConsentState.REVOKED, revoke=revoke)
    change.validate()
    outcomes: list[Outcome | ConsentError | None] = [None] * len(targets)
    to_change = []
    for position, target in enumerate(targets):
        if keep_revoked and target.state == ConsentState.REVOKED:
            outcomes[position] = Outcome(
                ALREADY_REVOKED, target.type, target.address, target.state, target.state
            )
        else:
            to_change.append(position)
    changed = _change_targets(
        [targets[position] for position in to_change], change, context, dry_run=dry_run
    )
    for position, outcome in zip(to_change, changed, strict=True):
        outcomes[position] = outcome
    return outcomes


def stale_pending(cutoff: datetime) -> QuerySet[MarketingConsent]:
    """The PENDING consents whose newest activity is older than `cutoff`: double opt-ins whose
    confirmation never came. (PENDING always has a confirmation activity; a newer revoke
    activity also counts as newer.)"""
    return MarketingConsent.objects.filter(
        Q(revoke_date__isnull=True) | Q(revoke_date__lt=cutoff),
        state=ConsentState.PENDING,
        confirmation_date__lt=cutoff,
    )


EXPIRE = ConsentChange(state=ConsentState.NEVER_CONFIRMED)


class PendingConsent(NamedTuple):
    """A consent `consent_expire_pending` expired, as it was: what the command reports."""

    id: UUID
    type: str
    address: str
    confirmation_date: datetime


def consent_expire_pending(
    *,
    consent_ids: Sequence[UUID | str],
    cutoff: datetime,
    context: ChangeContext,
    dry_run: bool = False,
) -> list[tuple[PendingConsent, Outcome | ConsentError]]:
    """Set those of these consents that are `stale_pending` (checked again under lock, so that
    one confirmed or revoked meanwhile is left alone) to NEVER_CONFIRMED, in one transaction,
    through the batch path. Their confirmation activity stays as the proof of what was asked.
    Returns each expired consent with its outcome; a dry run decides the same and writes
    nothing."""
    with transaction.atomic():
        stale = stale_pending(cutoff).filter(id__in=consent_ids).order_by("type", "address")
        if not dry_run:
            stale = stale.select_for_update()
        found = [
            PendingConsent(*row)
            for row in stale.values_list("id", "type", "address", "confirmation_date")
        ]
        targets = [Target(row.type, row.address, row.id, ConsentState.PENDING) for row in found]
        return list(
            zip(found, _change_targets(targets, EXPIRE, context, dry_run=dry_run), strict=True)
        )


def _change_targets(
    targets: Sequence[Target], change: ConsentChange, context: ChangeContext, *, dry_run: bool
) -> list[Outcome | ConsentError]:
    """Apply one change to each target (their rows locked by the caller) through the batch path
    of `consent_upsert_many`, in order. A row stored in a legacy spelling, which that path would
    key by its normalised address, is changed in place by itself."""
    outcomes: list[Outcome | ConsentError | None] = [None] * len(targets)
    items, at = [], []
    for position, target in enumerate(targets):
        if target.consent_id is None or _is_normalised(target.type, target.address):
            items.append(BatchItem(target.type, target.address, change))
            at.append(position)
            continue
        with transaction.atomic():
            result = apply_locked(locked(id=target.consent_id), change, context)
            if dry_run:
                transaction.set_rollback(True)
        outcomes[position] = Outcome.of(result)
    for position, outcome in zip(
        at, consent_upsert_many(items=items, context=context, dry_run=dry_run), strict=True
    ):
        outcomes[position] = outcome
    return outcomes


def _is_normalised(type: str, address: str) -> bool:
    try:
        return normalize_address(type, address) == address
    except InvalidAddress:
        return False
