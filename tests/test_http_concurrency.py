"""Concurrency proofs through HTTP on PostgreSQL: a live server, threads as clients.

Whatever the interleaving: one consent per address, no lost or repeated revision, one event per
write, and one idempotency key never makes two writes.
"""

import json
import threading
import urllib.error
import urllib.request
from collections import Counter

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.factories import ClientApiKeyFactory, MemberFactory, MemberSessionFactory

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CLIENTS = 16


def send(url: str, method: str, body: dict, headers: dict) -> int:
    request = urllib.request.Request(
        url,
        data=json.dumps(body).encode(),
        method=method,
        headers={"Content-Type": "application/json", **headers},
    )
    try:
        with urllib.request.urlopen(request, timeout=30) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def in_parallel(calls: list) -> list[int]:
    """Run the calls at once (a barrier releases them together); their statuses in order."""
    barrier = threading.Barrier(len(calls))
    statuses: list[int | None] = [None] * len(calls)

    def run(index: int) -> None:
        barrier.wait()
        statuses[index] = calls[index]()

    threads = [threading.Thread(target=run, args=(i,)) for i in range(len(calls))]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    return statuses


def assert_revisions_are_a_gapless_history(address: str) -> None:
    consent = MarketingConsent.objects.get(address=address)
    events = ConsentEvent.objects.filter(address=address)
    changing = [e.revision for e in events if e.kind in ("CREATED", "UPDATED")]
    assert sorted(changing) == list(range(1, consent.revision + 1))


def test_parallel_member_puts_lose_no_revision(live_server):
    key = ClientApiKeyFactory()
    member = MemberFactory(email="racer@example.com", phone="")
    MemberSessionFactory(correlation_id="corr-race", member=member, api_key=key)
    url = f"{live_server.url}/client/users/corr-race/profile/marketing-subscription"
    headers = {"Authorization": f"Api-Key {key.clear_key}"}
    preferences = ["OPT_IN" if n % 2 else "OPT_OUT" for n in range(CLIENTS)]

    statuses = in_parallel(
        [
            lambda p=preference: send(url, "PUT", {"email": {"preference": p}}, headers)
            for preference in preferences
        ]
    )

    assert statuses == [200] * CLIENTS
    assert MarketingConsent.objects.filter(address="racer@example.com").count() == 1
    assert ConsentEvent.objects.filter(address="racer@example.com").count() == CLIENTS
    assert_revisions_are_a_gapless_history("racer@example.com")


def test_one_idempotency_key_sent_in_parallel_writes_once(live_server):
    key = ClientApiKeyFactory()
    member = MemberFactory(email="retry@example.com", phone="")
    MemberSessionFactory(correlation_id="corr-retry", member=member, api_key=key)
    url = f"{live_server.url}/client/users/corr-retry/profile/marketing-subscription"
    headers = {"Authorization": f"Api-Key {key.clear_key}", "Idempotency-Key": "same-key"}

    statuses = in_parallel(
        [
            lambda: send(url, "PUT", {"email": {"preference": "OPT_IN"}}, headers)
            for _ in range(CLIENTS)
        ]
    )

    assert set(Counter(statuses)) <= {200, 409}
    assert 200 in statuses
    assert ConsentEvent.objects.filter(address="retry@example.com").count() == 1


def consent_upsert_body(address: str, hour: int) -> dict:
    date = f"2024-01-01T{hour:02d}:00:00Z"
    if hour % 2:
        return {
            "details": {"type": "EMAIL", "email": address},
            "state": "REVOKED",
            "lastRevokeActivity": {"source": "FORM", "updatedDate": date},
        }
    return {
        "details": {"type": "EMAIL", "email": address},
        "state": "CONFIRMED",
        "lastConfirmationActivity": {"source": "FORM", "updatedDate": date},
    }


def test_parallel_upserts_on_one_address_keep_the_newest_activity(live_server):
    key = ClientApiKeyFactory()
    url = f"{live_server.url}/marketing-consent/v1/marketing-consent/upsert"
    headers = {"Authorization": key.clear_key}
    hours = [(n * 5) % CLIENTS for n in range(CLIENTS)]  # the newest does not arrive last

    statuses = in_parallel(
        [
            lambda h=hour: send(url, "POST", consent_upsert_body("one@example.com", h), headers)
            for hour in hours
        ]
    )

    assert statuses == [200] * CLIENTS
    consent = MarketingConsent.objects.get(address="one@example.com")
    assert consent.state == "REVOKED"  # hour 15, the newest, is an opt-out
    assert consent.newest_activity_date.hour == CLIENTS - 1
    assert ConsentEvent.objects.filter(address="one@example.com").count() == CLIENTS
    assert_revisions_are_a_gapless_history("one@example.com")


def test_parallel_bulk_upserts_sharing_addresses(live_server):
    key = ClientApiKeyFactory()
    url = f"{live_server.url}/marketing-consent/v1/bulk/marketing-consent/upsert"
    headers = {"Authorization": f"Api-Key {key.clear_key}"}
    shared = [f"shared{n}@example.com" for n in range(10)]

    def body(client: int) -> dict:
        return {"info": [consent_upsert_body(address, client) for address in shared]}

    statuses = in_parallel(
        [lambda c=client: send(url, "POST", body(c), headers) for client in range(8)]
    )

    assert statuses == [200] * 8
    assert MarketingConsent.objects.filter(address__in=shared).count() == len(shared)
    for address in shared:
        consent = MarketingConsent.objects.get(address=address)
        assert consent.state == "REVOKED"  # client 7, the newest, opts out
        assert ConsentEvent.objects.filter(address=address).count() == 8
        assert_revisions_are_a_gapless_history(address)
