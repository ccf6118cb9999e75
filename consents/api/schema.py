"""OpenAPI descriptions of the consent API's errors: the platform's standard shape, with an
example per status."""

from typing import Any

from drf_spectacular.extensions import OpenApiSerializerExtension
from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from consents.models import ConsentState
from consentsite.api_errors import consent_error_body, consent_validation_body

# Shapes of input that drf-spectacular cannot derive from the fields (docs/consent-api.md, "What
# the schema declares"). A phone number's validity (libphonenumber) cannot be expressed: the
# pattern is E.164's shape, and the server may still refuse a number of that shape.
EMAIL = {"type": "string", "format": "email", "minLength": 3, "maxLength": 254}
PHONE = {"type": "string", "pattern": r"^\+[1-9][0-9]{6,14}$"}
CONSENT_TYPES = ("EMAIL", "PHONE")


def _text(max_length: int) -> dict[str, Any]:
    """A text the server reads but does not use here: not blank, within its length."""
    return {"type": "string", "pattern": r"\S", "maxLength": max_length}


# `{type, email}` or `{type, phone}`: the address the type names is required (the other is read
# as text and ignored).
DETAILS = {
    "anyOf": [
        {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["EMAIL"]},
                "email": EMAIL,
                "phone": _text(64),
            },
            "required": ["type", "email"],
        },
        {
            "type": "object",
            "properties": {
                "type": {"type": "string", "enum": ["PHONE"]},
                "phone": PHONE,
                "email": _text(320),
            },
            "required": ["type", "phone"],
        },
    ]
}
DATE_TIME = {"type": "string", "format": "date-time"}
UUID = {"type": "string", "format": "uuid"}
STATES = tuple(ConsentState.values)


def _condition(value: dict, operators: tuple[str, ...]) -> dict:
    """A field's condition: a bare value (`$eq`) or an object of its operators."""
    by_operator = {
        "$in": {"type": "array", "items": value},
        "$exists": {"type": "boolean"},
        "$startsWith": {"type": "string", "minLength": 1, "maxLength": 254},
    }
    return {
        "anyOf": [
            value,
            {
                "type": "object",
                "properties": {op: by_operator.get(op, value) for op in operators},
                "minProperties": 1,
                "additionalProperties": False,
            },
        ]
    }


EQUALITY = ("$eq", "$ne", "$in", "$exists")
COMPARISON = ("$eq", "$ne", "$gt", "$lt", "$gte", "$lte")
# The filterable fields and their operators (consents/api/query.py). `$and`, `$or` and `$not`
# combine filters of this shape; the schema shows one level of them.
FIELD_CONDITIONS = {
    "id": _condition(UUID, EQUALITY),
    "createdDate": _condition(DATE_TIME, COMPARISON),
    "updatedDate": _condition(DATE_TIME, COMPARISON),
    "details.email": _condition(EMAIL, (*EQUALITY, "$startsWith")),
    "details.phone": _condition(PHONE, (*EQUALITY, "$startsWith")),
    "state": _condition({"type": "string", "enum": list(STATES)}, ("$eq", "$ne", "$in")),
}
FIELD_FILTER = {"type": "object", "properties": FIELD_CONDITIONS, "additionalProperties": False}
FILTER = {
    "type": "object",
    "properties": {
        **FIELD_CONDITIONS,
        "$and": {"type": "array", "items": FIELD_FILTER, "minItems": 1},
        "$or": {"type": "array", "items": FIELD_FILTER, "minItems": 1},
        "$not": FIELD_FILTER,
    },
    "additionalProperties": False,
}


def _one_of(states: list[str]) -> dict[str, str]:
    """States as a pattern, not an enum: drf-spectacular would name each enum a component."""
    return {"pattern": f"^({'|'.join(states)})$"}


def _state_needs(states: list[str], activity: str) -> dict[str, Any]:
    return {
        "properties": {"state": _one_of(states), activity: {"type": "object"}},
        "required": ["state", activity],
    }


NEEDS_CONFIRMATION = [ConsentState.PENDING, ConsentState.CONFIRMED]
NEEDS_REVOKE = [ConsentState.REVOKED]
# PENDING and CONFIRMED need a confirmation activity, REVOKED a revoke activity.
STATE_NEEDS_ACTIVITY = [
    {
        "properties": {
            "state": _one_of([s for s in STATES if s not in NEEDS_CONFIRMATION + NEEDS_REVOKE])
        }
    },
    _state_needs(NEEDS_CONFIRMATION, "lastConfirmationActivity"),
    _state_needs(NEEDS_REVOKE, "lastRevokeActivity"),
]


class ConsentFieldsScheme(OpenApiSerializerExtension):
    """The writable parts of a consent, with the activity each state needs (a create, whose
    state is CONFIRMED, always needs its confirmation activity)."""

    target_class = "consents.api.serializers.ConsentFieldsSerializer"
    match_subclasses = True

    def map_serializer(self, auto_schema: Any, direction: Any) -> dict[str, Any]:
        schema = auto_schema._map_basic_serializer(self.target, direction)
        if "state" not in schema["properties"]:
            confirmation = {"type": "object"}
            return {
                **schema,
                "allOf": [
                    {
                        "properties": {"lastConfirmationActivity": confirmation},
                        "required": ["lastConfirmationActivity"],
                    }
                ],
            }
        return {**schema, "anyOf": STATE_NEEDS_ACTIVITY}


class FieldViolationSerializer(serializers.Serializer):
    field = serializers.CharField()
    description = serializers.CharField()
    violatedRule = serializers.CharField()


class ValidationErrorSerializer(serializers.Serializer):
    fieldViolations = FieldViolationSerializer(many=True)


class ApplicationErrorSerializer(serializers.Serializer):
    code = serializers.CharField()
    description = serializers.CharField()


class ErrorDetailsSerializer(serializers.Serializer):
    applicationError = ApplicationErrorSerializer(required=False)
    validationError = ValidationErrorSerializer(required=False)


class ConsentErrorSerializer(serializers.Serializer):
    message = serializers.CharField()
    details = ErrorDetailsSerializer()


EXAMPLES = {
    400: consent_validation_body(
        [
            {
                "field": "marketingConsent.details.email",
                "description": "'not-an-email' is not a valid email address.",
                "violatedRule": "FORMAT",
            }
        ]
    ),
    401: consent_error_body(401, "Authentication credentials were not provided."),
    403: consent_error_body(403, "This API key may only read."),
    404: consent_error_body(404, "Marketing consent not found."),
    405: consent_error_body(405, 'Method "PUT" not allowed.'),
    409: consent_error_body(409, "The consent is at revision 3, not 2.", "REVISION_MISMATCH"),
    413: consent_error_body(413, "The request body is larger than 1048576 bytes."),
    415: consent_error_body(415, 'Unsupported media type "text/plain" in request.'),
    429: consent_error_body(429, "Request was throttled. Expected available in 60 seconds."),
}
EVERY_CALL = (400, 401, 403, 405, 413, 415, 429)


def errors(*statuses: int) -> dict[int, OpenApiResponse]:
    """The documented errors of an operation: those every call can meet, and `statuses`."""
    return {
        status: OpenApiResponse(
            ConsentErrorSerializer,
            examples=[OpenApiExample(f"{status}", value=EXAMPLES[status], status_codes=[status])],
        )
        for status in sorted({*EVERY_CALL, *statuses})
    }
