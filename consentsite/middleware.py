"""Request id, the one-line-per-request log, and the guards in front of both APIs."""

import hashlib
import json
import logging
import math
import re
import time
import uuid
from collections.abc import Callable
from datetime import timedelta

from django.conf import settings
from django.contrib.auth.middleware import AuthenticationMiddleware
from django.contrib.messages.middleware import MessageMiddleware
from django.contrib.sessions.middleware import SessionMiddleware
from django.core.exceptions import RequestDataTooBig
from django.db import DatabaseError, IntegrityError, transaction
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.utils import timezone
from whitenoise.middleware import WhiteNoiseMiddleware

from consents.models import IdempotencyRecord
from consentsite.api_errors import CONSENT, MEMBER, api_style_for_path, error_body
from consentsite.auth import authenticated_api_key, looked_up_api_key
from consentsite.routing import resolver_match_of
from members.api.headers import MEMBER_API_PREFIX, set_member_api_headers

logger = logging.getLogger("consentsite.request")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")

# The 409 for a key whose first request is still running: its own code in each API, so that a
# client can tell "wait and retry" from "this key was used for another request".
IN_PROGRESS_CODES = {MEMBER: "REQUEST_IN_PROGRESS", CONSENT: "ABORTED"}


class RequestLogMiddleware:
    """Give every request an id (the caller's `X-Request-ID` if it is sane), return it in the
    response, and log one JSON line per request. The line names the route pattern, not the path,
    so that no address (a path or query parameter) is written to the log in clear."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        started = time.perf_counter()
        incoming = request.headers.get("X-Request-ID", "")
        request.request_id = incoming if REQUEST_ID_PATTERN.match(incoming) else uuid.uuid4().hex
        response = self.get_response(request)
        response["X-Request-ID"] = request.request_id
        if not logger.isEnabledFor(logging.INFO):
            return response
        api_key = looked_up_api_key(request)
        logger.info(
            json.dumps(
                {
                    "method": request.method,
                    "route": match.route if (match := resolver_match_of(request)) else None,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request.request_id,
                    "key": api_key.name if api_key else None,
                }
            )
        )
        return response


class MemberApiHeadersMiddleware:
    """The member API's headers on every response under its prefix, including those made before
    any view (size limit, idempotency)."""

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        response = self.get_response(request)
        if request.path.startswith(MEMBER_API_PREFIX):
            set_member_api_headers(request, response)
        return response


class ApiRequestGuardMiddleware:
    """Guards in front of both APIs, before any view parses the body.

    - A body over MAX_BODY_BYTES → 413 in the API's error shape. A body sent without a length
      (`Transfer-Encoding: chunked`) → 411: Django would read it as empty, a request other than
      the one sent.
    - Writes sent with an `Idempotency-Key`: the first response for (API key, idempotency key) is
      kept for IDEMPOTENCY_TTL and replayed to retries with the same request (header
      `Idempotent-Replayed: true`) without running the view again; the same key with another
      request → 409. Concurrent requests with one key race on a unique row, so only one of them
      ever runs; the others get 409 "still being processed" with `Retry-After`.
    - A running request holds its key for IDEMPOTENCY_LEASE seconds only. A worker that dies (or
      loses the database) before it answers leaves its record behind; once the lease is over, a
      retry takes the key over and runs again. That is safe because the ledger is idempotent
      itself: the same change again is UNCHANGED, and the answer tells the current state.
    """

    WRITE_METHODS = frozenset({"POST", "PUT", "PATCH", "DELETE"})
    # Request headers that change what a request means (which record it selects, how its body
    # reads): part of the fingerprint, with the method, the path and the body.
    FINGERPRINT_HEADERS = ("Content-Type", "Content-Encoding", "X-Identifier-Type")
    # Per-response headers that a replay must not repeat.
    UNSTORED_HEADERS = frozenset({"x-request-id", "set-cookie"})

    def __init__(self, get_response: Callable[[HttpRequest], HttpResponse]) -> None:
        self.get_response = get_response

    def __call__(self, request: HttpRequest) -> HttpResponse:
        style = api_style_for_path(request.path)
        if style is None:
            return self.get_response(request)
        if "HTTP_TRANSFER_ENCODING" in request.META:
            message = "Send the request body with a Content-Length header, not chunked."
            return JsonResponse(error_body(style, 411, message), status=411)
        try:
            too_large = int(request.META.get("CONTENT_LENGTH") or 0) > settings.MAX_BODY_BYTES
            body = b"" if too_large else request.body
        except (ValueError, RequestDataTooBig):
            too_large = True
        if too_large:
            message = f"The request body is larger than {settings.MAX_BODY_BYTES} bytes."
            return JsonResponse(error_body(style, 413, message), status=413)

        idempotency_key = request.headers.get("Idempotency-Key")
        if request.method not in self.WRITE_METHODS or idempotency_key is None:
            return self.get_response(request)
        if not 1 <= len(idempotency_key) <= 255:
            message = "The Idempotency-Key header must be 1 to 255 characters."
            return JsonResponse(error_body(style, 400, message), status=400)
        api_key = authenticated_api_key(request)
        if api_key is None:
            return self.get_response(request)  # the view answers 401

        fingerprint = self._fingerprint(request, body)
        record, claimed = self._claim(api_key.pk, idempotency_key, fingerprint)
        if not claimed:
            return self._answer_retry(style, record, fingerprint)
        try:
            response = self.get_response(request)
        except BaseException:
            self._release(record)
            raise
        self._keep(record, response)
        return response

    def _fingerprint(self, request: HttpRequest, body: bytes) -> str:
        parts = [request.method, request.get_full_path()]
        parts += [f"{name}: {request.headers.get(name, '')}" for name in self.FINGERPRINT_HEADERS]
        return hashlib.sha256("\n".join(parts).encode() + b"\n" + body).hexdigest()

    def _claim(
        self, api_key_id: str, key: str, fingerprint: str
    ) -> tuple[IdempotencyRecord | None, bool]:
        """Claim the key for IDEMPOTENCY_LEASE seconds. A kept response past its TTL, or a
        running request past its lease, is deleted first: its key is free again."""
        now = timezone.now()
        lookup = IdempotencyRecord.objects.filter(api_key_id=api_key_id, key=key)
        lookup.filter(expires_at__lte=now).delete()
        try:
            with transaction.atomic():
                record = IdempotencyRecord.objects.create(
                    api_key_id=api_key_id,
                    key=key,
                    fingerprint=fingerprint,
                    expires_at=now + timedelta(seconds=settings.IDEMPOTENCY_LEASE),
                )
        except IntegrityError:
            return lookup.first(), False
        return record, True

    def _answer_retry(
        self, style: str, record: IdempotencyRecord | None, fingerprint: str
    ) -> HttpResponse:
        if record is not None and record.fingerprint != fingerprint:
            message = "This Idempotency-Key was already used with a different request."
            return JsonResponse(error_body(style, 409, message), status=409)
        if record is None or record.status_code is None:
            message = "A request with this Idempotency-Key is still being processed."
            response = JsonResponse(
                error_body(style, 409, message, IN_PROGRESS_CODES[style]), status=409
            )
            lease_left = (record.expires_at - timezone.now()).total_seconds() if record else 0
            response["Retry-After"] = str(max(1, math.ceil(lease_left)))
            return response
        response = HttpResponse(bytes(record.body), status=record.status_code)
        for name, value in record.headers.items():
            response[name] = value
        response["Idempotent-Replayed"] = "true"
        return response

    def _keep(self, record: IdempotencyRecord, response: HttpResponse) -> None:
        """Keep a response to replay; forget a request that did not get a final answer
        (authentication, throttling, server errors, an outage), so that its retry runs.

        Only this request's own claim is written: a request that outlived its lease may have
        been taken over by a retry, whose record is not this one's to change. Without a database
        the record is left to its lease, and the answer still goes out: a retry after the lease
        runs again and is told the current state."""
        claim = IdempotencyRecord.objects.filter(pk=record.pk, status_code=None)
        try:
            if response.status_code in (401, 403, 429) or response.status_code >= 500:
                claim.delete()
                return
            claim.update(
                status_code=response.status_code,
                body=response.content,
                headers={
                    name: value
                    for name, value in response.items()
                    if name.lower() not in self.UNSTORED_HEADERS
                },
                expires_at=timezone.now() + timedelta(seconds=settings.IDEMPOTENCY_TTL),
            )
        except DatabaseError:
            logger.warning("Idempotency key left to its lease: the database did not answer.")

    def _release(self, record: IdempotencyRecord) -> None:
        """Free the key at once for a retry (or leave it to its lease without a database)."""
        try:
            IdempotencyRecord.objects.filter(pk=record.pk, status_code=None).delete()
        except DatabaseError:
            logger.warning("Idempotency key left to its lease: the database did not answer.")


class BrowserOnly:
    """Mixed into a browser middleware (sessions, messages, users, static files): it runs on
    every route but the APIs'. An API request carries no cookie, form or page and is answered
    by its API key, so it skips them. (Subclasses, so that Django's checks still find them. CSRF
    stays as it is: the deploy check looks for its own name, and the APIs' views are exempt.)"""

    get_response: Callable[[HttpRequest], HttpResponse]

    def __call__(self, request: HttpRequest) -> HttpResponse:
        if api_style_for_path(request.path) is not None:
            return self.get_response(request)
        return super().__call__(request)


class BrowserWhiteNoiseMiddleware(BrowserOnly, WhiteNoiseMiddleware):
    pass


class BrowserSessionMiddleware(BrowserOnly, SessionMiddleware):
    pass


class BrowserAuthenticationMiddleware(BrowserOnly, AuthenticationMiddleware):
    pass


class BrowserMessageMiddleware(BrowserOnly, MessageMiddleware):
    pass
