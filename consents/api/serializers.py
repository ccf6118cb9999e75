"""The consent API's bodies (docs/consent-api.md): what clients send, validated here, and what
they get.

Input accepts camelCase and the snake_case spellings the source's own example uses
(`updated_date`); dates with or without fractional seconds. Output is camelCase, `revision` a
string, dates ISO-8601 UTC with milliseconds and `Z`.
"""

import json
import re
from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from consents.addresses import normalize_address
from consents.api import schema
from consents.dates import format_date
from consents.exceptions import InvalidAddress, InvalidChange
from consents.ledger import ConfirmationActivity, ConsentChange, RevokeActivity
from consents.links import CONFIRM, UNSUBSCRIBE
from consents.models import (
    ConfirmationSource,
    ConsentState,
    ConsentType,
    MarketingConsent,
    OptInLevel,
    RevokeSource,
)
from consentsite.serializers import Serializer

MAX_BULK_ITEMS = 500
MAX_EXTENDED_FIELDS_BYTES = 16 * 1024
UPDATABLE_PATHS = ("state", "lastConfirmationActivity", "lastRevokeActivity", "extendedFields")


SNAKE_CASE_PART = re.compile(r"_([a-z])")


def camel_case(name: str) -> str:
    if "_" not in name:  # already camelCase, as nearly every key a client sends
        return name
    return SNAKE_CASE_PART.sub(lambda match: match.group(1).upper(), name)


class ContractSerializer(Serializer):
    """A contract body: snake_case spellings of its fields are read as their camelCase names."""

    def to_internal_value(self, data: Any) -> Any:
        if isinstance(data, dict):
            fields = self.fields
            data = {field_key(key, fields): value for key, value in data.items()}
        return super().to_internal_value(data)


def field_key(key: str, fields: dict[str, Any]) -> str:
    """The field a body's key names: its camelCase spelling when that is a field, else itself."""
    camel = camel_case(key)
    return camel if camel in fields else key


class ApiDateTimeField(serializers.DateTimeField):
    """ISO-8601 in, with or without fractional seconds (a date without offset is UTC); UTC with
    milliseconds and Z out."""

    def to_representation(self, value: Any) -> str | None:
        return format_date(value)


class RevokeActivitySerializer(ContractSerializer):
    """An activity: where, why and when. The confirmation activity adds its opt-in level."""

    activity = RevokeActivity
    source = serializers.ChoiceField(
        choices=RevokeSource.choices, default=RevokeSource.UNKNOWN_SOURCE
    )
    # The platform's clients send `null` for an activity without a description.
    description = serializers.CharField(
        allow_blank=True, allow_null=True, default="", max_length=1000, trim_whitespace=False
    )
    updatedDate = ApiDateTimeField(required=False, allow_null=True, default=None)

    def to_activity(self, data: dict[str, Any]) -> RevokeActivity | ConfirmationActivity:
        extra = {"opt_in_level": data["optInLevel"]} if "optInLevel" in data else {}
        return self.activity(
            source=data["source"],
            description=data["description"] or "",
            updated_date=data["updatedDate"],
            **extra,
        )


class ConfirmationActivitySerializer(RevokeActivitySerializer):
    activity = ConfirmationActivity
    source = serializers.ChoiceField(
        choices=ConfirmationSource.choices, default=ConfirmationSource.UNKNOWN_SOURCE
    )
    optInLevel = serializers.ChoiceField(
        choices=OptInLevel.choices, default=OptInLevel.UNKNOWN_OPT_IN_LEVEL
    )


@extend_schema_field(schema.DETAILS)
class DetailsSerializer(ContractSerializer):
    """`{type, email | phone}` → the type and the normalised address."""

    type = serializers.ChoiceField(choices=ConsentType.choices)
    email = serializers.CharField(required=False, max_length=320)
    phone = serializers.CharField(required=False, max_length=64)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        field = "email" if attrs["type"] == ConsentType.EMAIL else "phone"
        if not attrs.get(field):
            raise serializers.ValidationError(
                {field: serializers.ErrorDetail("This field is required.", code="required")}
            )
        try:
            address = normalize_address(attrs["type"], attrs[field])
        except InvalidAddress as exc:
            raise serializers.ValidationError(
                {field: serializers.ErrorDetail(exc.message, code="FORMAT")}
            ) from exc
        return {"type": attrs["type"], "address": address}


