"""What the HTTP servers hand the application, made the same under `runserver` (development) and
gunicorn (production, configured by gunicorn.conf.py).

- Both drop header names with an underscore (such a name and its hyphenated twin reach the
  application as one variable, so one could pass for the other). The member API documents
  `MCK_CORRELATIONID` with an underscore, so that one name is kept; when its hyphenated twin is
  sent too, the twin wins.
- A request without a Content-Type has none (wsgiref, under runserver, would invent
  `text/plain`), so that the APIs read its body as JSON.
"""

from typing import Any

from django.core.servers import basehttp

UNDERSCORE_HEADERS_KEPT = frozenset({"MCK_CORRELATIONID"})


def kept_headers(headers: list[tuple[str, str]]) -> list[tuple[str, str]]:
    """The (name, value) pairs to pass on: every name without an underscore, and the kept
    underscore names whose hyphenated twin is not also present."""
    names = {name.upper() for name, _ in headers}
    return [
        (name, value)
        for name, value in headers
        if "_" not in name
        or (name.upper() in UNDERSCORE_HEADERS_KEPT and name.upper().replace("_", "-") not in names)
    ]


class RequestHandler(basehttp.WSGIRequestHandler):
    """runserver's request handler with the rules above."""

    def get_environ(self) -> dict[str, Any]:
        sent = list(self.headers.items())
        has_content_type = self.headers.get("Content-Type") is not None
        environ = super().get_environ()  # drops every underscore name
        for name, value in kept_headers(sent):
            if "_" in name:
                environ["HTTP_" + name.upper()] = value
        if not has_content_type:
            environ.pop("CONTENT_TYPE", None)
        return environ


class WSGIServer(basehttp.WSGIServer):
    """runserver's server, answering with RequestHandler."""

    def __init__(self, server_address: Any, handler_class: Any, *args: Any, **kwargs: Any):
        if handler_class is basehttp.WSGIRequestHandler:
            handler_class = RequestHandler
        super().__init__(server_address, handler_class, *args, **kwargs)
