"""Site-level views: the health probe, and the answer to an error no view answered."""

import sys
import threading

from django.conf import settings
from django.db import DatabaseError, connection
from django.http import HttpRequest, HttpResponse, JsonResponse
from django.shortcuts import render
from django.views import defaults
from django.views.decorators.http import require_GET

from consentsite.api_errors import (
    INTERNAL_MESSAGE,
    OUTAGE_ERRORS,
    OUTAGE_RETRY_AFTER_SECONDS,
    api_style_for_path,
    error_body,
    outage_answer,
)


def _database_answers(answers: list[bool]) -> None:
    """Ask the database for `SELECT 1` on a connection of this thread's own, then close it."""
    try:
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
            cursor.fetchone()
        answers.append(True)
    except DatabaseError:
        answers.append(False)
    finally:
        connection.close()


@require_GET
def healthz(request: HttpRequest) -> JsonResponse:
    """200 when the database answers within HEALTHZ_TIMEOUT seconds, 503 when it does not, or
    not that soon (a frozen server never answers: the probe is not left to hang). No
    authentication (for probes)."""
    answers: list[bool] = []
    probe = threading.Thread(target=_database_answers, args=(answers,), daemon=True)
    probe.start()
    probe.join(timeout=settings.HEALTHZ_TIMEOUT)
    if answers != [True]:
        return JsonResponse({"status": "unavailable"}, status=503)
    return JsonResponse({"status": "ok"})


def server_error(request: HttpRequest) -> HttpResponse:
    """An error no view answered, raised in a middleware as well as in a view: in an API's own
    shape under its prefix, and a 503 with Retry-After when the database is out (a "try again"
    page outside the APIs)."""
    error = sys.exc_info()[1]
    outage = isinstance(error, OUTAGE_ERRORS)
    style = api_style_for_path(request.path)
    if style is not None:
        if outage:
            status, body, headers = outage_answer(style)
            return JsonResponse(body, status=status, headers=headers)
        return JsonResponse(error_body(style, 500, INTERNAL_MESSAGE, "INTERNAL"), status=500)
    if outage:
        response = render(request, "unavailable.html", status=503)
        response["Retry-After"] = str(OUTAGE_RETRY_AFTER_SECONDS)
        return response
    return defaults.server_error(request)
