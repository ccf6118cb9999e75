"""The response headers of every member-API response (docs/member-api.md), errors included."""

import uuid

from django.conf import settings
from django.http import HttpRequest, HttpResponse
from django.utils import timezone

from consents.dates import format_date
from consentsite.routing import resolver_match_of
from members.api.serializers import is_correlation_id

MEMBER_API_PREFIX = "/client/"
NO_CORRELATION_ID = "CORRELATION_ID_NOT_PROVIDED_IN_REQUEST"

SECURITY_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
}


def set_member_api_headers(request: HttpRequest, response: HttpResponse) -> None:
    response["MCK-APPID"] = settings.APP_ID
    response["MCK-MSGID"] = f"mck-{uuid.uuid4()}"
    response["MCK-MSGTIMESTAMP"] = format_date(timezone.now())
    response["MCK_CORRELATIONID"] = echoed_correlation_id(request)
    for name, value in SECURITY_HEADERS.items():
        response[name] = value


def echoed_correlation_id(request: HttpRequest) -> str:
    """The request's `MCK_CORRELATIONID` (or `MCK-CORRELATIONID`) header, else the path's
    correlation id. Only a well-formed id is echoed: a header must never carry raw input."""
    for candidate in (
        request.META.get("HTTP_MCK_CORRELATIONID", ""),
        _path_correlation_id(request),
    ):
        if candidate and is_correlation_id(candidate):
            return candidate
    return NO_CORRELATION_ID


def _path_correlation_id(request: HttpRequest) -> str:
    match = resolver_match_of(request)
    return match.kwargs.get("correlation_id", "") if match else ""
