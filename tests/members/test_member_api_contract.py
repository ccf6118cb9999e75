"""What every response of the member API shares: headers, the error envelope for every status,
and the OpenAPI description (docs/member-api.md)."""

import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from django.core.cache import cache
from django.utils import timezone
from hypothesis import HealthCheck, given
from hypothesis import settings as hypothesis_settings
from hypothesis import strategies as st
from rest_framework.test import APIClient
from rest_framework.throttling import SimpleRateThrottle

from members.api.views import MarketingPreferencesViewSet
from members.models import MemberSession

SUBSCRIPTION = "/client/users/corr-ada/profile/marketing-subscription"
PREFERENCES = "/client/users/corr-ada/profile/marketing-preferences"
SECURITY_HEADERS = {
    "Cache-Control": "no-cache, no-store, must-revalidate",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "SAMEORIGIN",
    "Content-Security-Policy": "default-src 'none'; frame-ancestors 'self'",
}
MSG_ID = re.compile(r"^mck-[0-9a-f]{8}-[0-9a-f]{4}-4[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")
ENVELOPE_KEYS = {"statusCode", "errorCode", "errorMessage"}
NO_CORRELATION_ID = "CORRELATION_ID_NOT_PROVIDED_IN_REQUEST"

pytestmark = pytest.mark.usefixtures("session")


def envelope(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "errorCode": code, "errorMessage": message}


def assert_member_headers(response: Any, correlation_id: str) -> None:
    assert response["MCK-APPID"] == "ES-CB-V1"
    assert MSG_ID.match(response["MCK-MSGID"])
    stamp = datetime.fromisoformat(response["MCK-MSGTIMESTAMP"])
    assert stamp.tzinfo == UTC
    assert abs(timezone.now() - stamp) < timedelta(seconds=5)
    assert response["MCK_CORRELATIONID"] == correlation_id
    for name, value in SECURITY_HEADERS.items():
        assert response[name] == value


# --- headers -----------------------------------------------------------------------------------


def test_a_success_carries_the_member_headers(api_client: APIClient, member: Any) -> None:
    responses = [
        api_client.get(PREFERENCES),
        api_client.put(SUBSCRIPTION, {"email": {"preference": "OPT_IN"}}, format="json"),
    ]

    for response in responses:
        assert response.status_code == 200
        assert_member_headers(response, "corr-ada")
    assert responses[0]["MCK-MSGID"] != responses[1]["MCK-MSGID"]


def test_a_started_session_carries_the_member_headers(api_client: APIClient, member: Any) -> None:
    response = api_client.post(
        f"/client/users/{member.account_id}/sessions",
        {"correlationId": "corr-new", "channel": "APP"},
        format="json",
    )

    assert response.status_code == 200
    assert_member_headers(response, NO_CORRELATION_ID)


@pytest.mark.parametrize(
    ("method", "path", "client", "status"),
    [
        ("put", SUBSCRIPTION, "api_client", 400),
        ("get", PREFERENCES, "anonymous_client", 401),
        ("get", "/client/users/corr-ada/profile", "api_client", 404),
        ("delete", SUBSCRIPTION, "api_client", 405),
    ],
)
def test_an_error_carries_the_member_headers(
    request: pytest.FixtureRequest, method: str, path: str, client: str, status: int
) -> None:
    response = getattr(request.getfixturevalue(client), method)(path)

    assert response.status_code == status
    assert set(response.json()) == ENVELOPE_KEYS
    # The catch-all route has no correlation id in its path.
    assert_member_headers(response, NO_CORRELATION_ID if status == 404 else "corr-ada")


def test_the_callers_correlation_header_is_echoed(api_client: APIClient) -> None:
    # `MCK-CORRELATIONID` and `MCK_CORRELATIONID` both arrive as this WSGI variable.
    response = api_client.get(PREFERENCES, HTTP_MCK_CORRELATIONID="trace-123")

    assert response["MCK_CORRELATIONID"] == "trace-123"


def test_an_unusable_correlation_header_is_not_echoed(api_client: APIClient) -> None:
    response = api_client.get(PREFERENCES, HTTP_MCK_CORRELATIONID="two words")

    assert response["MCK_CORRELATIONID"] == "corr-ada"


def test_the_app_id_comes_from_the_setting(api_client: APIClient, settings) -> None:
    settings.APP_ID = "ES-TEST-V2"

    response = api_client.get(PREFERENCES)

    assert response["MCK-APPID"] == "ES-TEST-V2"


