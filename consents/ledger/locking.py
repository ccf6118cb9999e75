"""The single-consent services: each locks its consent's row, applies the rules
(`consents.ledger.rules`) and writes the consent and its one event in one transaction. On
PostgreSQL, `consent_upsert` takes the one-statement path of `consents.ledger.postgres`."""

from __future__ import annotations

from collections.abc import Collection
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, connection, transaction
from django.db.models import Q

from consents.addresses import by_address, erased_address, normalize_address, stored_spellings
from consents.exceptions import ConsentAlreadyExists, ConsentNotFound
from consents.ledger.changes import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    LedgerResult,
    RevokeActivity,
    announce,
    current_time,
)
from consents.ledger.postgres import claim_addresses, upsert_in_one_statement
from consents.ledger.redaction import ERASED_EVENT_FIELDS, redact_events
from consents.ledger.rules import (
    activity_order,
    as_asked,
    check_confirmation_link,
    decide,
    event_for,
    link_description,
    new_consent,
    noted,
)
from consents.models import (
    ConfirmationSource,
    ConsentEvent,
    ConsentState,
    EventKind,
    MarketingConsent,
    OptInLevel,
    RevokeSource,
)


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
        # The hot path: the same rules in one statement (see consents/ledger/postgres.py).
        result = upsert_in_one_statement(
            type=type, address=address, change=change, context=context, now=current_time()
        )
        if result is not None:
            announce([result.kind])
            return result
    return upsert_with_lock(type, address, change, context, expected_revision)


@transaction.atomic
def upsert_with_lock(
    type: str,
    address: str,
    change: ConsentChange,
    context: ChangeContext,
    expected_revision: int | None,
) -> LedgerResult:
    consent, created = _lock_or_create(type, address, change)
    if created:
        return record(consent, EventKind.CREATED, "", change, context)
    return apply_locked(
        consent, change, context, expected_revision=expected_revision, address=address
    )


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
    return record(consent, EventKind.CREATED, "", change, context)


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
    return apply_locked(locked(id=consent_id), change, context, expected_revision=expected_revision)


def consent_remove(
    *, type: str, address: str, revoke: RevokeActivity, context: ChangeContext
) -> LedgerResult:
    """Revoke the consent of an address. An address we never heard of is recorded as REVOKED,
    so that an older opt-in arriving later cannot subscribe it."""
    change = ConsentChange(state=ConsentState.REVOKED, revoke=revoke)
    return consent_upsert(type=type, address=address, change=change, context=context)


@transaction.atomic
def consent_delete(*, consent_id: UUID | str, context: ChangeContext) -> LedgerResult:
    """Remove a consent's row. Its events, and a DELETED one, stay as proof."""
    consent = locked(id=consent_id)
    result = record(consent, EventKind.DELETED, consent.state, ConsentChange(), context)
    consent.delete()
    return result


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
    consent = locked(id=consent_id)
    check_confirmation_link(consent, issued_at=issued_at)
    change = ConsentChange(
        state=ConsentState.CONFIRMED,
        confirmation=ConfirmationActivity(
            source=ConfirmationSource.LINK_CONFIRMATION,
            description=link_description(
                "Confirmed through the confirmation link", context, by_staff=by_staff
            ),
            opt_in_level=OptInLevel.UNKNOWN_OPT_IN_LEVEL
            if by_staff
            else OptInLevel.DOUBLE_CONFIRMATION,
        ),
    )
    return apply_locked(consent, change, context)


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
            description=link_description(
                "Unsubscribed through the link", context, by_staff=by_staff
            ),
        ),
    )
    return apply_locked(locked(id=consent_id), change, context)


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
    # Exclusive: a write of the address under way commits first, and one arriving waits for
    # this erasure to commit (docs/privacy.md, "Erasure and concurrent writes").
    claim_addresses({(type, address)}, exclusive=True)
    return erase_claimed(type, address, context)


def erase_claimed(type: str, address: str, context: ChangeContext) -> LedgerResult:
    """`consent_erase` of a normalised address, in a transaction that has claimed it
    exclusively already."""
    erased = erased_address(address)
    stored = {
        consent.address: consent
        for consent in MarketingConsent.objects.select_for_update().filter(
            type=type, address__in=[address, erased]
        )
    }
    now = current_time()
    consent = stored.get(address)
    tombstone = stored.get(erased)
    if consent is not None and tombstone is not None:
        # Both spellings stored (written around the ledger): the tombstone gives way.
        tombstone.delete()
    consent = consent or tombstone
    revoke = RevokeActivity(source=RevokeSource.OTHER, updated_date=now)
    if consent is None:
        change = ConsentChange(state=ConsentState.REVOKED, revoke=revoke)
        consent = new_consent(type, erased, change, now)
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
    redact_events(
        ConsentEvent.objects.filter(Q(consent_id=consent.id) | Q(type=type, address=address)),
        address=erased,
        **ERASED_EVENT_FIELDS,
    )
    return record(consent, EventKind.ERASED, previous_state, ConsentChange(), context)


