"""The member API's bodies, with its checks and their exact messages (docs/member-api.md).

The member API reports one error at a time: the first failed check, in the contract's order. The
serializers run their checks in that order; the error handler reports the first message.
"""

import re
from collections.abc import Mapping
from datetime import datetime
from typing import Any

from django.core.validators import RegexValidator
from rest_framework import serializers
from rest_framework.exceptions import NotFound
from rest_framework.fields import empty
from rest_framework.settings import api_settings

from consents.dates import format_date
from consents.exceptions import InvalidAddress
from consentsite.api_errors import ApiError
from consentsite.serializers import Serializer
from members.exceptions import AmbiguousIdentifier
from members.models import Channel, IdentifierType
from members.preferences import (
    CHANNELS,
    EMAIL,
    NOT_SET,
    OPT_IN,
    OPT_OUT,
    SMS,
    SOURCE_BY_DOOR,
    STATUS_BY_STATE,
    MemberChannel,
)
from members.selectors import member_identified_by

CONTENT_TYPE_NOT_JSON = "Content-Type must be application/json."
BODY_NOT_OBJECT = "Request body must be a JSON object."
INVALID_CHANNEL = "Invalid communication channel present in the request: {channels}."
CHANNELS_EMPTY = "channels must name EMAIL, SMS or both."
PREFERENCE_REQUIRED = "Either Email or SMS Preference is required."
PREFERENCE_NOT_SENT = "Preference for {channel} is not sent in the request."
INVALID_PREFERENCE = "Invalid preference option sent for {channel}."
NO_ADDRESS = {
    EMAIL.name: "Account does not have an email for email communication.",
    SMS.name: "Account does not have a phone number for sms communication.",
}
SUBSCRIPTION_UPDATED = "Marketing subscription status updated."

SESSION_INVALID = "Session expired or invalid correlation ID."
SESSION_CONFLICT = "The correlation ID is in use by another member."
MEMBER_NOT_FOUND = "Member not found."
MEMBER_AMBIGUOUS = (
    "More than one member has this {identifier_type}; identify the member by another "
    "identifier type."
)

# A correlation id travels in URL paths and headers: printable ASCII without spaces or "/".
CORRELATION_ID_PATTERN = re.compile(r"\A[\x21-\x2e\x30-\x7e]{1,128}\Z")
CORRELATION_ID_INVALID = (
    "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes."
)


def is_correlation_id(value: str) -> bool:
    return CORRELATION_ID_PATTERN.fullmatch(value) is not None


def _choices_message(field: str, choices: list[str]) -> str:
    return f"{field} must be one of {', '.join(choices)}."


class UtcDateTimeField(serializers.DateTimeField):
    def to_representation(self, value: datetime) -> str:
        return format_date(value)


def body_error(message: str) -> serializers.ValidationError:
    """An error about the body as a whole."""
    return serializers.ValidationError({api_settings.NON_FIELD_ERRORS_KEY: [message]})


class MemberBodySerializer(Serializer):
    """A member API request body: anything but a JSON object is refused with one message."""

    def run_validation(self, data: Any = empty) -> Any:
        if not isinstance(data, Mapping):
            raise body_error(BODY_NOT_OBJECT)
        return super().run_validation(data)


# --- sessions ----------------------------------------------------------------------------------


class SessionStartSerializer(MemberBodySerializer):
    correlationId = serializers.CharField(
        trim_whitespace=False,
        validators=[RegexValidator(CORRELATION_ID_PATTERN, CORRELATION_ID_INVALID)],
        error_messages={
            "required": "correlationId is required.",
            "null": "correlationId is required.",
            "blank": CORRELATION_ID_INVALID,
            "invalid": CORRELATION_ID_INVALID,
        },
    )
    channel = serializers.ChoiceField(
        choices=Channel.choices,
        error_messages={
            "required": "channel is required.",
            "null": "channel is required.",
            "invalid_choice": _choices_message("channel", Channel.values),
        },
    )


class MemberIdentifierSerializer(Serializer):
    """The member named by the path's identifier, read as the `X-Identifier-Type` header says."""

    identifierType = serializers.ChoiceField(
        choices=IdentifierType.choices,
        error_messages={
            "invalid_choice": _choices_message("X-Identifier-Type", IdentifierType.values)
        },
    )
    identifier = serializers.CharField(trim_whitespace=False)

    def validate(self, attrs: dict[str, str]) -> dict[str, Any]:
        identifier_type = attrs["identifierType"]
        try:
            member = member_identified_by(identifier_type, attrs["identifier"])
        except InvalidAddress as exc:
            raise serializers.ValidationError(exc.message) from exc
        except AmbiguousIdentifier as exc:
            message = MEMBER_AMBIGUOUS.format(identifier_type=identifier_type)
            raise ApiError(409, message) from exc
        if member is None:
            raise NotFound(MEMBER_NOT_FOUND)
        return {**attrs, "member": member}