def validate_extended_fields_shape(value: Any) -> None:
    """The platform's shape, `{"namespaces": {NAME: {...}}}` (or `{}`), within
    MAX_EXTENDED_FIELDS_BYTES of JSON. Raises a ValidationError at the path of the first fault.
    What can be stored (no NUL, no lone surrogate, bounded depth) is the ledger's rule."""
    if not isinstance(value, dict):
        raise serializers.ValidationError(
            'Expected an object: {"namespaces": {NAME: {...}}}.', code="FORMAT"
        )
    unknown = sorted(key for key in value if key != "namespaces")
    if unknown:
        raise serializers.ValidationError(
            {unknown[0]: [serializers.ErrorDetail("Only namespaces may be set.", "FORMAT")]}
        )
    namespaces = value.get("namespaces", {})
    if not isinstance(namespaces, dict):
        raise serializers.ValidationError(
            {"namespaces": [serializers.ErrorDetail("Expected an object.", "FORMAT")]}
        )
    for name, fields in namespaces.items():
        if not name:
            raise serializers.ValidationError(
                {"namespaces": [serializers.ErrorDetail("A namespace needs a name.", "FORMAT")]}
            )
        if not isinstance(fields, dict):
            message = "Expected an object of fields."
            raise serializers.ValidationError(
                {"namespaces": {name: [serializers.ErrorDetail(message, "FORMAT")]}}
            )
    # Depth is bounded before parsing (MAX_JSON_DEPTH), so the size is measured safely.
    size = len(json.dumps(value, separators=(",", ":")).encode())
    if size > MAX_EXTENDED_FIELDS_BYTES:
        raise serializers.ValidationError(
            f"Larger than {MAX_EXTENDED_FIELDS_BYTES} bytes of JSON.", code="INVALID_VALUE"
        )


@extend_schema_field(
    {
        "type": "object",
        "properties": {
            "namespaces": {
                "type": "object",
                # A namespace needs a name: the empty key matches nothing.
                "properties": {"": {"not": {}}},
                "additionalProperties": {"type": "object", "additionalProperties": True},
            }
        },
        "additionalProperties": False,
    }
)
class ExtendedFieldsField(serializers.Field):
    """`{"namespaces": {NAME: {...}}}`, stored as sent."""

    default_validators = [validate_extended_fields_shape]

    def to_internal_value(self, data: Any) -> Any:
        return data

    def to_representation(self, value: Any) -> Any:
        return value


