"""POST /marketing-consent/v1/bulk/marketing-consent/upsert."""

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.conftest import API, confirmed, revoked

pytestmark = pytest.mark.django_db

BULK = f"{API}/bulk/marketing-consent/upsert"


def bulk(api_client, info, **extra):
    return api_client.post(BULK, {"info": info, **extra}, format="json")


def test_good_and_bad_items_each_get_their_own_result_in_request_order(api_client):
    response = bulk(
        api_client,
        [
            confirmed("one@example.com"),
            {"details": {"type": "EMAIL", "email": "bad"}, "state": "NEVER_CONFIRMED"},
            {"marketingConsent": revoked("two@example.com")},
            {"details": {"type": "EMAIL", "email": "three@example.com"}, "state": "PENDING"},
        ],
    )

    assert response.status_code == 200
    body = response.json()
    assert [r["originalIndex"] for r in body["results"]] == [0, 1, 2, 3]
    assert body["results"][0]["marketingConsent"]["state"] == "CONFIRMED"
    assert body["results"][0]["link"]["type"] == "REVOKE_CONFIRMATION"
    assert body["results"][2]["marketingConsent"]["state"] == "REVOKED"
    # `error` is a string, as the platform's clients type it: each bad field's path and message.
    assert body["results"][1] == {
        "originalIndex": 1,
        "error": "details.email: 'bad' is not a valid email address.",
    }
    assert body["results"][3] == {
        "originalIndex": 3,
        "error": "lastConfirmationActivity: Required when the state is PENDING.",
    }
    assert body["metadata"] == {"totalSuccess": 2, "totalFailure": 2}
    assert sorted(MarketingConsent.objects.values_list("address", flat=True)) == [
        "one@example.com",
        "two@example.com",
    ]
    assert ConsentEvent.objects.count() == 2


def test_an_item_refused_by_the_ledger_fails_alone(api_client):
    future = {
        **confirmed("f@example.com"),
        "lastConfirmationActivity": {"updatedDate": "2999-01-01T00:00:00Z"},
    }

    response = bulk(api_client, [future, confirmed("ok@example.com")])

    results = response.json()["results"]
    assert results[0]["error"].startswith("lastConfirmationActivity.updatedDate: ")
    assert results[1]["marketingConsent"]["details"]["email"] == "ok@example.com"


def test_without_return_entity_only_the_index_comes_back(api_client):
    response = bulk(api_client, [confirmed("q@example.com")], returnEntity=False)

    assert response.json()["results"] == [{"originalIndex": 0}]


def test_the_same_address_twice_is_applied_in_order(api_client):
    response = bulk(
        api_client,
        [confirmed("twice@example.com"), revoked("twice@example.com", "2024-02-01T00:00:00Z")],
    )

    states = [r["marketingConsent"]["state"] for r in response.json()["results"]]
    assert states == ["CONFIRMED", "REVOKED"]
    assert MarketingConsent.objects.get().revision == 2


def test_more_than_500_items_is_400_and_writes_nothing(api_client):
    response = bulk(api_client, [confirmed(f"n{n}@example.com") for n in range(501)])

    assert response.status_code == 400
    [violation] = response.json()["details"]["validationError"]["fieldViolations"]
    assert violation["field"] == "info"
    assert not MarketingConsent.objects.exists()


def test_an_empty_list_is_400(api_client):
    assert bulk(api_client, []).status_code == 400


def test_500_items_take_a_bounded_number_of_queries(api_client, django_assert_max_num_queries):
    info = [confirmed(f"n{n}@example.com") for n in range(500)]

    # Key, throttle block, one locked read, inserts, check, events: never per item.
    with django_assert_max_num_queries(40):
        response = bulk(api_client, info)

    assert response.json()["metadata"] == {"totalSuccess": 500, "totalFailure": 0}
    assert MarketingConsent.objects.count() == 500
    assert ConsentEvent.objects.count() == 500
