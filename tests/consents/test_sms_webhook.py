"""POST /sms/inbound: signatures, retries and bad input. A refused request writes nothing."""

import json
import logging
from urllib.parse import urlencode

import pytest
from django.test import Client

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.sms_requests import (
    AUTH_TOKEN,
    BASE_URL,
    FORM,
    PATH,
    SENDER,
    message,
    post,
    signature,
)

pytestmark = pytest.mark.django_db

NOT_SIGNED = "The request is not signed by the messaging provider."


@pytest.fixture(autouse=True)
def sms_settings(settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = BASE_URL


def answer(response) -> tuple[int, str]:
    return response.status_code, response.content.decode()


def assert_nothing_written() -> None:
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


# --- retries ---------------------------------------------------------------------------------


def test_a_retried_webhook_is_a_no_op_answered_as_the_first():
    first = post(message("STOP"))
    consent_before = MarketingConsent.objects.get()

    retry = post(message("STOP"))

    assert answer(retry) == answer(first)
    assert "You are unsubscribed" in retry.content.decode()
    assert ConsentEvent.objects.count() == 1
    consent = MarketingConsent.objects.get()
    assert (consent.revision, consent.revoke_date, consent.updated_date) == (
        consent_before.revision,
        consent_before.revoke_date,
        consent_before.updated_date,
    )


def test_a_stop_replayed_after_a_newer_start_does_not_undo_it():
    stop = post(message("STOP", n=1))
    post(message("START", n=2))

    replay = post(message("STOP", n=1))

    assert answer(replay) == answer(stop)
    assert MarketingConsent.objects.get().state == "CONFIRMED"
    assert list(ConsentEvent.objects.order_by("id").values_list("state", flat=True)) == [
        "REVOKED",
        "CONFIRMED",
    ]


def test_one_message_id_with_another_keyword_is_still_the_message_already_handled():
    first = post(message("STOP", n=1))

    forged = post(message("START", n=1))

    assert answer(forged) == answer(first)
    assert MarketingConsent.objects.get().state == "REVOKED"
    assert ConsentEvent.objects.count() == 1


# --- signatures ------------------------------------------------------------------------------


def test_an_unsigned_request_is_refused():
    client = Client()
    response = client.post(PATH, urlencode(message("STOP")), content_type=FORM)

    assert answer(response) == (403, NOT_SIGNED)
    assert response["Content-Type"] == "text/plain; charset=utf-8"
    assert_nothing_written()


@pytest.mark.parametrize(
    "bad_signature",
    [
        "",
        "not-a-signature",
        signature(message("STOP"), token="another-accounts-token"),
        # Signed for the address the request reached, not the public one the provider calls.
        signature(message("STOP"), url="http://testserver/sms/inbound"),
        signature(message("STOP", sender="+14155550199")),
        signature(message("START")),
    ],
    ids=["empty", "garbage", "other-token", "other-url", "other-sender", "other-body"],
)
def test_a_badly_signed_request_is_refused(bad_signature):
    response = post(message("STOP"), signed_with=bad_signature)

    assert answer(response) == (403, NOT_SIGNED)
    assert_nothing_written()


def test_an_added_parameter_breaks_the_signature():
    params = message("START")
    signed = signature(params)

    response = post({**params, "From": "+14155550199", "Extra": "1"}, signed_with=signed)

    assert answer(response) == (403, NOT_SIGNED)
    assert_nothing_written()


@pytest.mark.parametrize("token", ["", "secret"])
def test_without_an_auth_token_everything_is_refused(settings, token):
    settings.TWILIO_AUTH_TOKEN = ""

    response = post(message("STOP"), signed_with=signature(message("STOP"), token=token))

    assert answer(response) == (403, "The SMS door is not configured.")
    assert_nothing_written()


def test_the_signed_url_includes_a_query_string_the_provider_was_given():
    params = message("STOP")

    response = post(params, path=f"{PATH}?programme=loyalty")

    assert response.status_code == 200
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_the_webhook_needs_neither_csrf_token_nor_api_key():
    client = Client(enforce_csrf_checks=True)

    response = post(message("STOP"), client=client)

    assert response.status_code == 200
    assert ConsentEvent.objects.get().door == "SMS"


# --- bad input -------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("changes", "reason"),
    [
        ({"From": None}, "From is required."),
        ({"From": "  "}, "From is required."),
        ({"To": None}, "To is required."),
        ({"MessageSid": None}, "MessageSid is required."),
        ({"MessageSid": "SM/../1"}, "MessageSid is not a message id."),
        ({"MessageSid": "S" * 65}, "MessageSid is not a message id."),
        ({"From": "not a number"}, "From is not a valid phone number."),
        ({"From": "+1415555"}, "From is not a valid phone number."),
        ({"From": "+1415555\x000188"}, "From is not a valid phone number."),
    ],
)
def test_bad_input_is_a_400_that_writes_nothing(changes, reason):
    params = message("STOP")
    for name, value in changes.items():
        if value is None:
            del params[name]
        else:
            params[name] = value

    response = post(params)

    assert answer(response) == (400, reason)
    assert_nothing_written()


def test_a_receiving_number_with_a_nul_character_is_not_ours():
    response = post(message("STOP", to="321\x0023"))

    assert response.status_code == 200
    assert_nothing_written()


def test_a_body_that_is_not_a_form_is_refused():
    client = Client()
    response = client.post(
        PATH,
        {"From": SENDER},
        content_type="application/json",
        HTTP_X_TWILIO_SIGNATURE=signature({}),
    )
    multipart = client.post(PATH, message("STOP"), HTTP_X_TWILIO_SIGNATURE=signature({}))

    assert answer(response) == (415, f"The request body must be {FORM}.")
    assert answer(multipart) == (415, f"The request body must be {FORM}.")
    assert_nothing_written()


def test_a_body_over_the_webhook_limit_is_refused_before_it_is_read():
    params = message("STOP" + " " * 70_000)

    response = post(params)

    assert answer(response) == (413, "The request body is larger than 65536 bytes.")
    assert_nothing_written()


def test_a_body_with_too_many_fields_is_refused():
    params = {**message("STOP"), **{f"f{n}": "" for n in range(1000)}}

    response = post(params)

    assert answer(response) == (400, "The request has too many fields.")
    assert_nothing_written()


@pytest.mark.parametrize("method", ["get", "put", "delete"])
def test_only_post_is_allowed(method):
    response = getattr(Client(), method)(PATH)

    assert response.status_code == 405
    assert response["Allow"] == "POST"


def test_the_request_log_names_the_route_and_not_the_numbers(caplog):
    caplog.set_level(logging.INFO, logger="consentsite.request")

    post(message("STOP"))

    [line] = [r.getMessage() for r in caplog.records if r.name == "consentsite.request"]
    assert json.loads(line)["route"] == "sms/inbound"
    assert json.loads(line)["status"] == 200
    assert SENDER not in line
    assert "32123" not in line
