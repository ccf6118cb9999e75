"""Which URL pattern serves a request."""

from django.http import HttpRequest
from django.urls import Resolver404, ResolverMatch, resolve


def resolver_match_of(request: HttpRequest) -> ResolverMatch | None:
    """The request's URL match, also for answers made by middleware before any view ran."""
    if request.resolver_match is not None:
        return request.resolver_match
    try:
        return resolve(request.path_info)
    except Resolver404:
        return None
