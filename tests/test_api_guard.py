"""The guards in front of both APIs: body size limit and idempotency keys."""

import json
import threading
from datetime import timedelta

import pytest
from django.db import connection
from django.test import Client
from django.urls import path
from django.utils import timezone
from rest_framework.response import Response
from rest_framework.views import APIView

from consents.ledger import ChangeContext, ConfirmationActivity, ConsentChange, consent_upsert
from consents.models import ConsentEvent, IdempotencyRecord
from tests.factories import ClientApiKeyFactory


class UpsertView(APIView):
    """Writes one consent through the ledger, so that each run leaves an event."""

    def post(self, request, **kwargs):
        result = consent_upsert(
            type="EMAIL",
            address=request.data["email"],
            change=ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity()),
            context=ChangeContext(door="CONSENT_API", actor=request.auth.name),
        )
        return Response({"revision": str(result.consent.revision), "kind": result.kind})


class MemberUpsertView(UpsertView):
    api_error_style = "member"


class ClaimView(APIView):
    """Keeps the idempotency record as it is while the request runs."""

    seen: list[IdempotencyRecord]

    def post(self, request, **kwargs):
        ClaimView.seen = [*IdempotencyRecord.objects.all()]
        return Response({})


class OutlivingView(UpsertView):
    """A request that outlives its lease: while it runs, its retry takes the key over and
    answers first."""

    retries: list

    def post(self, request, **kwargs):
        if request.headers.get("X-Outlive-Lease"):
            IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))
            retry = Client(HTTP_AUTHORIZATION=request.headers["Authorization"])
            OutlivingView.retries = [
                post(retry, OUTLIVING_URL, request.data, HTTP_IDEMPOTENCY_KEY="k1")
            ]
        return super().post(request, **kwargs)


urlpatterns = [
    path("marketing-consent/v1/test-write", UpsertView.as_view()),
    path("marketing-consent/v1/claim", ClaimView.as_view()),
    path("marketing-consent/v1/outliving-write", OutlivingView.as_view()),
    path("client/users/<str:correlation_id>/test-write", MemberUpsertView.as_view()),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]
CONSENT_URL = "/marketing-consent/v1/test-write"
MEMBER_URL = "/client/users/abc/test-write"
CLAIM_URL = "/marketing-consent/v1/claim"
OUTLIVING_URL = "/marketing-consent/v1/outliving-write"


def post(client, url, body, **headers):
    return client.post(url, data=json.dumps(body), content_type="application/json", **headers)


def test_retry_with_same_key_and_body_replays_the_first_response_without_a_second_write(
    api_client,
):
    first = post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    retry = post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert first.status_code == retry.status_code == 200
    assert retry.json() == first.json() == {"revision": "1", "kind": "CREATED"}
    assert retry["Idempotent-Replayed"] == "true"
    assert "Idempotent-Replayed" not in first
    assert retry["X-Request-ID"] != first["X-Request-ID"]
    assert ConsentEvent.objects.count() == 1


