"""Input that cannot be encoded as UTF-8 (a lone surrogate) is refused, never a 500."""

import pytest

pytestmark = pytest.mark.django_db

SURROGATE_BODY = (
    '{"details": {"type": "EMAIL", "email": "\\ud800@example.com"}, "state": "\\ud800",'
    ' "correlationId": "\\ud800", "channel": "\\ud800"}'
)


@pytest.mark.parametrize(
    "url", ["/marketing-consent/v1/marketing-consent/upsert", "/client/users/x/sessions"]
)
def test_a_lone_surrogate_quoted_back_in_an_error_is_a_400(api_client, url):
    response = api_client.post(url, SURROGATE_BODY, content_type="application/json")

    assert response.status_code == 400
    assert response.json()  # valid JSON: the surrogate comes back escaped


def test_a_lone_surrogate_in_a_stored_field_is_refused(api_client):
    body = (
        '{"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "CONFIRMED",'
        ' "lastConfirmationActivity": {"description": "\\ud800"}}'
    )

    response = api_client.post(
        "/marketing-consent/v1/marketing-consent/upsert", body, content_type="application/json"
    )

    assert response.status_code == 400
    violation = response.json()["details"]["validationError"]["fieldViolations"][0]
    assert violation["field"] == "lastConfirmationActivity.description"
