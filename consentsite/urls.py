from django.contrib import admin
from django.urls import include, path, reverse_lazy
from django.views.generic import RedirectView, TemplateView
from drf_spectacular.views import SpectacularAPIView, SpectacularSwaggerView

import consentsite.openapi  # noqa: F401 - registers the schema's API-key scheme
from consents import views as consent_pages
from consents.sms import views as sms
from consentsite.views import healthz

admin.site.site_header = "consentsite: the consent ledger"
admin.site.site_title = "consentsite admin"
admin.site.index_title = "Consents, their proof, members and API keys"
admin.site.site_url = reverse_lazy("swagger-ui")  # "View site": the API docs
admin.site.enable_nav_sidebar = False  # lists need the width of a 1280-px screen
admin.site.empty_value_display = "—"

urlpatterns = [
    path("healthz", healthz, name="healthz"),
    path(
        "favicon.svg",
        TemplateView.as_view(template_name="favicon.svg", content_type="image/svg+xml"),
        name="favicon",
    ),
    path("favicon.ico", RedirectView.as_view(pattern_name="favicon", permanent=True)),
    path("admin/", admin.site.urls),
    path("api/schema/", SpectacularAPIView.as_view(), name="schema"),
    path("api/docs/", SpectacularSwaggerView.as_view(url_name="schema"), name="swagger-ui"),
    path("", include("members.api.urls")),
    path("", include("consents.api.urls")),
    path("_manage-consent/subscribe", consent_pages.subscribe, name="manage-consent-subscribe"),
    path(
        "_manage-consent/unsubscribe", consent_pages.unsubscribe, name="manage-consent-unsubscribe"
    ),
    path("sms/inbound", sms.inbound, name="sms-inbound"),
]

handler500 = "consentsite.views.server_error"
