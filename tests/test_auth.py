"""API-key authentication of both APIs."""

from datetime import timedelta
from time import monotonic

import pytest
from django.utils import timezone

from consents.models import ClientApiKey
from consentsite import auth
from tests.factories import ClientApiKeyFactory

pytestmark = pytest.mark.django_db

URL = "/marketing-consent/v1/marketing-consent/get-by?type=EMAIL&email=a@example.com"


@pytest.mark.parametrize("scheme", ["Api-Key {key}", "api-key {key}", "{key}"])
def test_the_key_authenticates_with_or_without_its_keyword(client, scheme):
    key = ClientApiKeyFactory()

    response = client.get(URL, HTTP_AUTHORIZATION=scheme.format(key=key.clear_key))

    assert response.status_code == 200


@pytest.mark.parametrize(
    ("header", "message"),
    [
        (None, "Authentication credentials were not provided."),
        ("Bearer abc", "Authentication credentials were not provided."),
        ("Api-Key nope.nope", "The API key is not valid."),
    ],
)
def test_missing_or_wrong_keys_are_401(client, header, message):
    extra = {"HTTP_AUTHORIZATION": header} if header else {}

    response = client.get(URL, **extra)

    assert response.status_code == 401
    assert response["WWW-Authenticate"] == "Api-Key"
    assert response.json()["message"] == message


def test_a_revoked_key_is_refused(client):
    key = ClientApiKeyFactory(revoked=True)

    assert client.get(URL, HTTP_AUTHORIZATION=f"Api-Key {key.clear_key}").status_code == 401


def test_an_expired_key_is_refused(client):
    key = ClientApiKeyFactory(expiry_date=timezone.now() - timedelta(minutes=1))

    response = client.get(URL, HTTP_AUTHORIZATION=f"Api-Key {key.clear_key}")

    assert response.status_code == 401
    assert response.json()["message"] == "The API key has expired."


@pytest.fixture
def cached_keys(settings):
    settings.API_KEY_CACHE_SECONDS = 60
    auth.forget_verified_keys()
    yield
    auth.forget_verified_keys()


def test_a_key_is_looked_up_once_while_its_lookup_is_cached(
    client, cached_keys, django_assert_num_queries
):
    key = ClientApiKeyFactory()
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {key.clear_key}"
    assert client.get(URL).status_code == 200

    # The consent only: no key lookup (and the key's throttle block is reserved).
    with django_assert_num_queries(1):
        assert client.get(URL).status_code == 200
    assert not any(key.clear_key in str(cached) for cached in auth._verified.items())


def test_a_revoked_key_is_refused_once_its_cached_lookup_expires(client, cached_keys, monkeypatch):
    key = ClientApiKeyFactory()
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {key.clear_key}"
    verified_at = monotonic()
    assert client.get(URL).status_code == 200
    ClientApiKey.objects.filter(pk=key.pk).update(revoked=True)

    # API_KEY_CACHE_SECONDS is 60: the key is verified again on the first request after that.
    monkeypatch.setattr(auth, "monotonic", lambda: verified_at + 59)
    still_cached = client.get(URL)
    monkeypatch.setattr(auth, "monotonic", lambda: verified_at + 90)
    refused = client.get(URL)

    assert still_cached.status_code == 200
    assert refused.status_code == 401
    assert refused.json()["message"] == "The API key is not valid."


def test_an_expiry_passing_while_the_lookup_is_cached_is_refused(client, cached_keys, monkeypatch):
    key = ClientApiKeyFactory(expiry_date=timezone.now() + timedelta(minutes=1))
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {key.clear_key}"
    assert client.get(URL).status_code == 200
    later = timezone.now() + timedelta(minutes=2)

    monkeypatch.setattr(timezone, "now", lambda: later)
    response = client.get(URL)

    assert response.status_code == 401
    assert response.json()["message"] == "The API key has expired."
