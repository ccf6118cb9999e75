"""API-key authentication for both APIs.

Keys are `ClientApiKey` rows (djangorestframework-api-key: hashed, revocable, expiring). Clients
send `Authorization: Api-Key <key>`, or the bare key (`Authorization: <key>`) as the source
platform's own clients do. The key becomes `request.auth`; its name is the actor recorded on
every write.
"""

import hashlib
import threading
from time import monotonic
from typing import ClassVar

from django.conf import settings
from django.db import connection
from django.http import HttpRequest
from rest_framework.authentication import BaseAuthentication
from rest_framework.exceptions import AuthenticationFailed
from rest_framework.permissions import SAFE_METHODS, BasePermission
from rest_framework.throttling import SimpleRateThrottle

from consents.models import ApiName, ApiScope, ClientApiKey, RequestCount

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


# The valid keys this process has verified, for API_KEY_CACHE_SECONDS: the digest of a key →
# (its row, when to verify it again on the monotonic clock). Only valid keys are kept, so this
# holds at most one entry per key; a key is never held in clear.
_verified: dict[str, tuple[ClientApiKey, float]] = {}


def forget_verified_keys() -> None:
    """Verify every key again on its next request (as API_KEY_CACHE_SECONDS later would)."""
    _verified.clear()


def _lookup(request: HttpRequest) -> ClientApiKey | AuthenticationFailed | None:
    key = key_from_header(request.META.get("HTTP_AUTHORIZATION", ""))
    if key is None:
        return None
    digest = hashlib.sha256(key.encode()).hexdigest()
    api_key, verify_after = _verified.get(digest, (None, 0.0))
    if api_key is None or monotonic() >= verify_after:
        try:
            api_key = ClientApiKey.objects.get_from_key(key)
        except ClientApiKey.DoesNotExist:
            _verified.pop(digest, None)
            return AuthenticationFailed("The API key is not valid.")
        if settings.API_KEY_CACHE_SECONDS > 0:
            _verified[digest] = (api_key, monotonic() + settings.API_KEY_CACHE_SECONDS)
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
    """Requests per API key, in fixed windows of the rate's period (6000/min: at most 6000 in each
    clock minute), counted in the database so that every process sees the same count without a
    cache server. (DRF's own throttle rewrites a list of timestamps in the cache on every request:
    its cost grows with the rate.)

    A process reserves the key's requests in blocks of a hundredth of the rate and spends them
    without a query. Blocks are taken from the window's count, so the rate is never exceeded; at
    most, blocks other processes have not spent yet make the limit bite that much early."""

    scope = "api_key"
    BLOCK_SHARE = 100
    # API key prefix → (window, requests reserved and not spent yet), for this process.
    reserved: ClassVar[dict[str, tuple[int, int]]] = {}
    reserving = threading.Lock()

    def allow_request(self, request: HttpRequest, view: object) -> bool:
        if self.rate is None or not isinstance(request.auth, ClientApiKey):
            return True
        self.now = self.timer()
        period = int(self.now // self.duration * self.duration)
        self.window_end = period + self.duration
        key = request.auth.prefix
        with self.reserving:
            window, left = self.reserved.get(key, (period, 0))
            if window != period or left == 0:
                block = max(1, self.num_requests // self.BLOCK_SHARE)
                left = reserve_requests(key, period, block, self.num_requests)
            if left == 0:
                self.reserved.pop(key, None)
                return False
            self.reserved[key] = (period, left - 1)
        return True

    def wait(self) -> float:
        return self.window_end - self.now


def reserve_requests(key: str, period: int, block: int, limit: int) -> int:
    """Reserve up to `block` requests of `key` in the window starting at `period`, within
    `limit`; return how many were granted (0 once the window is spent). One row per key: its count
    is every request asked for in the current window, granted or not."""
    table = connection.ops.quote_name(RequestCount._meta.db_table)
    key_column, period_column, count_column = map(
        connection.ops.quote_name, ("key", "period", "count")
    )
    with connection.cursor() as cursor:
        cursor.execute(
            f"INSERT INTO {table} ({key_column}, {period_column}, {count_column}) "
            f"VALUES (%s, %s, %s) ON CONFLICT ({key_column}) DO UPDATE SET "
            f"{count_column} = CASE WHEN {table}.{period_column} = excluded.{period_column} "
            f"THEN {table}.{count_column} + excluded.{count_column} "
            f"ELSE excluded.{count_column} END, "
            f"{period_column} = excluded.{period_column} RETURNING {count_column}",
            [key, period, block],
        )
        (count,) = cursor.fetchone()
    already_asked = count - block
    return max(0, min(block, limit - already_asked))
