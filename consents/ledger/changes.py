"""What a write asks for and who asks: the change, its activities and its validation, the
context recorded on its event, and what the ledger answers. No database, no HTTP: a door builds
these from its own input (and its request), and the rules read them."""

from __future__ import annotations

import copy
import re
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NamedTuple

from django.conf import settings
from django.dispatch import Signal
from django.utils import timezone

from consents.dates import to_millisecond
from consents.exceptions import InvalidChange
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

# Sent inside the transaction that recorded events which changed a consent (created, updated,
# deleted, erased): change-event delivery wakes once it commits (see consents/webhooks).
changes_recorded = Signal()
_CHANGING_KINDS = frozenset(
    {EventKind.CREATED, EventKind.UPDATED, EventKind.DELETED, EventKind.ERASED}
)


def announce(kinds: Iterable[str]) -> None:
    """Tell `changes_recorded`'s receivers when any of these event kinds changed a consent."""
    if not _CHANGING_KINDS.isdisjoint(kinds):
        changes_recorded.send(sender=ConsentEvent)


# Each enum's values, computed once: `TextChoices.values` builds a new list on every access.
_ENUM_VALUES = {
    choices: frozenset(choices.values)
    for choices in (ConsentState, ConfirmationSource, OptInLevel, RevokeSource)
}


# Activity dates later than this past the server's clock are refused: "latest consent wins", so a
# date far in the future would freeze the consent against every later opt-in or opt-out.
MAX_CLOCK_SKEW = timedelta(minutes=5)


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


def current_time() -> datetime:
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


CONFIRMATION = "confirmation"
REVOKE = "revoke"


def primary_activity_of(state: str | None, *, confirmation: bool, revoke: bool) -> str:
    """Which activity the event of a change records, given the activities the change sends: for
    REVOKED its revoke activity; otherwise its confirmation activity, else its revoke activity.
    CONFIRMATION, REVOKE or "" (none sent)."""
    if state == ConsentState.REVOKED:
        return REVOKE if revoke else ""
    return CONFIRMATION if confirmation else REVOKE if revoke else ""


def recorded_activity_name(request: dict[str, Any]) -> str:
    """`primary_activity_of` the change an event stored (`ConsentChange.as_json`)."""
    return primary_activity_of(
        request.get("state"), confirmation=CONFIRMATION in request, revoke=REVOKE in request
    )


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
        self.require_activities()

    def require_activities(self) -> None:
        """The activity each state needs: PENDING and CONFIRMED a confirmation activity, REVOKED
        a revoke activity. Raises `InvalidChange` naming the missing activity."""
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
        if self.state in STATES_NEEDING_CONFIRMATION or self.state == ConsentState.REVOKED:
            activity = self.revoke if self.state == ConsentState.REVOKED else self.confirmation
            return activity.updated_date if activity else None
        activities = (self.confirmation, self.revoke)
        return max((a.updated_date for a in activities if a and a.updated_date), default=None)

    def primary_activity(self) -> ConfirmationActivity | RevokeActivity | None:
        name = self.primary_activity_name()
        return self.confirmation if name == CONFIRMATION else self.revoke if name else None

    def primary_activity_name(self) -> str:
        """Which activity the change's event records: "confirmation", "revoke" or ""."""
        return primary_activity_of(
            self.state, confirmation=self.confirmation is not None, revoke=self.revoke is not None
        )

    def keeps_state_of(self, consent_type: str) -> bool:
        """An existing email consent asked for UNKNOWN_STATE keeps its state (ledger rule 1)."""
        return consent_type == ConsentType.EMAIL and self.state == ConsentState.UNKNOWN_STATE

    def as_json(self) -> dict[str, Any]:
        """The change as it was sent, for the event's proof: `dataclasses.asdict` without its
        parts left out, written out because it runs once per event."""
        parts = {
            "state": self.state,
            CONFIRMATION: dict(vars(self.confirmation)) if self.confirmation else None,
            REVOKE: dict(vars(self.revoke)) if self.revoke else None,
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


@dataclass(frozen=True)
class BatchItem:
    type: str
    address: str
    change: ConsentChange
