"""Request id and the one-line-per-request log."""

import json
import logging
import re
import time
import uuid
from collections.abc import Callable

from django.http import HttpRequest, HttpResponse

logger = logging.getLogger("consentsite.request")

REQUEST_ID_PATTERN = re.compile(r"^[A-Za-z0-9._-]{1,64}$")


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
        match = request.resolver_match
        # DRF responses carry their request, whose `auth` is the API key that made it.
        drf_request = getattr(response, "renderer_context", {}).get("request")
        key_name = getattr(getattr(drf_request, "auth", None), "name", None)
        logger.info(
            json.dumps(
                {
                    "method": request.method,
                    "route": match.route if match else None,
                    "status": response.status_code,
                    "duration_ms": round((time.perf_counter() - started) * 1000, 2),
                    "request_id": request.request_id,
                    "key": key_name,
                }
            )
        )
        return response
