"""One exception handler for both APIs, rendering each API's own error contract.

A view says which contract it speaks with `api_error_style` (`member` or `consent`). Domain errors
(`consents.exceptions`) and DRF's exceptions are both turned into that contract; the transaction is
rolled back as DRF's own handler does.
"""

import logging
from typing import Any

from django.core.exceptions import PermissionDenied as DjangoPermissionDenied
from django.db import InterfaceError, OperationalError
from django.http import Http404
from rest_framework import exceptions, status
from rest_framework.response import Response
from rest_framework.views import set_rollback

from consents.exceptions import (
    ConsentAlreadyExists,
    ConsentError,
    ConsentNotFound,
    InvalidAddress,
    InvalidChange,
    RevisionMismatch,
)

logger = logging.getLogger(__name__)

MEMBER = "member"
CONSENT = "consent"

# Where each API lives, for errors raised before a view is reached (middleware).
API_PREFIXES = {"/client/": MEMBER, "/marketing-consent/": CONSENT}

# HTTP status → (member API errorCode, consent API applicationError code).
ERROR_CODES = {
    400: ("INVALID_REQUEST", "INVALID_ARGUMENT"),
    401: ("UNAUTHORIZED", "UNAUTHENTICATED"),
    403: ("FORBIDDEN", "PERMISSION_DENIED"),
    404: ("NOT_FOUND", "NOT_FOUND"),
    405: ("METHOD_NOT_ALLOWED", "METHOD_NOT_ALLOWED"),
    409: ("CONFLICT", "ALREADY_EXISTS"),
    411: ("LENGTH_REQUIRED", "LENGTH_REQUIRED"),
    413: ("PAYLOAD_TOO_LARGE", "PAYLOAD_TOO_LARGE"),
    415: ("UNSUPPORTED_MEDIA_TYPE", "UNSUPPORTED_MEDIA_TYPE"),
    429: ("TOO_MANY_REQUESTS", "RESOURCE_EXHAUSTED"),
    503: ("SERVICE_UNAVAILABLE", "UNAVAILABLE"),
}

# The database unreachable, restarting or too slow (connect or statement timeout): an outage,
# answered 503 with Retry-After, not a bug.
OUTAGE_ERRORS = (OperationalError, InterfaceError)
OUTAGE_MESSAGE = "The service is temporarily unavailable. Try again shortly."
OUTAGE_RETRY_AFTER_SECONDS = 5

DOMAIN_STATUS = {
    InvalidAddress: 400,
    InvalidChange: 400,
    ConsentNotFound: 404,
    ConsentAlreadyExists: 409,
    RevisionMismatch: 409,
}

VIOLATED_RULES = {
    "required": "REQUIRED_FIELD",
    "null": "REQUIRED_FIELD",
    "blank": "REQUIRED_FIELD",
    "invalid_choice": "INVALID_ENUM_VALUE",
}


class ApiError(exceptions.APIException):
    """An error with an explicit status, code and message, for cases DRF has no class for."""

    def __init__(self, status_code: int, message: str, *, code: str | None = None) -> None:
        super().__init__(detail=message, code=code)
        self.status_code = status_code
        self.error_code = code


def member_error_body(status_code: int, message: str, code: str | None = None) -> dict[str, Any]:
    return {
        "statusCode": status_code,
        "errorCode": code or ERROR_CODES.get(status_code, ("ERROR",))[0],
        "errorMessage": message,
    }


def consent_error_body(status_code: int, message: str, code: str | None = None) -> dict[str, Any]:
    default = ERROR_CODES.get(status_code, (None, "UNKNOWN"))[1]
    return {
        "message": message,
        "details": {"applicationError": {"code": code or default, "description": message}},
    }


def api_style_for_path(path: str) -> str | None:
    """The error contract of the API that serves `path`, or None outside the APIs."""
    return next((style for prefix, style in API_PREFIXES.items() if path.startswith(prefix)), None)


def error_body(style: str, status_code: int, message: str, code: str | None = None) -> dict:
    render = member_error_body if style == MEMBER else consent_error_body
    return render(status_code, message, code)


