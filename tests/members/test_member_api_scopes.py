"""API-key scopes on the member API's real endpoints."""

import pytest

from tests.factories import ClientApiKeyFactory, MemberFactory

pytestmark = pytest.mark.django_db


def test_a_read_key_can_start_a_member_session_and_read_but_not_write(client):
    MemberFactory(loyalty_id="LOY-R", email="r@example.com")
    key = ClientApiKeyFactory(scope="read")
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {key.clear_key}"

    started = client.post(
        "/client/users/LOY-R/sessions",
        {"correlationId": "corr-r", "channel": "APP"},
        content_type="application/json",
        HTTP_X_IDENTIFIER_TYPE="LOYALTY_ID",
    )
    read = client.get("/client/users/corr-r/profile/marketing-preferences")
    write = client.put(
        "/client/users/corr-r/profile/marketing-subscription",
        {"email": {"preference": "OPT_IN"}},
        content_type="application/json",
    )

    assert (started.status_code, read.status_code, write.status_code) == (200, 200, 403)
    assert write.json() == {
        "statusCode": 403,
        "errorCode": "FORBIDDEN",
        "errorMessage": "This API key may only read.",
    }
