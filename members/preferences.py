"""A member's marketing preferences: the member API's door onto the consent ledger.

The source API knows two preferences per member: for `email` the `LOYALTY` topic, for `sms` the
default shortcode. Consent belongs to the address (docs/design.md), so each preference is the
consent of the member's email address or phone number, written and read through the ledger like
every other door's.
"""

from contextlib import nullcontext
from dataclasses import dataclass
from datetime import datetime

from django.conf import settings
from django.db import transaction

from consents.addresses import normalize_address
from consents.exceptions import InvalidAddress
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    LedgerResult,
    RevokeActivity,
    consent_upsert,
)
from consents.models import (
    ConfirmationSource,
    ConsentState,
    ConsentType,
    Door,
    OptInLevel,
    RevokeSource,
)
from consents.selectors import ConsentStatus, consent_statuses
from members.models import Member

OPT_IN = "OPT_IN"
OPT_OUT = "OPT_OUT"
EMAIL_TOPIC = "LOYALTY"

STATUS_BY_STATE = {
    ConsentState.CONFIRMED: "OPTED_IN",
    ConsentState.REVOKED: "OPTED_OUT",
    ConsentState.PENDING: "PENDING",
}
NOT_SET = "NOT_SET"

# Which side of the business made the last status update, in the source API's words. An SMS
# keyword is the person's reply to a message of our sending provider, as a link click is: ESP,
# which keeps the field within the three values the source API's clients know.
SOURCE_BY_DOOR = {
    Door.MEMBER_API: "CUX",
    Door.ADMIN: "CONSOLE",
    Door.COMMAND: "CONSOLE",
    Door.CONSENT_API: "ESP",
    Door.LINK: "ESP",
    Door.SMS: "ESP",
}


@dataclass(frozen=True)
class MemberChannel:
    """One communication channel of the member API and the consent behind it."""

    name: str  # the request's key: `email`, `sms`
    label: str  # the preferences' key and the messages' word: `EMAIL`, `SMS`
    consent_type: str
    member_field: str

    @property
    def topic(self) -> str:
        """The topic's key in the preferences: `LOYALTY`, or the default SMS shortcode."""
        if self.consent_type == ConsentType.EMAIL:
            return EMAIL_TOPIC
        return settings.SMS_DEFAULT_SHORTCODE

    @property
    def topic_description(self) -> str:
        if self.consent_type == ConsentType.EMAIL:
            return self.topic
        return f"shortcode {self.topic}"

    def address(self, member: Member) -> str:
        """The member's normalised address on this channel, "" when it has none. Raises
        `InvalidAddress` for a stored value that is no address at all."""
        raw = getattr(member, self.member_field)
        return normalize_address(self.consent_type, raw) if raw else ""

    def change(self, preference: str, *, session_channel: str) -> ConsentChange:
        """The ledger change for a preference (docs/member-api.md). The description is the same for
        every request of this topic and session channel, so a repeated request is a no-op."""
        description = (
            f"Member {self.label} preference {self.topic_description} set through the member API "
            f"(channel {session_channel})."
        )
        if preference == OPT_IN:
            return ConsentChange(
                state=ConsentState.CONFIRMED,
                confirmation=ConfirmationActivity(
                    source=ConfirmationSource.FORM,
                    description=description,
                    opt_in_level=OptInLevel.SINGLE_CONFIRMATION,
                ),
            )
        return ConsentChange(
            state=ConsentState.REVOKED,
            revoke=RevokeActivity(source=RevokeSource.FORM, description=description),
        )


EMAIL = MemberChannel("email", "EMAIL", ConsentType.EMAIL, "email")
SMS = MemberChannel("sms", "SMS", ConsentType.PHONE, "phone")
CHANNELS = (EMAIL, SMS)


def set_marketing_preferences(
    *,
    member: Member,
    preferences: dict[str, str],
    session_channel: str,
    context: ChangeContext,
) -> list[LedgerResult]:
    """Write the preferences sent (`{"email": "OPT_IN", "sms": "OPT_OUT"}`, either optional)
    to the consents of the member's addresses: all of them or, on any error, none."""
    channels = [channel for channel in CHANNELS if channel.name in preferences]
    # One ledger call is atomic by itself (on PostgreSQL one autocommitted statement): only two
    # need a transaction around them.
    with transaction.atomic() if len(channels) > 1 else nullcontext():
        return [
            consent_upsert(
                type=channel.consent_type,
                address=channel.address(member),
                change=channel.change(preferences[channel.name], session_channel=session_channel),
                context=context,
            )
            for channel in channels
        ]


@dataclass(frozen=True)
class TopicStatus:
    status: str
    last_status_update_dt: datetime | None = None
    last_status_update_source: str | None = None


def marketing_preferences(
    member: Member, channels: tuple[MemberChannel, ...] = CHANNELS
) -> dict[str, dict[str, TopicStatus]]:
    """The status of each of the member's topics on `channels`, as the ledger's consents hold
    them (`consents.selectors.consent_statuses`, one query):
    `{"EMAIL": {"LOYALTY": TopicStatus}, "SMS": {"<shortcode>": TopicStatus}}`."""
    keys = {}
    for channel in channels:
        try:
            address = channel.address(member)
        except InvalidAddress:
            continue  # no consent can be stored under a value that is no address
        if address:
            keys[channel] = (channel.consent_type, address)
    statuses = consent_statuses(keys.values())
    return {
        channel.label: {channel.topic: _topic_status(statuses.get(keys.get(channel)))}
        for channel in channels
    }


def _topic_status(consent: ConsentStatus | None) -> TopicStatus:
    """A consent's status in the member API's words."""
    status = STATUS_BY_STATE.get(consent.state, NOT_SET) if consent else NOT_SET
    if status == NOT_SET:
        return TopicStatus(NOT_SET)
    return TopicStatus(
        status=status,
        last_status_update_dt=consent.updated_at,
        last_status_update_source=SOURCE_BY_DOOR.get(consent.door),
    )