def test_hsts_is_sent_over_https(api_client: APIClient, settings) -> None:
    settings.SECURE_HSTS_SECONDS = 31536000
    settings.SECURE_HSTS_INCLUDE_SUBDOMAINS = True

    response = api_client.get(PREFERENCES, secure=True)

    assert response["Strict-Transport-Security"] == "max-age=31536000; includeSubDomains"
    assert "Strict-Transport-Security" not in api_client.get(PREFERENCES)


# --- the envelope for every status -------------------------------------------------------------


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("get", "/client/users/corr-ada/profile"),
        ("get", "/client/users/corr-ada/profile/marketing-preferences/"),
        ("put", "/client/users/corr-ada/profile/marketing-subscription/"),
        ("post", "/client/users//sessions"),
        ("delete", "/client/anything/at/all"),
        ("options", "/client"),
        ("get", "/client/"),
    ],
)
def test_an_unknown_url_under_client_is_a_404_in_the_envelope(
    api_client: APIClient, method: str, path: str
) -> None:
    response = getattr(api_client, method)(path)

    assert response.status_code == 404
    assert response.json() == envelope(404, "NOT_FOUND", "No such endpoint.")


@pytest.mark.parametrize(
    ("method", "path", "allow"),
    [
        ("get", SUBSCRIPTION, "PUT"),
        ("delete", SUBSCRIPTION, "PUT"),
        ("patch", SUBSCRIPTION, "PUT"),
        ("options", SUBSCRIPTION, "PUT"),
        ("post", PREFERENCES, "GET, HEAD"),
        ("put", PREFERENCES, "GET, HEAD"),
        ("get", "/client/users/LOY-ADA/sessions", "POST"),
    ],
)
def test_a_wrong_method_is_a_405_in_the_envelope(
    api_client: APIClient, method: str, path: str, allow: str
) -> None:
    response = getattr(api_client, method)(path)

    assert response.status_code == 405
    assert response.json() == envelope(
        405, "METHOD_NOT_ALLOWED", f'Method "{method.upper()}" not allowed.'
    )
    assert response["Allow"] == allow


def test_the_answer_is_json_whatever_the_client_accepts(api_client: APIClient) -> None:
    response = api_client.get(PREFERENCES, HTTP_ACCEPT="text/html")

    assert response.status_code == 200
    assert response["Content-Type"] == "application/json"


class OneAMinute(SimpleRateThrottle):
    rate = "1/min"

    def get_cache_key(self, request: Any, view: Any) -> str:
        return "member-api-test-throttle"


def test_a_throttled_request_is_a_429_in_the_envelope(
    api_client: APIClient, monkeypatch: pytest.MonkeyPatch
) -> None:
    cache.clear()
    monkeypatch.setattr(MarketingPreferencesViewSet, "throttle_classes", [OneAMinute])
    assert api_client.get(PREFERENCES).status_code == 200

    response = api_client.get(PREFERENCES)

    assert response.status_code == 429
    assert response.json() == envelope(
        429, "TOO_MANY_REQUESTS", "Request was throttled. Expected available in 60 seconds."
    )
    assert response["Retry-After"] == "60"
    assert_member_headers(response, "corr-ada")


# --- no input produces a 500 -------------------------------------------------------------------

JSON_VALUES = st.recursive(
    st.none()
    | st.booleans()
    | st.integers()
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(),
    lambda children: (
        st.lists(children, max_size=3) | st.dictionaries(st.text(max_size=8), children, max_size=3)
    ),
    max_leaves=8,
)
CHANNEL_VALUES = st.one_of(
    JSON_VALUES, st.fixed_dictionaries({"preference": st.sampled_from(["OPT_IN", "OPT_OUT"])})
)
BODIES = st.one_of(
    JSON_VALUES,
    st.dictionaries(st.sampled_from(["email", "sms", "push", ""]), CHANNEL_VALUES, max_size=3),
)


