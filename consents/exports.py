"""The flat CSV form of a consent, shared by the admin's export and the bulk commands.

One activity per row: the confirmation activity when the state is PENDING or CONFIRMED, the revoke
activity when it is REVOKED, none otherwise. `import_consents` reads these rows back, so an export
re-imported changes nothing.

Cells a spreadsheet would run as a formula are neutralised as OWASP recommends for CSV files:
one starting with `=`, `+`, `-`, `@`, a tab or a carriage return gets a leading apostrophe (shown
by spreadsheets as the text it is, a phone number's `+` included). So does a cell that starts with
an apostrophe, so that the import takes exactly that apostrophe off again.
"""

from collections.abc import Sequence
from datetime import datetime

from consents.dates import format_date, parse_date
from consents.exceptions import InvalidChange
from consents.ledger import BatchItem, ConfirmationActivity, ConsentChange, RevokeActivity
from consents.models import (
    ConfirmationSource,
    ConsentState,
    ConsentType,
    MarketingConsent,
    OptInLevel,
    RevokeSource,
)

CSV_HEADER = ["type", "address", "state", "source", "opt_in_level", "description", "date"]
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")
_NEUTRALISED_STARTS = (*_FORMULA_STARTS, "'")


def neutralised(cell: str) -> str:
    """A cell that no spreadsheet runs as a formula."""
    return f"'{cell}" if cell.startswith(_NEUTRALISED_STARTS) else cell


def unneutralised(cell: str) -> str:
    """The cell that `neutralised` was given."""
    neutral = cell.startswith("'") and cell[1:].startswith(_NEUTRALISED_STARTS)
    return cell[1:] if neutral else cell


def consent_csv_row(consent: MarketingConsent) -> list[str]:
    if consent.state in (ConsentState.PENDING, ConsentState.CONFIRMED):
        activity = [
            consent.confirmation_source,
            consent.confirmation_opt_in_level,
            consent.confirmation_description,
            format_date(consent.confirmation_date),
        ]
    elif consent.state == ConsentState.REVOKED:
        activity = [
            consent.revoke_source,
            "",
            consent.revoke_description,
            format_date(consent.revoke_date),
        ]
    else:
        activity = ["", "", "", ""]
    return [neutralised(cell) for cell in (consent.type, consent.address, consent.state, *activity)]


# Where a refusal of the ledger points, in the CSV's own column names.
CSV_COLUMNS_OF_FIELDS = {
    "state": "state",
    "lastConfirmationActivity": "",
    "lastConfirmationActivity.source": "source",
    "lastConfirmationActivity.optInLevel": "opt_in_level",
    "lastConfirmationActivity.updatedDate": "date",
    "lastRevokeActivity": "",
    "lastRevokeActivity.source": "source",
    "lastRevokeActivity.updatedDate": "date",
}
_TYPES = frozenset(ConsentType.values)
_STATES = frozenset(ConsentState.values)
_CONFIRMED_STATES = frozenset({ConsentState.PENDING, ConsentState.CONFIRMED})


def csv_date(text: str) -> datetime:
    """The date of a CSV row (consents/dates.py)."""
    value = parse_date(text)
    if value is None:
        raise InvalidChange(f"{text!r} is not an ISO-8601 date.", field="date", rule="FORMAT")
    return value


def csv_row_change(values: Sequence[str]) -> BatchItem:
    """Read a row of `consent_csv_row` back as the ledger change it stands for.

    Raises `InvalidChange` (its `field` a CSV column) for what the format itself forbids; the
    ledger's own rules (a state's required activity, enum values, valid addresses) are left to
    the ledger. The date of an activity is required: a missing one would count as "now" and so
    win over every newer opt-out already recorded."""
    type_, address, state, source, opt_in_level, description, date = map(unneutralised, values)
    if type_ not in _TYPES:
        raise InvalidChange(
            f"{type_!r} is not one of {', '.join(ConsentType.values)}.",
            field="type",
            rule="INVALID_ENUM_VALUE",
        )
    if state not in _STATES:
        raise InvalidChange(
            f"{state!r} is not one of {', '.join(ConsentState.values)}.",
            field="state",
            rule="INVALID_ENUM_VALUE",
        )
    if not (source or opt_in_level or description or date):
        return BatchItem(type_, address, ConsentChange(state=state))
    if state not in _CONFIRMED_STATES and state != ConsentState.REVOKED:
        raise InvalidChange(
            f"A {state} row has no activity: leave source, opt_in_level, description and date "
            "empty.",
            field="state",
        )
    if not date:
        raise InvalidChange("The activity's date is required.", field="date")
    if state == ConsentState.REVOKED:
        if opt_in_level:
            raise InvalidChange(
                "Only a confirmation activity has an opt-in level: leave it empty for REVOKED.",
                field="opt_in_level",
            )
        revoke = RevokeActivity(
            source=source or RevokeSource.UNKNOWN_SOURCE,
            description=description,
            updated_date=csv_date(date),
        )
        return BatchItem(type_, address, ConsentChange(state=state, revoke=revoke))
    confirmation = ConfirmationActivity(
        source=source or ConfirmationSource.UNKNOWN_SOURCE,
        description=description,
        updated_date=csv_date(date),
        opt_in_level=opt_in_level or OptInLevel.UNKNOWN_OPT_IN_LEVEL,
    )
    return BatchItem(type_, address, ConsentChange(state=state, confirmation=confirmation))
