"""The manage-consent pages behind the links the API hands out (docs/design.md).

GET only shows the page (mail scanners follow links); the button's POST changes the consent
through the ledger with door LINK. RFC 8058 one-click unsubscribe (`List-Unsubscribe=One-Click`)
revokes at once, without CSRF or a page.
"""

from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.csrf import csrf_exempt, csrf_protect
from django.views.decorators.http import require_http_methods

from consents.addresses import mask_address
from consents.exceptions import ConsentNotFound, ExpiredLink, InvalidLink, StaleLink
from consents.ledger import ChangeContext, consent_confirm_by_link, consent_revoke_by_link
from consents.links import CONFIRM, UNSUBSCRIBE, LinkToken, read_token
from consents.models import Door, MarketingConsent

ONE_CLICK = "One-Click"


def _read(request: HttpRequest, purpose: str) -> tuple[LinkToken, MarketingConsent]:
    token = read_token(request.GET.get("token") or request.POST.get("token") or "", purpose=purpose)
    consent = MarketingConsent.objects.not_erased().filter(id=token.consent_id).first()
    if consent is None:
        raise InvalidLink("This link is no longer valid.")
    return token, consent


def _link_error(request: HttpRequest, error: Exception) -> HttpResponse:
    expired = isinstance(error, ExpiredLink)
    return render(
        request,
        "consents/link_error.html",
        {"expired": expired, "message": getattr(error, "message", str(error))},
        status=410 if expired else 400,
    )


def _context(request: HttpRequest) -> ChangeContext:
    return ChangeContext.from_request(request, door=Door.LINK, actor="link recipient")


@csrf_protect
@require_http_methods(["GET", "POST"])
def subscribe(request: HttpRequest) -> HttpResponse:
    """Double opt-in: show who is confirming; the button confirms."""
    try:
        token, consent = _read(request, CONFIRM)
        page = {"address": mask_address(consent.address), "token": request.GET.get("token", "")}
        if request.method == "GET":
            return render(request, "consents/subscribe.html", page)
        consent_confirm_by_link(
            consent_id=consent.id, issued_at=token.issued_at, context=_context(request)
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
        page = {"address": mask_address(consent.address), "token": request.GET.get("token", "")}
        if request.method == "GET":
            return render(request, "consents/unsubscribe.html", page)
        consent_revoke_by_link(consent_id=consent.id, context=_context(request))
    except (InvalidLink, ConsentNotFound) as error:
        return _link_error(request, error)
    if request.POST.get("List-Unsubscribe") == ONE_CLICK:
        return HttpResponse(status=200)
    return render(request, "consents/unsubscribe.html", {**page, "done": True})
