"""Normalisation of email addresses and phone numbers: one spelling per address, at every door."""

import functools
import hashlib
import hmac
import re
from collections.abc import Iterable
from typing import Any

import phonenumbers
from django.conf import settings
from django.core.exceptions import ValidationError
from django.core.validators import EmailValidator

from consents.exceptions import InvalidAddress

MAX_EMAIL_LENGTH = 254


class _EmailValidator(EmailValidator):
    """Django's email validator with its own patterns compiled once: Django keeps them behind
    lazy proxies, which cost several attribute look-ups per address checked, a tenth of a bulk
    import's checking (docs/performance.md)."""

    user_regex = re.compile(EmailValidator.user_regex.pattern, EmailValidator.user_regex.flags)
    domain_regex = re.compile(
        EmailValidator.domain_regex.pattern, EmailValidator.domain_regex.flags
    )
    literal_regex = re.compile(
        EmailValidator.literal_regex.pattern, EmailValidator.literal_regex.flags
    )


_validate_email = _EmailValidator()


def normalize_email(raw: str) -> str:
    """Trim, lower-case and convert an IDN domain to ASCII; raise InvalidAddress if unusable."""
    candidate = raw.strip()
    local, at, domain = candidate.rpartition("@")
    if not at or not local or not domain:
        raise InvalidAddress(f"{raw!r} is not a valid email address.")
    ascii_domain = _ascii_domain(domain)
    if ascii_domain is None:
        raise InvalidAddress(f"{raw!r} is not a valid email address.")
    normalized = f"{local}@{ascii_domain}".lower()
    if len(normalized) > MAX_EMAIL_LENGTH:
        raise InvalidAddress(f"{raw!r} is longer than {MAX_EMAIL_LENGTH} characters.")
    try:
        _validate_email(normalized)
    except ValidationError as exc:
        raise InvalidAddress(f"{raw!r} is not a valid email address.") from exc
    return normalized


@functools.lru_cache(maxsize=4096)
def _ascii_domain(domain: str) -> str | None:
    """A domain in ASCII (IDNA), None if it has no such form. Cached: a bulk import repeats a
    few domains millions of times."""
    try:
        return domain.rstrip(".").encode("idna").decode("ascii")
    except UnicodeError:
        return None


def normalize_phone(raw: str, *, region: str | None = None) -> str:
    """Return the E.164 form of a phone number; raise InvalidAddress if it is not a valid number."""
    try:
        number = phonenumbers.parse(raw, region or settings.DEFAULT_PHONE_REGION)
    except phonenumbers.NumberParseException as exc:
        raise InvalidAddress(f"{raw!r} is not a valid phone number.") from exc
    if not phonenumbers.is_valid_number(number):
        raise InvalidAddress(f"{raw!r} is not a valid phone number.")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


def normalize_address(consent_type: str, raw: str) -> str:
    """Normalise an address of a consent type (`EMAIL` or `PHONE`)."""
    if not isinstance(raw, str):
        raise InvalidAddress("The address must be a string.")
    if consent_type == "EMAIL":
        return normalize_email(raw)
    if consent_type == "PHONE":
        return normalize_phone(raw)
    raise InvalidAddress(f"Unknown consent type {consent_type!r}.")


def mask_address(address: str) -> str:
    """Hide most of an address for pages and logs: j***@example.com, +1******0100."""
    local, at, domain = address.partition("@")
    if at:
        return f"{local[:1]}***@{domain}"
    return f"{address[:2]}{'*' * max(len(address) - 6, 0)}{address[-4:]}"


# An erased address is stored as this prefix and a keyed hash (docs/privacy.md): a tombstone that
# keeps the address's opt-out without the address.
ERASED_PREFIX = "erased:"


def erased_address(address: str) -> str:
    """The tombstone spelling of a normalised address: HMAC-SHA256 under `ERASURE_HASH_KEY`, so
    that it cannot be reversed by hashing guesses without the key."""
    digest = _keyed_hash(settings.ERASURE_HASH_KEY).copy()
    digest.update(address.encode())
    return ERASED_PREFIX + digest.hexdigest()


@functools.lru_cache(maxsize=1)
def _keyed_hash(key: str) -> hmac.HMAC:
    """HMAC-SHA256 under `key`, before any message: copied for each address, so that the key is
    prepared once rather than per address (a bulk import hashes every row's address)."""
    return hmac.new(key.encode(), digestmod=hashlib.sha256)


def is_erased(address: str) -> bool:
    return address.startswith(ERASED_PREFIX)


def stored_spellings(keys: Iterable[tuple[str, str]]) -> dict[tuple[str, str], tuple[str, str]]:
    """Where the consents of these normalised addresses (`(type, address)`) may be stored: under
    the address itself or, once it is erased, under its tombstone's hash. Maps each stored
    `(type, address)` to the address it stands for."""
    spellings = {}
    for type, address in keys:
        spellings[(type, erased_address(address))] = (type, address)
        spellings[(type, address)] = (type, address)
    return spellings


def by_address(
    consents: Iterable[Any], spellings: dict[tuple[str, str], tuple[str, str]]
) -> dict[tuple[str, str], Any]:
    """The consent of each address among stored consents read by their `stored_spellings`: an
    erased address's tombstone stands for its consent; the address in clear wins over it."""
    found = {}
    for consent in consents:
        stored = (consent.type, consent.address)
        key = spellings.get(stored)
        if key == stored:
            found[key] = consent
        elif key is not None:
            found.setdefault(key, consent)
    return found
