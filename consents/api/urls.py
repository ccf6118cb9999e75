"""Routes of the consent API, spelled exactly as the contract's (no trailing slashes)."""

from django.urls import path, re_path

from consents.api.views import MarketingConsentViewSet as Consents
from consentsite.api_errors import CONSENT
from consentsite.apiviews import UnknownEndpointView

BASE = "marketing-consent/v1/"

urlpatterns = [
    path(f"{BASE}marketing-consent/upsert", Consents.as_view({"post": "upsert"})),
    path(f"{BASE}marketing-consent/get-by", Consents.as_view({"get": "get_by"})),
    path(f"{BASE}marketing-consent/remove", Consents.as_view({"post": "remove"})),
    path(f"{BASE}marketing-consent/query", Consents.as_view({"post": "query"})),
    path(f"{BASE}marketing-consent", Consents.as_view({"post": "create"})),
    path(
        f"{BASE}marketing-consent/<str:pk>",
        Consents.as_view({"get": "retrieve", "patch": "partial_update", "delete": "destroy"}),
    ),
    path(f"{BASE}bulk/marketing-consent/upsert", Consents.as_view({"post": "bulk_upsert"})),
    # Last: any other URL under /marketing-consent/ answers 404 in this API's shape.
    re_path(r"^marketing-consent(?:/.*)?$", UnknownEndpointView.as_view(api_error_style=CONSENT)),
]
