"""Where webhooks may be sent: HTTPS to public addresses only (no SSRF into our own network),
unless WEBHOOK_ALLOW_INSECURE_TARGETS is on (development and tests), which allows plain HTTP
and any address; debug allows plain HTTP. Checked when an endpoint is saved and again before
every request, against the addresses the host resolves to then; the request then goes to the
address checked, so that a DNS answer cannot change between the check and the connection."""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit, urlunsplit

from django.conf import settings


class UnsafeTarget(ValueError):
    """A URL webhooks must not be sent to."""


@dataclass(frozen=True)
class Target:
    """How to reach a URL: the URL to connect to, and the host name it stands for (for the Host
    header and TLS) when the connection goes to a checked address."""

    connect_url: str
    host: str | None = None


def _refusal(address: str) -> str | None:
    """Why an IP address is refused, or None for a public one."""
    ip = ipaddress.ip_address(address.split("%")[0])
    if isinstance(ip, ipaddress.IPv6Address) and ip.ipv4_mapped:
        ip = ip.ipv4_mapped
    if ip.is_loopback:
        return "a loopback address"
    if ip.is_link_local:
        return "a link-local address"
    if ip.is_private or ip.is_multicast or ip.is_unspecified or not ip.is_global:
        return "a private or reserved address"
    return None


def _resolved(parts: SplitResult) -> list[str]:
    port = parts.port or (443 if parts.scheme == "https" else 80)
    infos = socket.getaddrinfo(parts.hostname, port, type=socket.SOCK_STREAM)
    return sorted({info[4][0] for info in infos})


def check_url(url: str, *, resolve_host: bool = True) -> None:
    """Refuse a URL that is not HTTPS (HTTP is allowed in debug or insecure mode), carries
    credentials, or whose host is or resolves to a refused address. A name that does not
    resolve now is accepted here and checked again at each delivery."""
    parts = urlsplit(url)
    insecure_ok = settings.WEBHOOK_ALLOW_INSECURE_TARGETS
    if parts.scheme not in ({"https", "http"} if insecure_ok or settings.DEBUG else {"https"}):
        raise UnsafeTarget("The URL must use HTTPS.")
    if not parts.hostname:
        raise UnsafeTarget("The URL needs a host.")
    if parts.username or parts.password:
        raise UnsafeTarget("The URL must not contain credentials.")
    if insecure_ok:
        return
    try:
        reason = _refusal(parts.hostname)
    except ValueError:  # a host name, not an address
        if not resolve_host:
            return
        try:
            addresses = _resolved(parts)
        except OSError:
            return
        reason = next(filter(None, map(_refusal, addresses)), None)
        if reason:
            raise UnsafeTarget(f"The URL's host resolves to {reason}.") from None
        return
    if reason:
        raise UnsafeTarget(f"The URL points to {reason}.")


def resolve(url: str) -> Target:
    """Check a URL and the addresses its host resolves to now; return how to reach it."""
    check_url(url, resolve_host=False)
    if settings.WEBHOOK_ALLOW_INSECURE_TARGETS:
        return Target(url)
    parts = urlsplit(url)
    try:
        addresses = _resolved(parts)
    except OSError as exc:
        raise UnsafeTarget(f"The URL's host does not resolve ({exc}).") from exc
    reason = next(filter(None, map(_refusal, addresses)), None)
    if reason:
        raise UnsafeTarget(f"The URL's host resolves to {reason}.")
    literal = f"[{addresses[0]}]" if ":" in addresses[0] else addresses[0]
    netloc = f"{literal}:{parts.port}" if parts.port else literal
    return Target(urlunsplit(parts._replace(netloc=netloc)), host=parts.hostname)