class ConsentFieldsSerializer(ContractSerializer):
    """The writable parts of a consent, shared by upsert, create, update and bulk."""

    state = serializers.ChoiceField(choices=ConsentState.choices)
    lastConfirmationActivity = ConfirmationActivitySerializer(required=False, allow_null=True)
    lastRevokeActivity = RevokeActivitySerializer(required=False, allow_null=True)
    extendedFields = ExtendedFieldsField(required=False, allow_null=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The ledger's rule of the activity each state needs, reported on the missing
        activity's field."""
        try:
            self.to_change(attrs).require_activities()
        except InvalidChange as refused:
            raise serializers.ValidationError(
                {
                    refused.field: serializers.ErrorDetail(
                        f"Required when the state is {attrs['state']}.", code="required"
                    )
                }
            ) from refused
        return attrs

    def to_change(self, data: dict[str, Any]) -> ConsentChange:
        confirmation = data.get("lastConfirmationActivity")
        revoke = data.get("lastRevokeActivity")
        return ConsentChange(
            state=data.get("state"),
            confirmation=self.fields["lastConfirmationActivity"].to_activity(confirmation)
            if confirmation
            else None,
            revoke=self.fields["lastRevokeActivity"].to_activity(revoke) if revoke else None,
            extended_fields=data.get("extendedFields"),
        )


class MarketingConsentInputSerializer(ConsentFieldsSerializer):
    """A consent to create or upsert: its details and its writable parts."""

    details = DetailsSerializer()


class CreateConsentInputSerializer(MarketingConsentInputSerializer):
    """Create always makes a CONFIRMED consent, as the platform documents: a `state` sent is
    ignored."""

    state = serializers.HiddenField(default=ConsentState.CONFIRMED)


def unwrapped(data: Any) -> Any:
    """The consent of a body sent wrapped (`{"marketingConsent": {...}}`) or as it is."""
    if isinstance(data, dict) and isinstance(data.get("marketingConsent"), dict):
        return data["marketingConsent"]
    return data


class WrappedConsentSerializer(ContractSerializer):
    marketingConsent = MarketingConsentInputSerializer()


class CreateRequestSerializer(ContractSerializer):
    marketingConsent = CreateConsentInputSerializer()


class UpdateConsentSerializer(ConsentFieldsSerializer):
    """The consent of an update: its id (checked against the URL), an optional revision to
    apply at, and the parts to change (all optional)."""

    id = serializers.UUIDField(required=False)
    revision = serializers.IntegerField(required=False, min_value=1)
    state = serializers.ChoiceField(choices=ConsentState.choices, required=False)


# An updatable part, or a path inside one (lastConfirmationActivity.source), in either spelling.
MASK_PATH = (
    r"(state|lastConfirmationActivity|lastRevokeActivity|extendedFields"
    r"|last_confirmation_activity|last_revoke_activity|extended_fields)(\.[^,]*)?"
)


@extend_schema_field({"type": "string", "pattern": rf"^{MASK_PATH}$"})
class MaskPathField(serializers.CharField):
    """Documented by its pattern; a path outside it is refused by the update's own check."""


@extend_schema_field(
    {"type": "string", "pattern": rf"^(\s*{MASK_PATH}\s*)?(,(\s*{MASK_PATH}\s*)?)*$"}
)
class MaskField(serializers.CharField):
    """Comma-separated mask paths, documented by their pattern."""


class FieldMaskSerializer(ContractSerializer):
    paths = serializers.ListField(child=MaskPathField(), allow_empty=True)


class UpdateRequestSerializer(ContractSerializer):
    marketingConsent = UpdateConsentSerializer()
    fieldMask = FieldMaskSerializer(required=False)
    mask = MaskField(required=False, allow_blank=True)

    def validate(self, attrs: dict[str, Any]) -> dict[str, Any]:
        """The parts to update: the mask's paths, or every updatable part sent."""
        if "fieldMask" in attrs:
            paths = attrs["fieldMask"]["paths"]
        elif "mask" in attrs:
            paths = [path.strip() for path in attrs["mask"].split(",") if path.strip()]
        else:
            paths = [path for path in UPDATABLE_PATHS if path in attrs["marketingConsent"]]
        # A mask may name a part by a path inside it (lastConfirmationActivity.source).
        parts = {camel_case(path.split(".")[0]) for path in paths}
        unknown = sorted(parts - set(UPDATABLE_PATHS))
        if unknown:
            field = "fieldMask.paths" if "fieldMask" in attrs else "mask"
            raise serializers.ValidationError(
                {
                    field: serializers.ErrorDetail(
                        f"Not updatable: {', '.join(unknown)}. "
                        f"Updatable: {', '.join(UPDATABLE_PATHS)}.",
                        code="INVALID_ENUM_VALUE",
                    )
                }
            )
        if "state" in parts and attrs["marketingConsent"].get("state") is None:
            raise serializers.ValidationError(
                {"marketingConsent": {"state": serializers.ErrorDetail("Required.", "required")}}
            )
        attrs["paths"] = parts
        return attrs

    def to_change(self, data: dict[str, Any]) -> ConsentChange:
        consent = data["marketingConsent"]
        masked = {key: consent.get(key) for key in data["paths"]}
        return self.fields["marketingConsent"].to_change(masked)


class RemoveRequestSerializer(ContractSerializer):
    details = DetailsSerializer()
    lastRevokeActivity = RevokeActivitySerializer()


@extend_schema_field({"type": "object"})
class ObjectField(serializers.JSONField):
    """An object: its shape is checked by the caller, which reports it in its own way."""


class BulkUpsertRequestSerializer(ContractSerializer):
    info = serializers.ListField(
        child=ObjectField(),
        allow_empty=False,
        min_length=1,
        max_length=MAX_BULK_ITEMS,
        help_text="Consents as upsert takes them; each is validated on its own and a bad one "
        "is reported in its result.",
    )
    returnEntity = serializers.BooleanField(required=False, default=True)


class GetByQuerySerializer(ContractSerializer):
    """Query parameters of get-by; `details.type` spellings are accepted too."""

    type = serializers.ChoiceField(choices=ConsentType.choices)
    email = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)

    def to_internal_value(self, data: Any) -> Any:
        data = {key.removeprefix("details."): value for key, value in data.items()}
        return DetailsSerializer().run_validation(
            {key: data[key] for key in ("type", "email", "phone") if key in data}
        )


# --- output ------------------------------------------------------------------------------------


def activity_body(source: str, description: str, date: Any, **extra: str) -> dict[str, Any]:
    """An activity as the API shows it; one stored without a description has none."""
    body: dict[str, Any] = {"source": source}
    if description:
        body["description"] = description
    return {**body, "updatedDate": format_date(date), **extra}


class ActivityOutputSerializer(Serializer):
    source = serializers.CharField()
    description = serializers.CharField(required=False)
    updatedDate = serializers.CharField()
    optInLevel = serializers.CharField(required=False)


