"""The consent ledger: the only code that changes a consent.

Every door (member API, consent API, manage-consent links, admin, commands) calls one of the
`consent_<verb>` functions with a `ChangeContext`. Each call validates the change against the rules
of DESIGN.md §4, writes the new state and exactly one `ConsentEvent` in the same transaction, and
returns a `LedgerResult`. A refused call raises a `ConsentError` and changes nothing.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.db import IntegrityError, transaction
from django.http import HttpRequest
from django.utils import timezone

from consents.addresses import normalize_address
from consents.exceptions import (
    ConsentAlreadyExists,
    ConsentNotFound,
    InvalidChange,
    RevisionMismatch,
    StaleLink,
)
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
        for field, value, choices in checks:
            if value is not None and value not in choices.values:
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

    def as_json(self) -> dict[str, Any]:
        """The change as it was sent, for the event's proof."""
        return {key: value for key, value in dataclasses.asdict(self).items() if value is not None}


@dataclass(frozen=True)
class LedgerResult:
    consent: MarketingConsent
    event: ConsentEvent

    @property
    def kind(self) -> str:
        return self.event.kind


# --- public write functions --------------------------------------------------------------------


@transaction.atomic
def consent_upsert(
    *,
    type: str,
    address: str,
    change: ConsentChange,
    context: ChangeContext,
    expected_revision: int | None = None,
) -> LedgerResult:
    """Create the consent of an address or update it, by the rules of DESIGN.md §4."""
    change.validate(state_required=True)
    address = normalize_address(type, address)
    consent, created = _lock_or_create(type, address, change)
    if created:
        return _result(consent, EventKind.CREATED, "", change, context)
    return _apply(consent, change, context, expected_revision=expected_revision)


@transaction.atomic
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
    change.validate()
    address = normalize_address(type, address)
    consent, created = _lock_or_create(type, address, change)
    if not created:
        raise ConsentAlreadyExists(f"A consent for this {type.lower()} already exists.")
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


@transaction.atomic
def consent_delete(*, consent_id: UUID | str, context: ChangeContext) -> LedgerResult:
    """Remove a consent's row. Its events, and a DELETED one, stay as proof."""
    consent = _locked(id=consent_id)
    result = _result(consent, EventKind.DELETED, consent.state, ConsentChange(), context)
    consent.delete()
    return result


@transaction.atomic
def consent_confirm_by_link(
    *, consent_id: UUID | str, issued_at: datetime, context: ChangeContext
) -> LedgerResult:
    """The person clicked Confirm behind a confirmation link: a double opt-in."""
    consent = _locked(id=consent_id)
    if consent.revoke_date is not None and consent.revoke_date > issued_at:
        raise StaleLink("This confirmation link was issued before a later unsubscribe.")
    change = ConsentChange(
        state=ConsentState.CONFIRMED,
        confirmation=ConfirmationActivity(
            source=ConfirmationSource.LINK_CONFIRMATION,
            description="Confirmed through the confirmation link.",
            opt_in_level=OptInLevel.DOUBLE_CONFIRMATION,
        ),
    )
    return _apply(consent, change, context)


@transaction.atomic
def consent_revoke_by_link(*, consent_id: UUID | str, context: ChangeContext) -> LedgerResult:
    """The person unsubscribed through an unsubscribe link (page or RFC 8058 one-click)."""
    change = ConsentChange(
        state=ConsentState.REVOKED,
        revoke=RevokeActivity(
            source=RevokeSource.REVOKE_LINK, description="Unsubscribed through the link."
        ),
    )
    return _apply(_locked(id=consent_id), change, context)


# --- reading -----------------------------------------------------------------------------------


@dataclass(frozen=True)
class Eligibility:
    granted: bool
    reason: str


def communication_eligibility(consent: MarketingConsent | None, *, type: str) -> Eligibility:
    """May we send marketing to this address now? (DESIGN.md §4.7)"""
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
    try:
        return MarketingConsent.objects.select_for_update().get(**lookup)
    except (MarketingConsent.DoesNotExist, ValueError) as exc:
        raise ConsentNotFound("Marketing consent not found.") from exc


def _lock_or_create(
    type: str, address: str, change: ConsentChange
) -> tuple[MarketingConsent, bool]:
    """Lock the consent of an address, or create it. A concurrent creator wins the unique
    constraint; the loser then locks the winner's row and carries on as an update."""
    lookup = MarketingConsent.objects.select_for_update().filter(type=type, address=address)
    consent = lookup.first()
    if consent is not None:
        return consent, False
    now = timezone.now()
    consent = MarketingConsent(
        type=type, address=address, created_date=now, updated_date=now, revision=1
    )
    _set_fields(consent, change, now)
    try:
        with transaction.atomic():
            consent.save(force_insert=True)
    except IntegrityError:
        consent = lookup.first()
        if consent is None:
            raise
        return consent, False
    return consent, True


def _apply(
    consent: MarketingConsent,
    change: ConsentChange,
    context: ChangeContext,
    *,
    expected_revision: int | None = None,
) -> LedgerResult:
    """Apply a change to a locked consent: superseded, unchanged or updated."""
    if expected_revision is not None and expected_revision != consent.revision:
        raise RevisionMismatch(
            f"The consent is at revision {consent.revision}, not {expected_revision}."
        )
    previous_state = consent.state
    newest = consent.newest_activity_date
    sent_date = change.activity_date()
    if newest is not None and sent_date is not None and sent_date < newest:
        return _result(consent, EventKind.SUPERSEDED, previous_state, change, context)

    now = timezone.now()
    before = _snapshot(consent)
    _set_fields(consent, change, now)
    changed = [name for name, value in before.items() if getattr(consent, name) != value]
    if not changed:
        return _result(consent, EventKind.UNCHANGED, previous_state, change, context)
    consent.revision += 1
    consent.updated_date = now
    consent.save(update_fields=[*changed, "revision", "updated_date"])
    return _result(consent, EventKind.UPDATED, previous_state, change, context)


_TRACKED_FIELDS = (
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


def _set_fields(consent: MarketingConsent, change: ConsentChange, now: datetime) -> None:
    """Copy a change onto a consent (in memory). An activity sent again without a date keeps
    its stored date, so that replaying a request is a no-op."""
    creating = consent._state.adding
    if change.state is not None:
        keeps_state = (
            not creating
            and consent.type == ConsentType.EMAIL
            and change.state == ConsentState.UNKNOWN_STATE
        )
        if not keeps_state:
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
    event = ConsentEvent.objects.create(
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
    return LedgerResult(consent=consent, event=event)