def consent_validation_body(violations: list[dict[str, str]]) -> dict[str, Any]:
    return {
        "message": "; ".join(f"{v['field']}: {v['description']}" for v in violations),
        "details": {"validationError": {"fieldViolations": violations}},
    }


def field_violations(detail: Any, path: str = "") -> list[dict[str, str]]:
    """Flatten DRF's nested error detail into the consent API's field violations."""
    if isinstance(detail, dict):
        return [
            violation
            for key, value in detail.items()
            for violation in field_violations(
                value, path if key == "non_field_errors" else f"{path}.{key}".lstrip(".")
            )
        ]
    if isinstance(detail, list):
        if all(isinstance(item, exceptions.ErrorDetail | str) for item in detail):
            return [_violation(path, item) for item in detail]
        return [
            violation
            for index, item in enumerate(detail)
            for violation in field_violations(item, f"{path}[{index}]")
        ]
    return [_violation(path, detail)]


def _violation(path: str, item: Any) -> dict[str, str]:
    code = getattr(item, "code", "invalid")
    return {
        "field": path,
        "description": str(item),
        "violatedRule": VIOLATED_RULES.get(code, code if code.isupper() else "FORMAT"),
    }


def first_message(detail: Any) -> str:
    """The first message of a DRF error detail (the member API reports one error at a time)."""
    while isinstance(detail, dict | list) and detail:
        detail = next(iter(detail.values())) if isinstance(detail, dict) else detail[0]
    return str(detail)


INTERNAL_MESSAGE = "Internal error. It has been logged."


def outage_answer(style: str) -> tuple[int, dict[str, Any], dict[str, str]]:
    """Status, body and headers of an outage in an API's shape."""
    headers = {"Retry-After": str(OUTAGE_RETRY_AFTER_SECONDS)}
    return 503, error_body(style, 503, OUTAGE_MESSAGE), headers


def exception_handler(exc: Exception, context: dict[str, Any]) -> Response | None:
    style = getattr(context.get("view"), "api_error_style", CONSENT)
    if isinstance(exc, Http404):
        exc = exceptions.NotFound()
    elif isinstance(exc, DjangoPermissionDenied):
        exc = exceptions.PermissionDenied()

    if isinstance(exc, ConsentError):
        status_code = DOMAIN_STATUS.get(type(exc), status.HTTP_400_BAD_REQUEST)
        if style == CONSENT and isinstance(exc, InvalidChange | InvalidAddress):
            field = getattr(exc, "field", "")
            rule = getattr(exc, "rule", "FORMAT")
            body = consent_validation_body(
                [{"field": field, "description": exc.message, "violatedRule": rule}]
            )
        elif style == MEMBER:
            body = member_error_body(status_code, exc.message)
        else:
            body = consent_error_body(status_code, exc.message, exc.code)
        headers = {}
    elif isinstance(exc, exceptions.APIException):
        status_code = exc.status_code
        code = getattr(exc, "error_code", None)
        if isinstance(exc, exceptions.ValidationError):
            body = (
                member_error_body(status_code, first_message(exc.detail), code)
                if style == MEMBER
                else consent_validation_body(field_violations(exc.detail))
            )
        else:
            body = error_body(style, status_code, first_message(exc.detail), code)
        headers = {}
        if getattr(exc, "auth_header", None):
            headers["WWW-Authenticate"] = exc.auth_header
        if getattr(exc, "wait", None) is not None:
            headers["Retry-After"] = str(int(exc.wait))
    elif isinstance(exc, OUTAGE_ERRORS):
        logger.warning("Database unavailable in %s: %s", style, exc)
        status_code, body, headers = outage_answer(style)
    else:
        # A bug, not a client's fault: logged with its traceback, and still answered in the
        # API's own shape rather than as an HTML page.
        logger.exception("Unhandled error in %s", style, exc_info=exc)
        status_code, headers = 500, {}
        body = error_body(style, 500, INTERNAL_MESSAGE, "INTERNAL")

    set_rollback()
    return Response(body, status=status_code, headers=headers)