class DetailsOutputSerializer(Serializer):
    type = serializers.ChoiceField(choices=ConsentType.choices)
    email = serializers.CharField(required=False)
    phone = serializers.CharField(required=False)


class MarketingConsentSerializer(Serializer):
    """A consent as the API shows it."""

    id = serializers.UUIDField()
    revision = serializers.CharField()
    details = DetailsOutputSerializer()
    state = serializers.ChoiceField(choices=ConsentState.choices)
    lastConfirmationActivity = ActivityOutputSerializer(required=False)
    lastRevokeActivity = ActivityOutputSerializer(required=False)
    extendedFields = ExtendedFieldsField()
    createdDate = serializers.CharField()
    updatedDate = serializers.CharField()

    def to_representation(self, consent: MarketingConsent) -> dict[str, Any]:
        # Written out by hand: it is on every response, and DRF's field walk costs more.
        body: dict[str, Any] = {
            "id": str(consent.id),
            "revision": str(consent.revision),
            "details": {
                "type": consent.type,
                "email" if consent.type == ConsentType.EMAIL else "phone": consent.address,
            },
            "state": consent.state,
        }
        if consent.confirmation_date is not None:
            body["lastConfirmationActivity"] = activity_body(
                consent.confirmation_source,
                consent.confirmation_description,
                consent.confirmation_date,
                optInLevel=consent.confirmation_opt_in_level,
            )
        if consent.revoke_date is not None:
            body["lastRevokeActivity"] = activity_body(
                consent.revoke_source, consent.revoke_description, consent.revoke_date
            )
        body["extendedFields"] = consent.extended_fields
        body["createdDate"] = format_date(consent.created_date)
        body["updatedDate"] = format_date(consent.updated_date)
        return body


class LinkSerializer(Serializer):
    type = serializers.ChoiceField(choices=[CONFIRM, UNSUBSCRIBE])
    url = serializers.URLField()


class ConsentWithLinkSerializer(Serializer):
    marketingConsent = MarketingConsentSerializer()
    link = LinkSerializer(required=False)


class ConsentResponseSerializer(Serializer):
    marketingConsent = MarketingConsentSerializer()


class EligibilitySerializer(Serializer):
    granted = serializers.BooleanField()
    reason = serializers.CharField()
    revokeConfirmationLink = serializers.URLField(
        required=False, help_text="The unsubscribe URL of a CONFIRMED consent."
    )


class GetByResponseSerializer(Serializer):
    marketingConsent = MarketingConsentSerializer(required=False)
    communicationEligibility = EligibilitySerializer()


class CursorPagingSerializer(Serializer):
    limit = serializers.IntegerField(min_value=1, max_value=100, required=False)
    cursor = serializers.CharField(required=False, allow_null=True)


class SortingSerializer(Serializer):
    fieldName = serializers.ChoiceField(choices=["createdDate", "updatedDate"])
    order = serializers.ChoiceField(choices=["ASC", "DESC"], required=False)


@extend_schema_field(schema.FILTER)
class FilterField(serializers.DictField):
    """A filter document (consents/api/query.py reads it)."""


class QuerySerializer(Serializer):
    filter = FilterField(required=False, allow_null=True)
    sort = SortingSerializer(
        many=True,
        required=False,
        allow_null=True,
        max_length=2,
        help_text="Up to both sortable fields, in order, each with its own order; ties by id.",
    )
    cursorPaging = CursorPagingSerializer(required=False, allow_null=True)


class QueryRequestSerializer(Serializer):
    """Documents the query body; consents/api/query.py reads it."""

    query = QuerySerializer(required=False)


class CursorsSerializer(Serializer):
    next = serializers.CharField(allow_null=True)
    prev = serializers.CharField(allow_null=True)


class PagingMetadataSerializer(Serializer):
    count = serializers.IntegerField()
    cursors = CursorsSerializer()
    hasNext = serializers.BooleanField()


class QueryResponseSerializer(Serializer):
    marketingConsent = MarketingConsentSerializer(many=True)
    pagingMetadata = PagingMetadataSerializer()


class BulkItemResultSerializer(Serializer):
    originalIndex = serializers.IntegerField()
    marketingConsent = MarketingConsentSerializer(required=False)
    link = LinkSerializer(required=False)
    error = serializers.CharField(
        required=False, help_text="Why the item failed: each bad field's path and message."
    )


class BulkMetadataSerializer(Serializer):
    totalSuccess = serializers.IntegerField()
    totalFailure = serializers.IntegerField()


class BulkUpsertResponseSerializer(Serializer):
    results = BulkItemResultSerializer(many=True)
    metadata = BulkMetadataSerializer()


class EmptySerializer(Serializer):
    """`{}`"""
