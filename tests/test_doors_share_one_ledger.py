"""A change through one door shows through the others: one ledger behind every door."""

from datetime import timedelta
from unittest import mock

import pytest
from django.utils import timezone

from consents.models import ConsentEvent, MarketingConsent
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


# --- an opt-out made again is dated again -------------------------------------------------------

UPSERT = "/marketing-consent/v1/marketing-consent/upsert"
REMOVE = "/marketing-consent/v1/marketing-consent/remove"


def at(moment):
    return mock.patch("django.utils.timezone.now", return_value=moment)


def api_opt_in_dated(api_client, date):
    return api_client.post(
        UPSERT,
        {
            "details": {"type": "EMAIL", "email": "kim@example.com"},
            "state": "CONFIRMED",
            "lastConfirmationActivity": {
                "source": "FORM",
                "updatedDate": date.isoformat(timespec="milliseconds"),
            },
        },
        format="json",
    )


def test_a_member_opt_out_made_again_is_dated_again_and_wins_over_an_older_opt_in(api_client):
    """OPT_OUT, OPT_IN, OPT_OUT through the member API send the same undated activities each
    time: the second opt-out is a new act, not a replay, so it is dated when it is made. An
    opt-in dated before it, arriving later through the consent API, is then superseded."""
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    for minutes, preference in ((0, "OPT_OUT"), (10, "OPT_IN"), (20, "OPT_OUT")):
        with at(start + timedelta(minutes=minutes)):
            response = api_client.put(
                SUBSCRIPTION, {"email": {"preference": preference}}, format="json"
            )
        assert response.status_code == 200

    consent = MarketingConsent.objects.get(address="kim@example.com")
    assert (consent.state, consent.confirmation_date, consent.revoke_date) == (
        "REVOKED",
        start + timedelta(minutes=10),
        start + timedelta(minutes=20),
    )

    response = api_opt_in_dated(api_client, start + timedelta(minutes=15))

    assert response.status_code == 200
    consent.refresh_from_db()
    assert (consent.state, consent.revoke_date) == ("REVOKED", start + timedelta(minutes=20))
    assert ConsentEvent.objects.order_by("id").last().kind == "SUPERSEDED"


def test_a_consent_api_opt_out_made_again_is_dated_again_and_an_exact_replay_is_not(api_client):
    start = timezone.now().replace(microsecond=0) - timedelta(hours=1)
    remove = {"details": {"type": "EMAIL", "email": "kim@example.com"}, "lastRevokeActivity": {}}
    with at(start):
        api_client.post(REMOVE, remove, format="json")
    with at(start + timedelta(minutes=5)):
        replay = api_client.post(REMOVE, remove, format="json")
    with at(start + timedelta(minutes=10)):
        api_opt_in_dated(api_client, start + timedelta(minutes=10))
    with at(start + timedelta(minutes=20)):
        api_client.post(REMOVE, remove, format="json")

    consent = MarketingConsent.objects.get(address="kim@example.com")
    assert replay.json()["marketingConsent"]["lastRevokeActivity"]["updatedDate"] == (
        start.isoformat(timespec="milliseconds").replace("+00:00", "Z")
    )
    assert (consent.state, consent.revoke_date) == ("REVOKED", start + timedelta(minutes=20))

    api_opt_in_dated(api_client, start + timedelta(minutes=15))

    consent.refresh_from_db()
    assert (consent.state, consent.revoke_date) == ("REVOKED", start + timedelta(minutes=20))
    assert list(ConsentEvent.objects.order_by("id").values_list("kind", flat=True)) == [
        "CREATED",
        "UNCHANGED",
        "UPDATED",
        "UPDATED",
        "SUPERSEDED",
    ]