def test_same_key_with_another_body_is_a_conflict_and_changes_nothing(api_client):
    post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    response = post(api_client, CONSENT_URL, {"email": "b@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    message = "This Idempotency-Key was already used with a different request."
    assert response.json() == {
        "message": message,
        "details": {"applicationError": {"code": "ALREADY_EXISTS", "description": message}},
    }
    assert ConsentEvent.objects.count() == 1


def test_member_api_conflict_uses_the_member_envelope(api_client):
    post(api_client, MEMBER_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    response = post(api_client, MEMBER_URL, {"email": "b@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json() == {
        "statusCode": 409,
        "errorCode": "CONFLICT",
        "errorMessage": "This Idempotency-Key was already used with a different request.",
    }
    assert response["MCK-APPID"] == "ES-CB-V1"
    assert response["MCK_CORRELATIONID"] == "abc"
    assert response["Cache-Control"] == "no-cache, no-store, must-revalidate"


def test_member_api_replay_gets_fresh_member_headers(api_client):
    first = post(api_client, MEMBER_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    retry = post(api_client, MEMBER_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert retry["Idempotent-Replayed"] == "true"
    assert retry.json() == first.json()
    assert retry["MCK-MSGID"] != first["MCK-MSGID"]
    assert retry["MCK_CORRELATIONID"] == "abc"


def test_key_still_running_is_a_conflict(api_client, api_key):
    IdempotencyRecord.objects.create(
        api_key_id=api_key.pk,
        key="k1",
        fingerprint="0" * 64,
        expires_at=timezone.now() + timedelta(hours=1),
    )

    response = post(api_client, MEMBER_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json()["errorMessage"] == (
        "This Idempotency-Key was already used with a different request."
    )


def as_if_still_running(lease_seconds: float) -> None:
    """Turn the kept response of the one request sent into the record of a request that has not
    answered yet (its worker died, or is still at work), holding its lease that much longer."""
    IdempotencyRecord.objects.update(
        status_code=None,
        body=b"",
        headers={},
        expires_at=timezone.now() + timedelta(seconds=lease_seconds),
    )


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            CONSENT_URL,
            {
                "message": "A request with this Idempotency-Key is still being processed.",
                "details": {
                    "applicationError": {
                        "code": "ABORTED",
                        "description": "A request with this Idempotency-Key is still being "
                        "processed.",
                    }
                },
            },
        ),
        (
            MEMBER_URL,
            {
                "statusCode": 409,
                "errorCode": "REQUEST_IN_PROGRESS",
                "errorMessage": "A request with this Idempotency-Key is still being processed.",
            },
        ),
    ],
)
def test_a_retry_while_the_first_request_runs_is_told_to_wait(api_client, url, expected):
    post(api_client, url, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    as_if_still_running(lease_seconds=29.5)

    response = post(api_client, url, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert response.status_code == 409
    assert response.json() == expected
    assert response["Retry-After"] == "30"
    assert ConsentEvent.objects.count() == 1


def test_a_running_request_holds_its_key_for_the_lease_only(api_client, settings):
    settings.IDEMPOTENCY_LEASE = 40
    before = timezone.now()
    post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    as_if_still_running(lease_seconds=-1)  # its worker died; the lease is over

    retry = post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert retry.status_code == 200
    assert retry.json() == {"revision": "1", "kind": "UNCHANGED"}  # the truth, told again
    assert "Idempotent-Replayed" not in retry
    record = IdempotencyRecord.objects.get()
    assert record.status_code == 200
    assert record.expires_at >= before + timedelta(seconds=settings.IDEMPOTENCY_TTL)


def test_a_claim_lasts_the_lease_while_the_request_runs(api_client, settings):
    settings.IDEMPOTENCY_LEASE = 40
    before = timezone.now()

    post(api_client, CLAIM_URL, {}, HTTP_IDEMPOTENCY_KEY="k1")

    [claim] = ClaimView.seen
    assert claim.status_code is None
    assert before + timedelta(seconds=40) <= claim.expires_at <= before + timedelta(seconds=41)


def test_a_request_that_outlived_its_lease_does_not_overwrite_the_retry_that_took_over(
    api_client,
):
    response = post(
        api_client,
        OUTLIVING_URL,
        {"email": "a@example.com"},
        HTTP_IDEMPOTENCY_KEY="k1",
        HTTP_X_OUTLIVE_LEASE="yes",
    )

    [retry] = OutlivingView.retries
    assert retry.json() == {"revision": "1", "kind": "CREATED"}
    assert response.json() == {"revision": "1", "kind": "UNCHANGED"}
    record = IdempotencyRecord.objects.get()
    assert json.loads(bytes(record.body)) == retry.json()


@pytest.mark.parametrize(
    ("first_headers", "retry_headers"),
    [
        ({"HTTP_X_IDENTIFIER_TYPE": "EMAIL"}, {"HTTP_X_IDENTIFIER_TYPE": "LOYALTY_ID"}),
        ({}, {"HTTP_X_IDENTIFIER_TYPE": "EMAIL"}),
        ({}, {"HTTP_CONTENT_ENCODING": "gzip"}),
    ],
)
def test_headers_that_change_the_meaning_are_part_of_the_request(
    api_client, first_headers, retry_headers
):
    post(
        api_client,
        MEMBER_URL,
        {"email": "a@example.com"},
        HTTP_IDEMPOTENCY_KEY="k1",
        **first_headers,
    )

    response = post(
        api_client,
        MEMBER_URL,
        {"email": "a@example.com"},
        HTTP_IDEMPOTENCY_KEY="k1",
        **retry_headers,
    )

    assert response.status_code == 409
    assert response.json()["errorMessage"] == (
        "This Idempotency-Key was already used with a different request."
    )
    assert ConsentEvent.objects.count() == 1


def test_the_same_body_on_another_path_is_another_request(api_client):
    post(api_client, MEMBER_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    response = post(
        api_client,
        "/client/users/xyz/test-write",
        {"email": "a@example.com"},
        HTTP_IDEMPOTENCY_KEY="k1",
    )

    assert response.status_code == 409
    assert response.json()["errorCode"] == "CONFLICT"


def test_keys_are_scoped_to_the_api_key(api_client, client):
    post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    other = ClientApiKeyFactory(name="other-client")

    response = post(
        client,
        CONSENT_URL,
        {"email": "a@example.com"},
        HTTP_IDEMPOTENCY_KEY="k1",
        HTTP_AUTHORIZATION=f"Api-Key {other.clear_key}",
    )

    assert response.status_code == 200
    assert response.json() == {"revision": "1", "kind": "UNCHANGED"}
    assert "Idempotent-Replayed" not in response
    assert ConsentEvent.objects.count() == 2


def test_expired_record_lets_the_key_run_again(api_client):
    post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    IdempotencyRecord.objects.update(expires_at=timezone.now() - timedelta(seconds=1))

    response = post(api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    assert "Idempotent-Replayed" not in response
    assert ConsentEvent.objects.count() == 2
    assert IdempotencyRecord.objects.count() == 1


def test_unauthenticated_write_is_not_remembered(client):
    response = post(
        client,
        CONSENT_URL,
        {"email": "a@example.com"},
        HTTP_IDEMPOTENCY_KEY="k1",
        HTTP_AUTHORIZATION="Api-Key nope.nope",
    )

    assert response.status_code == 401
    assert not IdempotencyRecord.objects.exists()


def test_overlong_idempotency_key_is_rejected(api_client):
    response = post(
        api_client, CONSENT_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k" * 256
    )

    assert response.status_code == 400
    assert response.json()["details"]["applicationError"]["code"] == "INVALID_ARGUMENT"
    assert not ConsentEvent.objects.exists()


@pytest.mark.parametrize(
    ("url", "expected"),
    [
        (
            CONSENT_URL,
            {
                "message": "The request body is larger than 64 bytes.",
                "details": {
                    "applicationError": {
                        "code": "PAYLOAD_TOO_LARGE",
                        "description": "The request body is larger than 64 bytes.",
                    }
                },
            },
        ),
        (
            MEMBER_URL,
            {
                "statusCode": 413,
                "errorCode": "PAYLOAD_TOO_LARGE",
                "errorMessage": "The request body is larger than 64 bytes.",
            },
        ),
    ],
)
def test_body_over_the_limit_is_rejected_before_parsing(api_client, settings, url, expected):
    settings.MAX_BODY_BYTES = 64

    response = post(api_client, url, {"email": "a" * 100 + "@example.com"})

    assert response.status_code == 413
    assert response.json() == expected
    assert not ConsentEvent.objects.exists()


def test_body_at_the_limit_is_accepted(api_client, settings):
    body = json.dumps({"email": "a@example.com"})
    settings.MAX_BODY_BYTES = len(body)

    response = api_client.post(CONSENT_URL, data=body, content_type="application/json")

    assert response.status_code == 200


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_same_key_sent_in_parallel_runs_once(api_key):
    threads_count = 12
    barrier = threading.Barrier(threads_count)
    statuses: list[int] = []

    def send() -> None:
        try:
            client = Client(HTTP_AUTHORIZATION=f"Api-Key {api_key.clear_key}")
            barrier.wait()
            response = post(
                client, CONSENT_URL, {"email": "p@example.com"}, HTTP_IDEMPOTENCY_KEY="k"
            )
            statuses.append(response.status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=send) for _ in range(threads_count)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert len(statuses) == threads_count
    assert set(statuses) <= {200, 409}
    assert ConsentEvent.objects.count() == 1


def test_request_log_names_route_and_key_of_a_guard_answer_without_the_address(api_client, caplog):
    post(api_client, MEMBER_URL, {"email": "a@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")
    caplog.clear()

    post(api_client, MEMBER_URL, {"email": "b@example.com"}, HTTP_IDEMPOTENCY_KEY="k1")

    [line] = [json.loads(r.message) for r in caplog.records if r.name == "consentsite.request"]
    assert line["route"] == "client/users/<str:correlation_id>/test-write"
    assert (line["method"], line["status"], line["key"]) == ("POST", 409, "crm-sync")
    assert "example.com" not in caplog.text
