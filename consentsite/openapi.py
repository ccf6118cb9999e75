"""OpenAPI (drf-spectacular) descriptions of project-wide pieces. Imported by the URLconf, which
registers the extensions before any schema is generated."""

from drf_spectacular.extensions import OpenApiAuthenticationExtension

from consentsite.auth import KEYWORD


class ApiKeyAuthenticationScheme(OpenApiAuthenticationExtension):
    """The API-key scheme of both APIs, as the `security` of every operation."""

    target_class = "consentsite.auth.ApiKeyAuthentication"
    name = "ApiKeyAuth"

    def get_security_definition(self, auto_schema: object) -> dict[str, str]:
        return {
            "type": "apiKey",
            "in": "header",
            "name": "Authorization",
            "description": f"`{KEYWORD} <key>`, or the bare key.",
        }
