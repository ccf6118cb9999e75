"""The flat CSV form of a consent, shared by the admin's export and the bulk commands.

One activity per row: the confirmation activity when the state is PENDING or CONFIRMED, the revoke
activity when it is REVOKED, none otherwise. `import_consents` reads these rows back, so an export
re-imported changes nothing.
"""

from datetime import UTC, datetime

from consents.models import ConsentState, MarketingConsent

CSV_HEADER = ["type", "address", "state", "source", "opt_in_level", "description", "date"]


def format_date(value: datetime | None) -> str:
    """ISO-8601 UTC with milliseconds and Z, as the consent API writes dates."""
    if value is None:
        return ""
    return value.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"


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
    return [consent.type, consent.address, consent.state, *activity]
