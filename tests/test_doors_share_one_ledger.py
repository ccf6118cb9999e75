"""A change through one door shows through the others: one ledger behind every door."""

import pytest

from consents.models import ConsentEvent
from tests.factories import MemberFactory, MemberSessionFactory

pytestmark = pytest.mark.django_db

GET_BY = "/marketing-consent/v1/marketing-consent/get-by"
PREFERENCES = "/client/users/corr-1/profile/marketing-preferences"
SUBSCRIPTION = "/client/users/corr-1/profile/marketing-subscription"


@pytest.fixture(autouse=True)
def session(api_key):
    member = MemberFactory(email="kim@example.com", phone="+14155550188")
    return MemberSessionFactory(correlation_id="corr-1", member=member, api_key=api_key)


def test_a_member_opt_in_shows_in_the_consent_api(api_client):
    api_client.put(
        SUBSCRIPTION,
        {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}},
        format="json",
    )

    email = api_client.get(GET_BY, {"type": "EMAIL", "email": "kim@example.com"}).json()
    sms = api_client.get(GET_BY, {"type": "PHONE", "phone": "+14155550188"}).json()

    assert email["marketingConsent"]["state"] == "CONFIRMED"
    assert email["marketingConsent"]["lastConfirmationActivity"]["source"] == "FORM"
    assert email["communicationEligibility"]["granted"] is True
    assert sms["marketingConsent"]["state"] == "REVOKED"
    assert sms["communicationEligibility"]["granted"] is False


def test_a_consent_api_opt_out_shows_in_the_member_preferences(api_client):
    api_client.put(SUBSCRIPTION, {"email": {"preference": "OPT_IN"}}, format="json")

    api_client.post(
        "/marketing-consent/v1/marketing-consent/remove",
        {"details": {"type": "EMAIL", "email": "KIM@example.com"}, "lastRevokeActivity": {}},
        format="json",
    )

    loyalty = api_client.get(PREFERENCES).json()["EMAIL"]["LOYALTY"]
    assert (loyalty["status"], loyalty["lastStatusUpdateSource"]) == ("OPTED_OUT", "ESP")
    assert list(ConsentEvent.objects.order_by("id").values_list("door", "state")) == [
        ("MEMBER_API", "CONFIRMED"),
        ("CONSENT_API", "REVOKED"),
    ]
