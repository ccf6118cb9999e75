"""The ledger's rules on one consent, in memory: decide what a change does to it (latest
activity wins, no-op writes, UNKNOWN_STATE on an email keeps the state, one revision per real
change, a tombstone's opt-out), apply it, and build the event that proves it. Nothing here reads
or writes the database; `consents/ledger/postgres.py` is the same rules as SQL."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from consents.exceptions import RevisionMismatch, StaleLink
from consents.ledger.changes import (
    CONFIRMATION,
    REVOKE,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    recorded_activity_name,
    to_millisecond,
)
from consents.models import (
    ConsentEvent,
    ConsentState,
    ConsentType,
    EventKind,
    MarketingConsent,
)

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


def new_consent(type: str, address: str, change: ConsentChange, now: datetime) -> MarketingConsent:
    consent = MarketingConsent(
        type=type, address=address, created_date=now, updated_date=now, revision=1
    )
    set_fields(consent, change, now, creating=True)
    return consent


def decide(
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
    set_fields(consent, change, now, creating=False)
    if address is not None and consent.state != ConsentState.REVOKED:
        consent.address = address
    changed = [name for name, value in before.items() if getattr(consent, name) != value]
    if not changed:
        return EventKind.UNCHANGED, []
    consent.revision += 1
    consent.updated_date = now
    return EventKind.UPDATED, [*changed, "revision", "updated_date"]


def set_fields(
    consent: MarketingConsent, change: ConsentChange, now: datetime, *, creating: bool
) -> None:
    """Copy a change onto a consent (in memory). An activity sent again without a date keeps
    its stored date when the state stays as it is, so that replaying a request is a no-op; when
    the state changes, it is a new act of the person's, dated now (else an opt-out made again
    would keep the date of the first, older than the opt-in it undoes)."""
    previous_state = consent.state
    if change.state is not None and (creating or not change.keeps_state_of(consent.type)):
        consent.state = change.state
    replay = consent.state == previous_state
    if change.confirmation is not None:
        activity = change.confirmation
        if not (replay and activity.same_as_stored(consent)):
            consent.confirmation_source = activity.source
            consent.confirmation_description = activity.description
            consent.confirmation_opt_in_level = activity.opt_in_level
            consent.confirmation_date = activity.updated_date or now
    if change.revoke is not None:
        activity = change.revoke
        if not (replay and activity.same_as_stored(consent)):
            consent.revoke_source = activity.source
            consent.revoke_description = activity.description
            consent.revoke_date = activity.updated_date or now
    if change.extended_fields is not None:
        consent.extended_fields = change.extended_fields


def event_for(
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


def recorded_activity(event: ConsentEvent) -> ConfirmationActivity | RevokeActivity | None:
    """The activity an event recorded, as `event_for` recorded it (dated as stored), or None.
    Which activity it is, is read from the change the event keeps (its `request`). An erased
    person's events keep no change (docs/privacy.md): there the opt-in level tells, which a
    confirmation's event always records (the ledger refuses a confirmation without one) and a
    revoke's never."""
    if event.activity_date is None:
        return None
    if event.request:
        name = recorded_activity_name(event.request)
    else:
        name = CONFIRMATION if event.activity_opt_in_level else REVOKE
    if name == CONFIRMATION:
        return ConfirmationActivity(
            source=event.activity_source,
            description=event.activity_description,
            updated_date=event.activity_date,
            opt_in_level=event.activity_opt_in_level,
        )
    if name == REVOKE:
        return RevokeActivity(
            source=event.activity_source,
            description=event.activity_description,
            updated_date=event.activity_date,
        )
    return None


def consent_as_recorded(event: ConsentEvent) -> MarketingConsent:
    """A consent (unsaved) as an event recorded it: its id, address, state and revision, and
    the activity the change set, applied as `set_fields` applies it; created and updated at the
    event's time. All that an event tells of a consent changed again since, or deleted."""
    activity = recorded_activity(event)
    change = ConsentChange(
        state=event.state,
        confirmation=activity if isinstance(activity, ConfirmationActivity) else None,
        revoke=activity if isinstance(activity, RevokeActivity) else None,
    )
    consent = new_consent(event.type, event.address, change, event.recorded_at)
    consent.id, consent.revision = event.consent_id, event.revision
    return consent


def as_asked(consent: MarketingConsent, address: str) -> MarketingConsent:
    """The consent as the caller is answered: a tombstone shown under the address the caller
    sent, so that no door hands out the hash. Only the answer; the row keeps its hash."""
    consent.address = address
    return consent


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


def activity_order(consent: MarketingConsent) -> datetime:
    """A consent's newest activity date, for "latest consent wins"; none counts as oldest."""
    return consent.newest_activity_date or datetime.min.replace(tzinfo=UTC)


def noted(context: ChangeContext, note: str) -> ChangeContext:
    """The context with what the ledger did added to its note."""
    return dataclasses.replace(context, note=" ".join(filter(None, (context.note, note))))


def link_description(done: str, context: ChangeContext, *, by_staff: bool) -> str:
    """What a link activity says happened. A link used in a browser signed in to the admin names
    the staff user: their click is not the recipient's, and the proof must not say it is."""
    if by_staff:
        return f"{done} by staff user {context.actor!r}, signed in to the admin: not the recipient."
    return f"{done}."
