"""API-key authentication of both APIs."""

from datetime import timedelta

import pytest
from django.utils import timezone

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
