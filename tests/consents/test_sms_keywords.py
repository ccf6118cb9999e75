"""POST /sms/inbound: STOP, START and HELP keywords through the ledger, answered in TwiML."""

import logging

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.sms_requests import (
    AUTH_TOKEN,
    BASE_URL,
    EMPTY_REPLY,
    SENDER,
    message,
    post,
    sid,
    twiml,
)
from tests.factories import MemberFactory, MemberSessionFactory

pytestmark = pytest.mark.django_db

STOP_REPLY = (
    "Consentsite: You are unsubscribed and will receive no more messages. "
    "Reply START to resubscribe."
)
START_REPLY = (
    "Consentsite: You are subscribed to marketing messages. Msg frequency varies. "
    "Msg&data rates may apply. Reply HELP for help. Reply STOP to unsubscribe."
)
HELP_REPLY = (
    "Consentsite: Marketing messages. Msg frequency varies. Msg&data rates may apply. "
    "Reply STOP to unsubscribe."
)


@pytest.fixture(autouse=True)
def sms_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE_URL


def phone_consent() -> MarketingConsent:
    return MarketingConsent.objects.get(type="PHONE", address=SENDER)


@pytest.mark.parametrize(
    "text", ["STOP", "STOPALL", "UNSUBSCRIBE", "CANCEL", "END", "QUIT", "stop", "  Stop \n"]
)
def test_a_stop_keyword_revokes_the_senders_phone_consent(text):
    response = post(message(text))

    assert response.status_code == 200
    assert response["Content-Type"] == "application/xml"
    assert response.content.decode() == twiml(STOP_REPLY)
    keyword = text.strip().upper()
    description = f'Keyword "{keyword}" texted to 32123 (message {sid(1)}).'
    consent = phone_consent()
    assert (consent.state, consent.revoke_source, consent.revoke_description) == (
        "REVOKED",
        "OTHER",
        description,
    )
    [event] = ConsentEvent.objects.all()
    assert (event.kind, event.door, event.request_id, event.actor, event.address) == (
        "CREATED",
        "SMS",
        sid(1),
        "SMS sender",
        SENDER,
    )
    assert (event.state, event.activity_source, event.activity_description) == (
        "REVOKED",
        "OTHER",
        description,
    )
    assert event.note == "SMS from +14155550188 to 32123."


@pytest.mark.parametrize("text", ["START", "YES", "UNSTOP", "start", " Yes "])
def test_a_start_keyword_confirms_the_phone_consent_after_a_stop(text):
    post(message("STOP", n=1))

    response = post(message(text, n=2))

    assert response.status_code == 200
    assert response.content.decode() == twiml(START_REPLY)
    description = f'Keyword "{text.strip().upper()}" texted to 32123 (message {sid(2)}).'
    consent = phone_consent()
    assert (
        consent.state,
        consent.confirmation_source,
        consent.confirmation_opt_in_level,
        consent.confirmation_description,
        consent.revision,
    ) == ("CONFIRMED", "OTHER", "SINGLE_CONFIRMATION", description, 2)
    assert consent.confirmation_date > consent.revoke_date
    assert list(ConsentEvent.objects.order_by("id").values_list("kind", "state", "request_id")) == [
        ("CREATED", "REVOKED", sid(1)),
        ("UPDATED", "CONFIRMED", sid(2)),
    ]


@pytest.mark.parametrize("text", ["HELP", "INFO", "help", " Info\t"])
def test_help_is_answered_and_changes_nothing(text):
    response = post(message(text))

    assert response.status_code == 200
    assert response.content.decode() == twiml(HELP_REPLY)
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize("text", ["", "   ", "Hello", "STOP please", "S T O P", "STOP!"])
def test_any_other_text_gets_no_reply_and_is_recorded_nowhere(text):
    post(message("STOP", n=1))

    response = post(message(text, n=2))

    assert response.status_code == 200
    assert response.content.decode() == EMPTY_REPLY
    assert phone_consent().state == "REVOKED"
    assert ConsentEvent.objects.count() == 1


def test_a_message_without_a_body_is_other_text():
    params = message("STOP")
    del params["Body"]

    response = post(params)

    assert (response.status_code, response.content.decode()) == (200, EMPTY_REPLY)
    assert not ConsentEvent.objects.exists()