@transaction.atomic
def consent_erase_all(
    *, addresses: Collection[tuple[str, str]], context: ChangeContext
) -> list[LedgerResult]:
    """Erase several (type, address) pairs, a person's, in one transaction: their claims are
    taken together first, in key order as a batch takes its own, so that the erasure and a
    concurrent batch holding some of them cannot wait for each other."""
    keys = [(type, normalize_address(type, address)) for type, address in addresses]
    claim_addresses(set(keys), exclusive=True)
    return [erase_claimed(type, address, context) for type, address in keys]


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
    consent = locked(id=consent_id)
    stored_address = consent.address
    address = normalize_address(consent.type, stored_address)
    if address == stored_address:
        return [record(consent, EventKind.UNCHANGED, consent.state, ConsentChange(), context)]
    other = stored_consent(consent.type, address)
    if other is None:
        return [_move(consent, address, context, f"Address normalised from {stored_address!r}.")]
    # The older consent gives way; on equal dates the one already at the address stays.
    ours, theirs = activity_order(consent), activity_order(other)
    keep, drop = (consent, other) if ours > theirs else (other, consent)
    why = "activity as new, at that address already" if ours == theirs else "newer activity"
    merged = f"{drop.id} ({drop.address!r}) merged into it."
    dropped = record(
        drop,
        EventKind.DELETED,
        drop.state,
        ConsentChange(),
        noted(context, f"Merged into {keep.id} at {address!r}, kept for its {why}."),
    )
    drop.delete()
    if keep.is_erased:
        redact_events(
            ConsentEvent.objects.filter(consent_id=dropped.event.consent_id),
            address=keep.address,
            **ERASED_EVENT_FIELDS,
        )
        merged = f"{dropped.event.consent_id} merged into it."
    if keep is consent:
        kept = _move(
            consent, address, context, f"Address normalised from {stored_address!r}; {merged}"
        )
    else:
        kept = record(
            keep, EventKind.UNCHANGED, keep.state, ConsentChange(), noted(context, merged)
        )
    return [kept, dropped]


def _move(
    consent: MarketingConsent, address: str, context: ChangeContext, note: str
) -> LedgerResult:
    consent.address = address
    consent.revision += 1
    consent.updated_date = current_time()
    consent.save(update_fields=["address", "revision", "updated_date"])
    return record(consent, EventKind.UPDATED, consent.state, ConsentChange(), noted(context, note))


def locked(**lookup: Any) -> MarketingConsent:
    """Lock a consent found by id. A tombstone is found only through its address: by id it is
    not found, so that nothing edits, deletes or confirms it around the ledger's rules."""
    try:
        return MarketingConsent.objects.not_erased().select_for_update().get(**lookup)
    except (MarketingConsent.DoesNotExist, ValueError) as exc:
        raise ConsentNotFound("Marketing consent not found.") from exc


def _lock_or_create(
    type: str, address: str, change: ConsentChange
) -> tuple[MarketingConsent, bool]:
    """Lock the consent of an address (or its tombstone), or create it. A concurrent creator wins
    the unique constraint; the loser then locks the winner's row and carries on as an update."""
    consent = stored_consent(type, address)
    if consent is not None:
        return consent, False
    consent = new_consent(type, address, change, current_time())
    try:
        with transaction.atomic():
            consent.save(force_insert=True)
    except IntegrityError:
        consent = stored_consent(type, address)
        if consent is None:
            raise
        return consent, False
    return consent, True


def stored_consent(type: str, address: str) -> MarketingConsent | None:
    """Lock the consent of a normalised address; for an erased address, its tombstone, which
    the rules then treat as the address's REVOKED consent (docs/privacy.md)."""
    return lock_in_order({(type, address)}).get((type, address))


def lock_in_order(
    keys: set[tuple[str, str]], *, lock: bool = True
) -> dict[tuple[str, str], MarketingConsent]:
    """Lock (or, with `lock=False`, only read) the consents of these addresses, by address; an
    erased address's tombstone stands for its consent. Every batch takes its locks (and makes its
    inserts) in (type, address) order, so that concurrent batches sharing addresses cannot
    deadlock."""
    if not keys:
        return {}
    spellings = stored_spellings(keys)
    rows = MarketingConsent.objects.filter(address__in={address for _, address in spellings})
    if lock:
        # Before the read: an erasure of one of these addresses then commits first or waits.
        claim_addresses(keys)
        rows = rows.select_for_update()
    return by_address(rows.order_by("type", "address"), spellings)


def apply_locked(
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
    kind, changed = decide(
        consent, change, current_time(), expected_revision=expected_revision, address=address
    )
    if changed:
        consent.save(update_fields=changed)
    result = record(consent, kind, previous_state, change, context)
    if address is not None:
        as_asked(result.consent, address)
    return result


def record(
    consent: MarketingConsent,
    kind: str,
    previous_state: str,
    change: ConsentChange,
    context: ChangeContext,
) -> LedgerResult:
    event = event_for(consent, kind, previous_state, change, context)
    event.save()
    announce([kind])
    return LedgerResult(consent=consent, event=event)
