"""API key limits: scopes (read / manage), per-API keys, and throttling per key."""

import pytest
from django.urls import path
from rest_framework import viewsets
from rest_framework.response import Response

from consents.models import ClientApiKey, RequestCount
from consentsite.auth import ApiKeyRateThrottle
from tests.factories import ClientApiKeyFactory


class ConsentThings(viewsets.ViewSet):
    api_error_style = "consent"
    read_actions = {"query"}

    def retrieve(self, request, pk=None):
        return Response({"read": pk})

    def query(self, request):
        return Response({"queried": True})

    def create(self, request):
        return Response({"written": True})


class MemberThings(ConsentThings):
    api_error_style = "member"


urlpatterns = [
    path("marketing-consent/v1/things/<str:pk>", ConsentThings.as_view({"get": "retrieve"})),
    path("marketing-consent/v1/things-query", ConsentThings.as_view({"post": "query"})),
    path("marketing-consent/v1/things", ConsentThings.as_view({"post": "create"})),
    path("client/things", MemberThings.as_view({"post": "create"})),
]

pytestmark = [pytest.mark.django_db, pytest.mark.urls(__name__)]


def client_for(client, **key_fields):
    key = ClientApiKeyFactory(**key_fields)
    client.defaults["HTTP_AUTHORIZATION"] = f"Api-Key {key.clear_key}"
    return client


def test_read_key_reads_and_queries(client):
    client = client_for(client, scope="read")

    assert client.get("/marketing-consent/v1/things/7").json() == {"read": "7"}
    assert client.post("/marketing-consent/v1/things-query").json() == {"queried": True}


def test_read_key_writing_is_forbidden_in_the_consent_shape(client):
    client = client_for(client, scope="read")

    response = client.post("/marketing-consent/v1/things")

    assert response.status_code == 403
    assert response.json() == {
        "message": "This API key may only read.",
        "details": {
            "applicationError": {
                "code": "PERMISSION_DENIED",
                "description": "This API key may only read.",
            }
        },
    }


def test_read_key_writing_is_forbidden_in_the_member_shape(client):
    client = client_for(client, scope="read")

    response = client.post("/client/things")

    assert response.status_code == 403
    assert response.json() == {
        "statusCode": 403,
        "errorCode": "FORBIDDEN",
        "errorMessage": "This API key may only read.",
    }


def test_key_limited_to_one_api_cannot_use_the_other(client):
    client = client_for(client, api="member")

    assert client.post("/client/things").json() == {"written": True}
    response = client.post("/marketing-consent/v1/things")
    assert response.status_code == 403
    assert response.json()["message"] == "This API key may not use this API."


THROTTLED = "Request was throttled. Expected available in 55 seconds."


@pytest.mark.parametrize(
    ("path", "body"),
    [
        (
            "/marketing-consent/v1/things",
            {
                "message": THROTTLED,
                "details": {
                    "applicationError": {"code": "RESOURCE_EXHAUSTED", "description": THROTTLED}
                },
            },
        ),
        (
            "/client/things",
            {"statusCode": 429, "errorCode": "TOO_MANY_REQUESTS", "errorMessage": THROTTLED},
        ),
    ],
    ids=["consent API", "member API"],
)
def test_requests_over_the_rate_get_429_in_the_apis_shape_with_retry_after(
    client, monkeypatch, path, body
):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 125.0)  # window [120, 180)
    client = client_for(client)

    statuses = [client.post(path).status_code for _ in range(2)]
    response = client.post(path)

    assert statuses == [200, 200]
    assert response.status_code == 429
    assert response["Retry-After"] == "55"
    assert response.json() == body


def test_the_rate_is_counted_per_key(client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "1/min"})
    first, second = ClientApiKeyFactory(), ClientApiKeyFactory()

    answers = [
        client.post("/client/things", HTTP_AUTHORIZATION=f"Api-Key {key.clear_key}").status_code
        for key in (first, second, first)
    ]

    assert answers == [200, 200, 429]


def test_the_count_starts_again_in_the_next_window(client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "2/min"})
    clock = iter([120.0, 130.0, 150.5, 180.0, 181.0])
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: next(clock))
    client = client_for(client)

    first, second, third = (client.post("/client/things") for _ in range(3))
    fourth, fifth = (client.post("/client/things") for _ in range(2))

    assert [r.status_code for r in (first, second, third)] == [200, 200, 429]
    assert third["Retry-After"] == "30"  # the window [120, 180) ends in 29.5 s, rounded up
    assert [r.status_code for r in (fourth, fifth)] == [200, 200]
    assert RequestCount.objects.get().count == 2


def test_a_process_reserves_a_hundredth_of_the_rate_at_a_time(client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "300/min"})
    client = client_for(client)

    statuses = {client.post("/client/things").status_code for _ in range(7)}

    assert statuses == {200}
    assert RequestCount.objects.get().count == 9  # three blocks of 3


def test_blocks_never_grant_more_than_the_rate(client, monkeypatch):
    monkeypatch.setattr(ApiKeyRateThrottle, "THROTTLE_RATES", {"api_key": "250/min"})
    monkeypatch.setattr(ApiKeyRateThrottle, "timer", lambda self: 125.0)
    client = client_for(client)
    key = ClientApiKey.objects.get()
    # Other processes have asked for 249 of the window's 250 requests.
    RequestCount.objects.create(key=key.prefix, period=120, count=249)

    statuses = [client.post("/client/things").status_code for _ in range(2)]

    assert statuses == [200, 429]
