from django.contrib import admin
from django.urls import include, path
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import consentsite.openapi  # noqa: F401 - registers the schema's API-key scheme
from consents import views as consent_pages
from consentsite.views import healthz

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("members.api.urls")),
    path("", include("consents.api.urls")),
    path("_manage-consent/subscribe", consent_pages.subscribe, name="manage-consent-subscribe"),
    path(
        "_manage-consent/unsubscribe", consent_pages.unsubscribe, name="manage-consent-unsubscribe"
    ),
]

handler500 = "consentsite.views.server_error"
