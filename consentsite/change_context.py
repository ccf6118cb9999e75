"""A door's request as the ledger's `ChangeContext`: who asks, through which door, and the
request's evidence recorded on the change's event."""

from django.http import HttpRequest

from consents.ledger import ChangeContext


def change_context(request: HttpRequest, *, door: str, actor: str) -> ChangeContext:
    return ChangeContext(
        door=door,
        actor=actor,
        request_id=getattr(request, "request_id", ""),
        ip_address=request.META.get("REMOTE_ADDR") or None,
        user_agent=request.META.get("HTTP_USER_AGENT", "")[:1000],
    )
