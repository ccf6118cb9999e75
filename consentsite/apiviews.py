"""What the views of both APIs share."""

from typing import Any

from django.utils.http import parse_header_parameters
from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.parsers import BaseParser, JSONParser
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consentsite.api_errors import CONSENT

FORM_MEDIA_TYPE = "application/x-www-form-urlencoded"


def is_json_media_type(media_type: str) -> bool:
    return media_type == "application/json" or (
        media_type.startswith("application/") and media_type.endswith("+json")
    )


def is_read_as_json(content_type: str) -> bool:
    """Whether a body sent with this Content-Type is read as JSON: a JSON type, none at all, or
    the form type that `curl -d` sends when the caller names none (the source's own examples do
    so). Any other type is a 415."""
    media_type, _ = parse_header_parameters(content_type or "")
    return media_type in ("", FORM_MEDIA_TYPE) or is_json_media_type(media_type)


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Answer JSON whatever the `Accept` header asks for: the contracts have no other format, and
    a client's `Accept: text/html` must not turn its answer into a 406 outside the contract.
    Read a body as JSON when `is_read_as_json` says so; otherwise DRF answers 415."""

    def select_parser(self, request: Request, parsers: list[BaseParser]) -> BaseParser | None:
        if not is_read_as_json(request.content_type):
            return None
        return next(parser for parser in parsers if isinstance(parser, JSONParser))

    def select_renderer(
        self, request: Request, renderers: list[BaseRenderer], format_suffix: str | None = None
    ) -> tuple[BaseRenderer, str]:
        return renderers[0], renderers[0].media_type


class ContractApiMixin:
    """JSON answers only, and no OPTIONS self-description (it would answer in DRF's own shape:
    405 instead)."""

    content_negotiation_class = JsonOnlyNegotiation
    metadata_class = None

    @property
    def allowed_methods(self) -> list[str]:
        """The `Allow` header of a 405: the route's methods, without the refused OPTIONS."""
        return [method for method in super().allowed_methods if method != "OPTIONS"]


class UnknownEndpointView(ContractApiMixin, APIView):
    """Any other URL under an API's prefix: a 404 in that API's error shape, whatever the
    method. Route it with `as_view(api_error_style=...)`."""

    api_error_style = CONSENT
    authentication_classes = []
    permission_classes = []
    schema = None

    def http_method_not_allowed(self, request: Request, *args: Any, **kwargs: Any) -> Response:
        raise NotFound("No such endpoint.")
