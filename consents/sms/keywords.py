"""What an inbound SMS asks for: its keyword, whether it came to one of our programmes, the ledger
change it makes and the reply it gets. The ledger decides what the change does."""

from enum import StrEnum

from django.conf import settings

from consents.addresses import normalize_phone
from consents.exceptions import InvalidAddress
from consents.ledger import ConfirmationActivity, ConsentChange, RevokeActivity
from consents.models import ConfirmationSource, ConsentState, OptInLevel, RevokeSource


class Action(StrEnum):
    STOP = "STOP"
    START = "START"
    HELP = "HELP"


def keyword_of(text: str) -> tuple[Action, str] | None:
    """The action a message asks for and its keyword in upper case, or None for any other text.

    Case and surrounding whitespace are ignored. A word in more than one of the settings' lists
    counts as STOP first, then START: an opt-out is never read as anything else."""
    word = text.strip().upper()
    if not word:
        return None
    for action, keywords in (
        (Action.STOP, settings.SMS_STOP_KEYWORDS),
        (Action.START, settings.SMS_START_KEYWORDS),
        (Action.HELP, settings.SMS_HELP_KEYWORDS),
    ):
        if word in {keyword.strip().upper() for keyword in keywords}:
            return action, word
    return None


def programme_number(raw: str) -> str:
    """A receiving number in one spelling: E.164 for a phone number written with its country
    code, else as written (a shortcode such as 32123)."""
    number = raw.strip()
    if number.startswith("+"):
        try:
            return normalize_phone(number)
        except InvalidAddress:
            pass
    return number


def is_programme_number(to: str) -> bool:
    """Whether a message came to one of SMS_PROGRAMME_NUMBERS."""
    return programme_number(to) in {programme_number(n) for n in settings.SMS_PROGRAMME_NUMBERS}


def ledger_change(action: Action, *, keyword: str, to: str, message_sid: str) -> ConsentChange:
    """The change a STOP or START keyword asks for, the message itself as the activity.

    The description names the keyword, the number it came to and the message, so each message is
    an activity of its own: STOP, START, STOP records the second STOP at its own time."""
    description = f'Keyword "{keyword}" texted to {programme_number(to)} (message {message_sid}).'
    if action is Action.STOP:
        return ConsentChange(
            state=ConsentState.REVOKED,
            revoke=RevokeActivity(source=RevokeSource.OTHER, description=description),
        )
    if action is Action.START:
        return ConsentChange(
            state=ConsentState.CONFIRMED,
            confirmation=ConfirmationActivity(
                source=ConfirmationSource.OTHER,
                description=description,
                opt_in_level=OptInLevel.SINGLE_CONFIRMATION,
            ),
        )
    raise ValueError(f"{action} changes no consent.")


def reply_for_state(state: str) -> str | None:
    """The reply to a STOP or START message, by the state the ledger left the consent in."""
    return {
        ConsentState.REVOKED: settings.SMS_STOP_REPLY,
        ConsentState.CONFIRMED: settings.SMS_START_REPLY,
    }.get(state)
