"""The queries of the benchmarked requests on PostgreSQL, pinned: each write is one statement per
consent (the upsert with its ledger rules and its event), never a round of ORM queries.

Each test first sends one request, as a running client has: its key's throttle block is then
reserved (see test_api_access.py). The key lookup is cached in production, not in tests."""

import pytest

from consents.models import MarketingConsent
from tests.factories import MemberFactory, MemberSessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

UPSERT = "/marketing-consent/v1/marketing-consent/upsert"
GET_BY = "/marketing-consent/v1/marketing-consent/get-by?type=EMAIL&email=ada@example.com"
PUT = "/client/users/corr-ada/profile/marketing-subscription"


def confirmed(address: str) -> dict:
    return {
        "details": {"type": "EMAIL", "email": address},
        "state": "CONFIRMED",
        "lastConfirmationActivity": {"source": "FORM", "optInLevel": "SINGLE_CONFIRMATION"},
    }


@pytest.mark.parametrize("address", ["new@example.com", "ada@example.com"], ids=["new", "stored"])
def test_an_upsert_is_the_key_and_one_statement(api_client, django_assert_num_queries, address):
    api_client.post(UPSERT, confirmed("ada@example.com"), format="json")

    with django_assert_num_queries(2):
        response = api_client.post(UPSERT, confirmed(address), format="json")

    assert response.status_code == 200


def test_a_get_by_is_the_key_and_the_consent(api_client, django_assert_num_queries):
    api_client.post(UPSERT, confirmed("ada@example.com"), format="json")

    with django_assert_num_queries(2):
        response = api_client.get(GET_BY)

    assert response.json()["marketingConsent"]["state"] == "CONFIRMED"


def test_a_member_put_is_one_statement_per_channel(api_client, api_key, django_assert_num_queries):
    member = MemberFactory(email="ada@example.com", phone="+14155550123")
    MemberSessionFactory(correlation_id="corr-ada", member=member, api_key=api_key)
    body = {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}}
    api_client.put(PUT, {"email": {"preference": "OPT_OUT"}}, format="json")

    # The key, the session with its member, the transaction around both channels (a savepoint
    # and its release inside the test's transaction), one upsert each.
    with django_assert_num_queries(6):
        response = api_client.put(PUT, body, format="json")

    assert response.status_code == 200


def test_a_member_put_of_one_channel_is_one_statement(
    api_client, api_key, django_assert_num_queries
):
    member = MemberFactory(email="ada@example.com")
    MemberSessionFactory(correlation_id="corr-ada", member=member, api_key=api_key)
    api_client.put(PUT, {"email": {"preference": "OPT_OUT"}}, format="json")

    # The key, the session with its member, the upsert: no transaction around one statement.
    with django_assert_num_queries(3) as captured:
        response = api_client.put(PUT, {"email": {"preference": "OPT_IN"}}, format="json")

    assert response.status_code == 200
    assert "consent_merge" in captured.captured_queries[-1]["sql"]
    assert MarketingConsent.objects.get(address="ada@example.com").state == "CONFIRMED"
