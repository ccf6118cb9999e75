"""Address normalisation: one spelling per address."""

import hashlib
import hmac

import pytest
from django.core.exceptions import ValidationError
from django.core.validators import validate_email
from hypothesis import given
from hypothesis import strategies as st

from consents.addresses import (
    erased_address,
    mask_address,
    normalize_address,
    normalize_email,
    normalize_phone,
)
from consents.exceptions import InvalidAddress


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("alice@example.com", "alice@example.com"),
        ("  Alice@Example.COM\t", "alice@example.com"),
        ("bob@bücher.de", "bob@xn--bcher-kva.de"),
        ("carol@example.com.", "carol@example.com"),
        ("d.e+tag@sub.example.org", "d.e+tag@sub.example.org"),
        ("root@localhost", "root@localhost"),
        ("Ops@[192.0.2.1]", "ops@[192.0.2.1]"),
        ("ops@[2001:DB8::1]", "ops@[2001:db8::1]"),
    ],
)
def test_emails(raw, normalized):
    assert normalize_email(raw) == normalized


@pytest.mark.parametrize(
    "raw",
    [
        "",
        "alice",
        "@example.com",
        "alice@",
        "a b@example.com",
        "a@@example.com",
        "a@-x-.com",
        "x" * 250 + "@example.com",
        "ops@[192.0.2.300]",
        "ops@[2001:db8:::1]",
        "ops@[]",
    ],
)
def test_invalid_emails(raw):
    with pytest.raises(InvalidAddress):
        normalize_email(raw)


@pytest.mark.parametrize(
    ("raw", "normalized"),
    [
        ("+14155550100", "+14155550100"),
        ("(415) 555-0100", "+14155550100"),
        ("415.555.0100", "+14155550100"),
        ("+1 415-555-0100", "+14155550100"),
        ("+44 20 7946 0958", "+442079460958"),
        ("+33 1 42 68 53 00", "+33142685300"),
    ],
)
def test_phones(raw, normalized):
    assert normalize_phone(raw) == normalized


def test_phone_region_comes_from_settings(settings):
    settings.DEFAULT_PHONE_REGION = "GB"

    assert normalize_phone("020 7946 0958") == "+442079460958"


@pytest.mark.parametrize("raw", ["", "12", "not a number", "+1 555", "+999 1234567"])
def test_invalid_phones(raw):
    with pytest.raises(InvalidAddress):
        normalize_phone(raw)


@pytest.mark.parametrize(("type_", "raw"), [("FAX", "1"), ("EMAIL", 42), ("PHONE", None)])
def test_unknown_type_or_non_string_is_invalid(type_, raw):
    with pytest.raises(InvalidAddress):
        normalize_address(type_, raw)


def test_the_tombstone_spelling_is_the_address_hmac_under_the_current_key(settings):
    for key in ("first-key", "second-key", "first-key"):
        settings.ERASURE_HASH_KEY = key
        digest = hmac.new(key.encode(), b"jane@example.com", hashlib.sha256).hexdigest()
        assert erased_address("jane@example.com") == f"erased:{digest}"


def test_masks():
    assert mask_address("jane@example.com") == "j***@example.com"
    assert mask_address("+14155550100") == "+1******0100"


emails = st.emails()


@given(emails)
def test_normalising_an_email_twice_is_normalising_it_once(raw):
    try:
        once = normalize_email(raw)
    except InvalidAddress:
        return
    assert normalize_email(once) == once


@given(st.one_of(emails, st.text(alphabet="ab.-_+@[]:19 xn\u00e9", max_size=20)))
def test_an_email_is_accepted_as_django_accepts_its_normalised_spelling(raw):
    try:
        normalized = normalize_email(raw)
    except InvalidAddress:
        local, at, domain = raw.strip().rpartition("@")
        if at and local and domain:
            try:
                candidate = f"{local}@{domain.rstrip('.').encode('idna').decode()}".lower()
            except UnicodeError:
                return
            if len(candidate) <= 254:
                with pytest.raises(ValidationError):
                    validate_email(candidate)
        return
    validate_email(normalized)


subscriber = st.integers(min_value=2_000_000, max_value=9_999_999).map(str)
spellings = st.sampled_from(
    [
        "+1415{n}",
        "+1 415 {a} {b}",
        "(415) {a}-{b}",
        "415.{a}.{b}",
        "1-415-{a}-{b}",
        " +1 (415) {a} {b} ",
    ]
)


@given(subscriber, spellings, spellings)
def test_equivalent_spellings_of_a_phone_give_one_e164(n, first, second):
    def spell(template: str) -> str:
        return template.format(n=n, a=n[:3], b=n[3:])

    once = normalize_phone(spell(first))
    assert once == normalize_phone(spell(second)) == f"+1415{n}"
    assert normalize_phone(once) == once
