"""What the views of both APIs share."""

from typing import Any

from rest_framework.exceptions import NotFound
from rest_framework.negotiation import DefaultContentNegotiation
from rest_framework.renderers import BaseRenderer
from rest_framework.request import Request
from rest_framework.response import Response
from rest_framework.views import APIView

from consentsite.api_errors import CONSENT


class JsonOnlyNegotiation(DefaultContentNegotiation):
    """Answer JSON whatever the `Accept` header asks for: the contracts have no other format, and
    a client's `Accept: text/html` must not turn its answer into a 406 outside the contract."""

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