@given(body=BODIES)
@hypothesis_settings(
    max_examples=150, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_json_body_gets_the_success_or_an_envelope(api_client: APIClient, body: Any) -> None:
    response = api_client.put(SUBSCRIPTION, body, format="json")

    if response.status_code == 200:
        assert response.json() == {"message": "Marketing subscription status updated."}
    else:
        assert response.status_code == 400
        assert set(response.json()) == ENVELOPE_KEYS


@given(raw=st.binary(max_size=64), content_type=st.sampled_from(["application/json", "", "text/x"]))
@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_bytes_get_the_success_or_an_envelope(
    api_client: APIClient, raw: bytes, content_type: str
) -> None:
    response = api_client.generic("PUT", SUBSCRIPTION, raw, content_type)

    # A body of a wrong content type is refused (415) before it is read; an empty one is `{}`.
    wrong_type = content_type == "text/x" and raw.strip()
    assert response.status_code in ((415,) if wrong_type else (200, 400))
    assert response.status_code == 200 or set(response.json()) == ENVELOPE_KEYS


@given(correlation_id=st.text(min_size=1, max_size=200).filter(lambda text: "/" not in text))
@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_correlation_id_in_the_path_gets_an_answer(
    api_client: APIClient, correlation_id: str
) -> None:
    response = api_client.get(f"/client/users/{correlation_id}/profile/marketing-preferences")

    assert response.status_code in (200, 401, 404)
    assert response.status_code == 200 or set(response.json()) == ENVELOPE_KEYS


@given(
    identifier=st.text(min_size=1, max_size=100),
    identifier_type=st.sampled_from(
        ["ACCOUNT_ID", "LOYALTY_ID", "EXTERNAL_ID", "EMAIL", "PHONE_NUMBER"]
    ),
)
@hypothesis_settings(
    max_examples=100, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
def test_any_identifier_gets_an_answer(
    api_client: APIClient, identifier: str, identifier_type: str
) -> None:
    response = api_client.post(
        f"/client/users/{identifier}/sessions",
        {"correlationId": "corr-fuzz", "channel": "APP"},
        format="json",
        HTTP_X_IDENTIFIER_TYPE=identifier_type,
    )

    assert response.status_code in (200, 400, 404, 409)
    assert response.status_code == 200 or set(response.json()) == ENVELOPE_KEYS
    MemberSession.objects.filter(correlation_id="corr-fuzz").delete()


# --- OpenAPI -----------------------------------------------------------------------------------


def test_the_schema_describes_each_endpoint_with_its_bodies_and_errors(
    api_client: APIClient,
) -> None:
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()

    expected = {
        ("/client/users/{identifier}/sessions", "post"): (
            "SessionStartRequest",
            "Session",
            {"400", "401", "404", "405", "409", "413", "415", "429"},
        ),
        ("/client/users/{correlation_id}/profile/marketing-subscription", "put"): (
            "MarketingSubscriptionRequest",
            "Message",
            {"400", "401", "405", "413", "415", "429"},
        ),
        ("/client/users/{correlation_id}/profile/marketing-preferences", "get"): (
            None,
            "MarketingPreferences",
            {"400", "401", "405", "429"},
        ),
    }
    for (path, method), (request_body, success, errors) in expected.items():
        operation = schema["paths"][path][method]
        if request_body:
            assert operation["requestBody"]["content"]["application/json"]["schema"] == {
                "$ref": f"#/components/schemas/{request_body}"
            }
        else:
            assert "requestBody" not in operation
        responses = operation["responses"]
        assert responses["200"]["content"]["application/json"]["schema"] == {
            "$ref": f"#/components/schemas/{success}"
        }
        assert set(responses) - {"200"} == errors
        for status in errors:
            content = responses[status]["content"]["application/json"]
            assert content["schema"] == {"$ref": "#/components/schemas/MemberError"}
            examples = content["examples"].values()
            assert examples
            assert all(example["value"]["statusCode"] == int(status) for example in examples)
        assert "MCK-MSGID" in responses["200"]["headers"]
        assert operation["security"] == [{"ApiKeyAuth": []}]


def test_the_schema_lists_every_row_of_the_source_error_table(api_client: APIClient) -> None:
    schema = api_client.get("/api/schema/", HTTP_ACCEPT="application/vnd.oai.openapi+json").json()
    operation = schema["paths"]["/client/users/{correlation_id}/profile/marketing-subscription"]
    examples = operation["put"]["responses"]["400"]["content"]["application/json"]["examples"]

    messages = {example["value"]["errorMessage"] for example in examples.values()}

    assert {
        "Invalid preference option sent for email.",
        "Invalid communication channel present in the request: push.",
        "Preference for email is not sent in the request.",
        "Preference for sms is not sent in the request.",
        "Either Email or SMS Preference is required.",
        "Account does not have an email for email communication.",
        "Account does not have a phone number for sms communication.",
    } <= messages
