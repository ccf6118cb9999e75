"""Idempotency keys on the consent API's real endpoints."""

import pytest

from consents.models import ConsentEvent
from tests.consents.conftest import API, confirmed

pytestmark = pytest.mark.django_db


def test_a_retried_upsert_is_replayed_without_a_second_event(api_client):
    url = f"{API}/marketing-consent/upsert"

    first = api_client.post(
        url, confirmed("idem@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="u1"
    )
    retry = api_client.post(
        url, confirmed("idem@example.com"), format="json", HTTP_IDEMPOTENCY_KEY="u1"
    )

    assert retry.json() == first.json()
    assert retry["Idempotent-Replayed"] == "true"
    assert ConsentEvent.objects.count() == 1


def test_a_retried_delete_is_replayed(api_client, upsert):
    consent_id = upsert(confirmed("del@example.com")).json()["marketingConsent"]["id"]
    url = f"{API}/marketing-consent/{consent_id}"

    first = api_client.delete(url, HTTP_IDEMPOTENCY_KEY="d1")
    retry = api_client.delete(url, HTTP_IDEMPOTENCY_KEY="d1")

    assert (first.status_code, retry.status_code, retry.json()) == (200, 200, {})
    assert ConsentEvent.objects.filter(kind="DELETED").count() == 1
