"""Routes of the member API, spelled exactly as the contract's (no trailing slashes)."""

from django.urls import path, re_path

from consentsite.api_errors import MEMBER
from consentsite.apiviews import UnknownEndpointView
from members.api.views import (
    MarketingPreferencesViewSet,
    MarketingSubscriptionViewSet,
    MemberSessionViewSet,
)

urlpatterns = [
    path(
        "client/users/<str:identifier>/sessions",
        MemberSessionViewSet.as_view({"post": "create"}),
        name="member-sessions",
    ),
    path(
        "client/users/<str:correlation_id>/profile/marketing-subscription",
        MarketingSubscriptionViewSet.as_view({"put": "update"}),
        name="member-marketing-subscription",
    ),
    path(
        "client/users/<str:correlation_id>/profile/marketing-preferences",
        MarketingPreferencesViewSet.as_view({"get": "retrieve"}),
        name="member-marketing-preferences",
    ),
    # Last: any other URL under /client/ answers 404 in the member envelope, not Django's page.
    re_path(
        r"^client(?:/.*)?$",
        UnknownEndpointView.as_view(api_error_style=MEMBER),
        name="member-unknown-endpoint",
    ),
]
