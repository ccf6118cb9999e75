"""API-key authentication for both APIs.

Keys are `ClientApiKey` rows (djangorestframework-api-key: hashed, revocable, expiring). Clients
send `Authorization: Api-Key <key>`, or the bare key (`Authorization: <key>`) as the source
platform's own clients do. The key becomes `request.auth`; its name is the actor recorded on
every write.
"""

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from consents.models import ApiName, ApiScope, ClientApiKey

KEYWORD = "Api-Key"


def key_from_header(authorization: str) -> str | None:
    """The key in an Authorization header value, or None when it names another scheme."""
    keyword, space, rest = authorization.strip().partition(" ")
    if not space:
        return keyword or None
    if keyword.lower() != KEYWORD.lower():
        return None
    return rest.strip() or None


def resolve_api_key(request: HttpRequest) -> ClientApiKey | None:
    """The API key a request carries: None without one, AuthenticationFailed if it is not valid.

    Looked up once per request: the API guard middleware and DRF's authentication both ask."""
    django_request = getattr(request, "_request", request)
    if not hasattr(django_request, "_api_key_lookup"):
        django_request._api_key_lookup = _lookup(django_request)
    outcome = django_request._api_key_lookup
    if isinstance(outcome, AuthenticationFailed):
        raise outcome
    return outcome


def looked_up_api_key(request: HttpRequest) -> ClientApiKey | None:
    """The valid API key of a request if it was already looked up (no query), else None."""
    outcome = getattr(request, "_api_key_lookup", None)
    return outcome if isinstance(outcome, ClientApiKey) else None


def authenticated_api_key(request: HttpRequest) -> ClientApiKey | None:
    """The valid API key of a request, or None."""
    try:
        return resolve_api_key(request)
    except AuthenticationFailed:
        return None


def _lookup(request: HttpRequest) -> ClientApiKey | AuthenticationFailed | None:
    key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
    if key is None:
        return None
    try:
        api_key = ClientApiKey.objects.get_from_key(key)
    except ClientApiKey.DoesNotExist:
        return AuthenticationFailed("The API key is not valid.")
    if api_key.has_expired:
        return AuthenticationFailed("The API key has expired.")
    return api_key


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: HttpRequest) -> tuple[None, ClientApiKey] | None:
        api_key = resolve_api_key(request)
        return None if api_key is None else (None, api_key)

    def authenticate_header(self, request: HttpRequest) -> str:
        return KEYWORD


class HasApiKey(BasePermission):
    """Allow requests with a valid API key, within the key's limits: a `read` key only reads
    (safe methods, and the actions a view lists in `read_actions`, such as a POST query), and a
    key limited to one API only reaches that API (the view's `api_error_style`)."""

    def has_permission(self, request: HttpRequest, view: object) -> bool:
        api_key = request.auth
        if not isinstance(api_key, ClientApiKey):
            return False
        api = getattr(view, "api_error_style", None)
        if api_key.api not in (ApiName.ANY, api):
            self.message = "This API key may not use this API."
            return False
        reading = request.method in SAFE_METHODS or getattr(view, "action", None) in getattr(
            view, "read_actions", ()
        )
        if api_key.scope == ApiScope.READ and not reading:
            self.message = "This API key may only read."
            return False
        return True


class ApiKeyRateThrottle(SimpleRateThrottle):
    """Requests per API key, counted in the shared cache so that every process sees them."""

    scope = "api_key"

    def get_cache_key(self, request: HttpRequest, view: object) -> str | None:
        if not isinstance(request.auth, ClientApiKey):
            return None
        return self.cache_format % {"scope": self.scope, "ident": request.auth.prefix}
