"""On PostgreSQL, deliveries of one message racing each other write it once."""

import threading
import urllib.request
from urllib.parse import urlencode

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.sms_requests import AUTH_TOKEN, FORM, PATH, SENDER, message, signature

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

DELIVERIES = 8


def deliver(url: str, params: dict, signed: str) -> tuple[int, bytes]:
    request = urllib.request.Request(
        url,
        data=urlencode(params).encode(),
        method="POST",
        headers={"Content-Type": FORM, "X-Twilio-Signature": signed},
    )
    with urllib.request.urlopen(request, timeout=30) as response:
        return response.status, response.read()


def test_parallel_deliveries_of_one_message_make_one_event(live_server, settings):
    settings.TWILIO_AUTH_TOKEN = AUTH_TOKEN
    settings.PUBLIC_BASE_URL = live_server.url
    url = live_server.url + PATH
    params = message("STOP")
    signed = signature(params, url=url)
    barrier = threading.Barrier(DELIVERIES)
    answers: list[tuple[int, bytes] | BaseException] = [None] * DELIVERIES

    def run(index: int) -> None:
        barrier.wait()
        try:
            answers[index] = deliver(url, params, signed)
        except BaseException as exc:  # compared below
            answers[index] = exc

    threads = [threading.Thread(target=run, args=(i,)) for i in range(DELIVERIES)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(set(answers)) == 1
    [(status, body)] = set(answers)
    assert status == 200
    assert b"You are unsubscribed" in body
    assert ConsentEvent.objects.filter(door="SMS").count() == 1
    consent = MarketingConsent.objects.get(type="PHONE", address=SENDER)
    assert (consent.state, consent.revision) == ("REVOKED", 1)
