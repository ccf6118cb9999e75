"""OpenAPI descriptions of the consent API's errors: the platform's standard shape, with an
example per status."""

from drf_spectacular.utils import OpenApiExample, OpenApiResponse
from rest_framework import serializers

from consentsite.api_errors import consent_error_body, consent_validation_body


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
