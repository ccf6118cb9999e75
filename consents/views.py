"""The manage-consent pages behind the links the API hands out (docs/design.md).

GET only shows the page (mail scanners follow links); the button's POST changes the consent
through the ledger with door LINK. RFC 8058 one-click unsubscribe (`List-Unsubscribe=One-Click`)
revokes at once, without CSRF or a page.

A browser signed in to the admin as staff is not the link's recipient: what it does is recorded
with the staff user as actor, never as the recipient's own click.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from consents.addresses import mask_address
from consents.exceptions import ConsentNotFound, ExpiredLink, InvalidLink, StaleLink
from consents.ledger import (
    ChangeContext,
    check_confirmation_link,
    consent_confirm_by_link,
    consent_revoke_by_link,
)
from consents.links import CONFIRM, UNSUBSCRIBE, LinkToken, read_token
from consents.models import Door, MarketingConsent
from consents.selectors import consent_by_id
from consentsite.change_context import change_context

ONE_CLICK = "One-Click"


def _read(request: HttpRequest, purpose: str) -> tuple[LinkToken, MarketingConsent]:
    token = read_token(request.GET.get("token") or request.POST.get("token") or "", purpose=purpose)
    consent = consent_by_id(token.consent_id)
    if consent is None:
        raise InvalidLink("This link is no longer valid.")
    return token, consent


def _link_error(request: HttpRequest, error: Exception) -> HttpResponse:
    expired = isinstance(error, ExpiredLink)
    return render(
        request,
        "consents/link_error.html",
        {
            "expired": expired,
            "stale": isinstance(error, StaleLink),
            "message": getattr(error, "message", str(error)),
        },
        status=410 if expired else 400,
    )


def _page(request: HttpRequest, consent: MarketingConsent) -> dict[str, str]:
    return {
        "address": mask_address(consent.address),
        "token": request.GET.get("token", ""),
        "staff_user": request.user.get_username() if _by_staff(request) else "",
    }


def _by_staff(request: HttpRequest) -> bool:
    return request.user.is_authenticated and request.user.is_staff


def _context(request: HttpRequest) -> ChangeContext:
    actor = request.user.get_username() if _by_staff(request) else "link recipient"
    return change_context(request, door=Door.LINK, actor=actor)


@csrf_protect
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    """Double opt-in: show who is confirming; the button confirms."""
    try:
        token, consent = _read(request, CONFIRM)
        page = _page(request, consent)
        if request.method == "GET":
            check_confirmation_link(consent, issued_at=token.issued_at)
            return render(request, "consents/subscribe.html", page)
        consent_confirm_by_link(
            consent_id=consent.id,
            issued_at=token.issued_at,
            context=_context(request),
            by_staff=_by_staff(request),
        )
    except (InvalidLink, StaleLink, ConsentNotFound) as error:
        return _link_error(request, error)
    return render(request, "consents/subscribe.html", {**page, "done": True})


@csrf_exempt  # RFC 8058: mail clients post one-click without a page; the page's form has a token
@require_http_methods(["GET", "POST"])
def unsubscribe(request: HttpRequest) -> HttpResponse:
    """Unsubscribe: a page with one button, or RFC 8058 one-click."""
    try:
        _, consent = _read(request, UNSUBSCRIBE)
        page = _page(request, consent)
        if request.method == "GET":
            return render(request, "consents/unsubscribe.html", page)
        consent_revoke_by_link(
            consent_id=consent.id, context=_context(request), by_staff=_by_staff(request)
        )
    except (InvalidLink, ConsentNotFound) as error:
        return _link_error(request, error)
    if request.POST.get("List-Unsubscribe") == ONE_CLICK:
        return HttpResponse(status=200)
    return render(request, "consents/unsubscribe.html", {**page, "done": True})