class SessionSerializer(Serializer):
    correlationId = serializers.CharField(source="correlation_id")
    accountId = serializers.UUIDField(source="member.account_id")
    loyaltyId = serializers.CharField(source="member.loyalty_id", allow_null=True)
    expiresAt = UtcDateTimeField(source="expires_at")


# --- marketing subscription --------------------------------------------------------------------


class ChannelPreferenceSerializer(Serializer):
    """`{"preference": "OPT_IN" | "OPT_OUT"}` for one channel, with that channel's messages."""

    preference = serializers.ChoiceField(choices=[OPT_IN, OPT_OUT])

    def __init__(self, *args: Any, channel: MemberChannel, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        not_sent = PREFERENCE_NOT_SENT.format(channel=channel.name)
        self.error_messages.update(invalid=not_sent, null=not_sent)
        self.fields["preference"].error_messages.update(
            required=not_sent,
            null=not_sent,
            invalid_choice=INVALID_PREFERENCE.format(channel=channel.name),
        )


class MarketingSubscriptionSerializer(MemberBodySerializer):
    """The PUT body. Checks in the contract's order: unknown channels, no channel, each
    channel's preference (email, then sms), then the member's addresses (context `member`).
    Validated data: `{"email": "OPT_IN", "sms": "OPT_OUT"}`, either optional."""

    email = ChannelPreferenceSerializer(channel=EMAIL, required=False)
    sms = ChannelPreferenceSerializer(channel=SMS, required=False)

    def to_internal_value(self, data: Mapping[str, Any]) -> dict[str, Any]:
        unknown = [str(key) for key in data if key not in self.fields]
        if unknown:
            raise body_error(INVALID_CHANNEL.format(channels=", ".join(unknown)))
        if not any(name in data for name in self.fields):
            raise body_error(PREFERENCE_REQUIRED)
        # Fields are validated in declaration order (email, then sms); the first error is reported.
        return super().to_internal_value(data)

    def validate(self, attrs: dict[str, dict[str, str]]) -> dict[str, str]:
        member = self.context["member"]
        for channel in CHANNELS:
            if channel.name not in attrs:
                continue
            try:
                address = channel.address(member)
            except InvalidAddress as exc:
                raise serializers.ValidationError(exc.message) from exc
            if not address:
                raise serializers.ValidationError(NO_ADDRESS[channel.name])
        return {name: value["preference"] for name, value in attrs.items()}


class MessageSerializer(Serializer):
    message = serializers.CharField()


# --- marketing preferences ---------------------------------------------------------------------


class TopicStatusSerializer(Serializer):
    """One topic's status; the date and source are left out while it is `NOT_SET`."""

    status = serializers.ChoiceField(choices=[*STATUS_BY_STATE.values(), NOT_SET])
    lastStatusUpdateDt = UtcDateTimeField(source="last_status_update_dt", required=False)
    lastStatusUpdateSource = serializers.ChoiceField(
        source="last_status_update_source",
        choices=list(dict.fromkeys(SOURCE_BY_DOOR.values())),
        required=False,
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        data = super().to_representation(instance)
        return {key: value for key, value in data.items() if value is not None}


class PreferencesQuerySerializer(Serializer):
    """`?channels=EMAIL,SMS`: the channels to return (all when left out), comma-separated or
    repeated. Validated data: `{"channels": (MemberChannel, ...)}`."""

    def to_internal_value(self, data: Any) -> dict[str, Any]:
        if "channels" not in data:
            return {"channels": CHANNELS}
        names = [name.strip() for value in data.getlist("channels") for name in value.split(",")]
        if not any(names):
            raise body_error(CHANNELS_EMPTY)
        by_label = {channel.label: channel for channel in CHANNELS}
        unknown = [name for name in names if name.upper() not in by_label]
        if unknown:
            raise body_error(INVALID_CHANNEL.format(channels=", ".join(unknown)))
        wanted = {name.upper() for name in names}
        return {"channels": tuple(c for c in CHANNELS if c.label in wanted)}


class EmailPreferencesSerializer(Serializer):
    LOYALTY = TopicStatusSerializer()


class MarketingPreferencesSerializer(Serializer):
    """`{"EMAIL": {"LOYALTY": {...}}, "SMS": {"<default shortcode>": {...}}}`."""

    EMAIL = EmailPreferencesSerializer(required=False)
    SMS = serializers.DictField(
        child=TopicStatusSerializer(),
        required=False,
        help_text="Keyed by the default SMS shortcode.",
    )

    def to_representation(self, instance: Any) -> dict[str, Any]:
        """Only the channels read (`?channels=`)."""
        return {
            name: field.to_representation(instance[name])
            for name, field in self.fields.items()
            if name in instance
        }


# --- errors (for the schema; the exception handler renders them) -------------------------------


class MemberErrorSerializer(Serializer):
    statusCode = serializers.IntegerField()
    errorCode = serializers.CharField()
    errorMessage = serializers.CharField()
