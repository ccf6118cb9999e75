"""API-key authentication for both APIs.

Keys are `ClientApiKey` rows (djangorestframework-api-key: hashed, revocable, expiring). Clients
send `Authorization: Api-Key <key>`, or the bare key (`Authorization: <key>`) as the source
platform's own clients do. The key becomes `request.auth`; its name is the actor recorded on
every write.
"""

from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import BasePermission

from consents.models import ClientApiKey

KEYWORD = "Api-Key"


def key_from_header(authorization: str) -> str | None:
    """The key in an Authorization header value, or None when it names another scheme."""
    keyword, space, rest = authorization.strip().partition(" ")
    if not space:
        return keyword or None
    if keyword.lower() != KEYWORD.lower():
        return None
    return rest.strip() or None


class ApiKeyAuthentication(BaseAuthentication):
    def authenticate(self, request: HttpRequest) -> tuple[None, ClientApiKey] | None:
        key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
        if key is None:
            return None
        try:
            api_key = ClientApiKey.objects.get_from_key(key)
        except ClientApiKey.DoesNotExist as exc:
            raise AuthenticationFailed("The API key is not valid.") from exc
        if api_key.has_expired:
            raise AuthenticationFailed("The API key has expired.")
        return None, api_key

    def authenticate_header(self, request: HttpRequest) -> str:
        return KEYWORD


class HasApiKey(BasePermission):
    """Allow requests that authenticated with a valid API key."""

    def has_permission(self, request: HttpRequest, view: object) -> bool:
        return isinstance(request.auth, ClientApiKey)