def test_stop_start_stop_records_the_second_stop_at_its_own_time():
    for n, text in enumerate(["STOP", "START", "STOP"], start=1):
        post(message(text, n=n))

    consent = phone_consent()
    assert consent.state == "REVOKED"
    assert consent.revoke_date > consent.confirmation_date
    assert consent.revoke_description == f'Keyword "STOP" texted to 32123 (message {sid(3)}).'
    assert consent.revision == 3


def test_the_sender_is_normalised_as_everywhere_else():
    post(message("STOP", sender="+1 (415) 555-0188"))

    assert phone_consent().state == "REVOKED"
    assert ConsentEvent.objects.get().address == SENDER


def test_configured_keyword_lists_and_replies_replace_the_defaults(settings):
    settings.SMS_STOP_KEYWORDS = ["ARRET"]
    settings.SMS_START_KEYWORDS = ["Reprendre"]
    settings.SMS_HELP_KEYWORDS = ["AIDE"]
    settings.SMS_STOP_REPLY = "Brand: désabonné. Répondez REPRENDRE pour revenir."
    settings.SMS_START_REPLY = "Brand: abonné. Répondez ARRET pour arrêter."
    settings.SMS_HELP_REPLY = "Brand: aide <support@example.com>."

    replies = [
        post(message(text, n=n)).content.decode()
        for n, text in enumerate(["STOP", "arret", "reprendre", "aide"], start=1)
    ]

    assert replies == [
        EMPTY_REPLY,
        twiml("Brand: désabonné. Répondez REPRENDRE pour revenir."),
        twiml("Brand: abonné. Répondez ARRET pour arrêter."),
        twiml("Brand: aide <support@example.com>."),
    ]
    assert list(ConsentEvent.objects.order_by("id").values_list("state", flat=True)) == [
        "REVOKED",
        "CONFIRMED",
    ]


def test_a_word_in_both_lists_counts_as_stop(settings):
    settings.SMS_START_KEYWORDS = ["START", "STOP"]

    response = post(message("stop"))

    assert response.content.decode() == twiml(STOP_REPLY)
    assert phone_consent().state == "REVOKED"


def test_a_message_to_a_number_that_is_not_ours_is_logged_and_changes_nothing(caplog):
    caplog.set_level(logging.WARNING, logger="consents.sms.views")

    response = post(message("STOP", to="+14155550100"))

    assert (response.status_code, response.content.decode()) == (200, EMPTY_REPLY)
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()
    assert [record.getMessage() for record in caplog.records] == [
        f"Inbound SMS {sid(1)} came to '+14155550100', which is not one of "
        "SMS_PROGRAMME_NUMBERS: answered without a change."
    ]


def test_the_programme_numbers_setting_selects_which_numbers_are_ours(settings):
    settings.SMS_PROGRAMME_NUMBERS = ["+1 415-555-0100", "55555"]

    long_code = post(message("STOP", n=1, to="+14155550100"))
    old_shortcode = post(message("START", n=2, to="32123"))
    shortcode = post(message("START", n=3, to="55555"))

    assert long_code.content.decode() == twiml(STOP_REPLY)
    assert old_shortcode.content.decode() == EMPTY_REPLY
    assert shortcode.content.decode() == twiml(START_REPLY)
    assert list(
        ConsentEvent.objects.order_by("id").values_list("activity_description", flat=True)
    ) == [
        f'Keyword "STOP" texted to +14155550100 (message {sid(1)}).',
        f'Keyword "START" texted to 55555 (message {sid(3)}).',
    ]


def test_the_member_api_shows_an_sms_stop_as_the_sms_preference(api_client, api_key):
    member = MemberFactory(phone=SENDER)
    MemberSessionFactory(correlation_id="corr-sms", member=member, api_key=api_key)
    preferences = "/client/users/corr-sms/profile/marketing-preferences"
    api_client.put(
        "/client/users/corr-sms/profile/marketing-subscription",
        {"sms": {"preference": "OPT_IN"}},
        format="json",
    )

    post(message("STOP"))

    body = api_client.get(preferences).json()
    event = ConsentEvent.objects.get(door="SMS")
    assert body["SMS"] == {
        "32123": {
            "status": "OPTED_OUT",
            "lastStatusUpdateDt": event.recorded_at.isoformat(timespec="milliseconds").replace(
                "+00:00", "Z"
            ),
            "lastStatusUpdateSource": "ESP",
        }
    }

    post(message("START", n=2))

    assert api_client.get(preferences).json()["SMS"]["32123"]["status"] == "OPTED_IN"
