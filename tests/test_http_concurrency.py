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
    MemberSessionFactory(correlation_id="corr-race", member=member)
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
    MemberSessionFactory(correlation_id="corr-retry", member=member)
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
