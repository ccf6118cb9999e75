"""An unreachable or failing database is an outage, answered 503 with Retry-After in each door's
shape, whether the error comes from a view or a middleware; a bug is still a 500 in the API's
shape. (tests/test_faults_live.py stops a real PostgreSQL; these run on both databases.)"""

from unittest import mock

import pytest
from django.db import OperationalError
from django.test import Client

from consents.links import UNSUBSCRIBE, make_token
from consents.models import ConsentEvent
from tests.consents.conftest import API, confirmed
from tests.factories import MarketingConsentFactory

pytestmark = pytest.mark.django_db

OUTAGE = "The service is temporarily unavailable. Try again shortly."
CONSENT_OUTAGE = {
    "message": OUTAGE,
    "details": {"applicationError": {"code": "UNAVAILABLE", "description": OUTAGE}},
}
MEMBER_OUTAGE = {"statusCode": 503, "errorCode": "SERVICE_UNAVAILABLE", "errorMessage": OUTAGE}
UPSERT = f"{API}/marketing-consent/upsert"
SUBSCRIPTION = "/client/users/corr-1/profile/marketing-subscription"


@pytest.fixture
def http(api_key) -> Client:
    """A client that gets the answers a real server gives to an unhandled error (no re-raise)."""
    return Client(HTTP_AUTHORIZATION=f"Api-Key {api_key.clear_key}", raise_request_exception=False)


def database_down(target: str, error: Exception | None = None):
    return mock.patch(target, side_effect=error or OperationalError("connection refused"))


@pytest.mark.parametrize(
    ("path", "body", "expected"),
    [(UPSERT, confirmed("a@example.com"), CONSENT_OUTAGE), (SUBSCRIPTION, {}, MEMBER_OUTAGE)],
)
def test_an_outage_met_in_the_guard_middleware_is_a_503_in_the_apis_shape(
    http, path, body, expected
):
    with database_down("consents.models.IdempotencyRecord.objects.create"):
        response = http.post(path, body, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1")

    assert (response.status_code, response.json()) == (503, expected)
    assert response["Retry-After"] == "5"
    assert not ConsentEvent.objects.exists()


def test_an_outage_met_in_a_view_is_a_503_in_the_apis_shape(http):
    with database_down("consents.api.views.consent_upsert"):
        response = http.post(UPSERT, confirmed("a@example.com"), content_type="application/json")

    assert (response.status_code, response.json()) == (503, CONSENT_OUTAGE)
    assert response["Retry-After"] == "5"


def test_the_member_api_keeps_its_headers_in_an_outage(http):
    with database_down("consents.models.IdempotencyRecord.objects.create"):
        response = http.put(
            SUBSCRIPTION, {}, content_type="application/json", HTTP_IDEMPOTENCY_KEY="k1"
        )

    assert response.status_code == 503
    assert response["MCK_CORRELATIONID"] == "corr-1"
    assert response["MCK-APPID"] == "ES-CB-V1"


def test_a_link_page_in_an_outage_asks_to_try_again(http):
    consent = MarketingConsentFactory(address="a@example.com")
    token = make_token(consent.id, purpose=UNSUBSCRIBE)

    with database_down("consents.selectors.MarketingConsent.objects.not_erased"):
        response = http.get("/_manage-consent/unsubscribe", {"token": token})

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    assert "Please try again in a moment" in response.content.decode()


def test_a_bug_in_the_guard_middleware_is_a_500_in_the_apis_shape_not_a_page(http):
    with database_down("consents.models.IdempotencyRecord.objects.create", RuntimeError("a bug")):
        response = http.post(
            UPSERT,
            confirmed("a@example.com"),
            content_type="application/json",
            HTTP_IDEMPOTENCY_KEY="k1",
        )

    message = "Internal error. It has been logged."
    assert (response.status_code, response.json()) == (
        500,
        {
            "message": message,
            "details": {"applicationError": {"code": "INTERNAL", "description": message}},
        },
    )
