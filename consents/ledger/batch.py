"""Many consents at once, by the rules of `consent_upsert`: the Python path (one read and bulk
writes per batch; SQLite and dry runs) and, on PostgreSQL, the staged set-based merge of
`consents.ledger.postgres`."""

from __future__ import annotations

import copy
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from itertools import islice
from typing import Any
from uuid import UUID

from django.db import connection, transaction
from django.db.models import F

from consents.addresses import normalize_address
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
from consents.ledger.postgres import result_of, staging_row, to_json, upsert_many_in_sql
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
        return _merge_accepted(outcomes, accepted, rows, context, consents=False)


def _merge_accepted(
    outcomes: list[Any],
    accepted: list[tuple[int, tuple[str, str], ConsentChange]],
    rows: list[tuple],
    context: ChangeContext,
    *,
    consents: bool,
) -> list[Any]:
    """Merge a batch in SQL; each item's outcome, or with `consents` its `LedgerResult`."""
    now = current_time()
    merged = upsert_many_in_sql(rows, context=context, now=now, consents=consents)
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
                    result = apply_locked(locked(id=consent_id), change, context)
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
