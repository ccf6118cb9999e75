"""CORS: browsers may call the member API from the allowed origins (default any); the consent API
and the admin stay same-origin."""

import pytest
from django.test import override_settings
from rest_framework.test import APIClient

from tests.members.conftest import Member
from tests.test_settings import run

pytestmark = pytest.mark.django_db

SUBSCRIPTION = "/client/users/corr-ada/profile/marketing-subscription"
PREFERENCES = "/client/users/corr-ada/profile/marketing-preferences"
EXPOSED = "MCK-APPID, MCK-MSGID, MCK-MSGTIMESTAMP, MCK_CORRELATIONID, X-Request-ID, Retry-After, "
EXPOSED += "Idempotent-Replayed"


def preflight(client: APIClient, path: str, method: str, headers: str, origin: str):
    return client.options(
        path,
        HTTP_ORIGIN=origin,
        HTTP_ACCESS_CONTROL_REQUEST_METHOD=method,
        HTTP_ACCESS_CONTROL_REQUEST_HEADERS=headers,
    )


def test_a_preflight_for_a_put_with_content_type_and_mck_headers_is_allowed() -> None:
    response = preflight(
        APIClient(),
        SUBSCRIPTION,
        "PUT",
        "authorization, content-type, mck-correlationid, mck_correlationid",
        "https://shop.example",
    )

    assert response.status_code == 200
    assert response.content == b""
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Allow-Methods"] == "GET, POST, PUT"
    allowed = set(response["Access-Control-Allow-Headers"].split(", "))
    assert {
        "authorization",
        "content-type",
        "mck-correlationid",
        "mck_correlationid",
        "x-identifier-type",
        "idempotency-key",
    } <= allowed
    assert response["Access-Control-Max-Age"] == "86400"


@pytest.mark.usefixtures("session")
def test_a_cross_origin_request_gets_its_answer_with_the_mck_headers_exposed(
    api_client: APIClient, member: Member
) -> None:
    response = api_client.put(
        SUBSCRIPTION,
        {"email": {"preference": "OPT_IN"}},
        format="json",
        HTTP_ORIGIN="https://shop.example",
    )

    assert response.status_code == 200
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Expose-Headers"] == EXPOSED
    assert "Access-Control-Allow-Credentials" not in response
    assert response["MCK-APPID"] == "ES-CB-V1"


def test_errors_carry_the_cors_headers_too() -> None:
    response = APIClient().get(PREFERENCES, HTTP_ORIGIN="https://shop.example")

    assert response.status_code == 401
    assert response["Access-Control-Allow-Origin"] == "*"
    assert response["Access-Control-Expose-Headers"] == EXPOSED


def test_an_options_request_that_is_no_preflight_is_still_a_405(api_client: APIClient) -> None:
    response = api_client.options(PREFERENCES)

    assert response.status_code == 405
    assert "Access-Control-Allow-Origin" not in response


@pytest.mark.parametrize(
    "path",
    [
        "/marketing-consent/v1/marketing-consent/upsert",
        "/marketing-consent/v1/marketing-consent/get-by",
        "/admin/login/",
        "/api/schema/",
    ],
)
def test_the_consent_api_and_the_admin_stay_same_origin(path: str) -> None:
    client = APIClient()

    answer = preflight(client, path, "POST", "content-type", "https://shop.example")
    plain = client.get(path, HTTP_ORIGIN="https://shop.example")

    assert "Access-Control-Allow-Origin" not in answer
    assert "Access-Control-Allow-Origin" not in plain
    assert "Access-Control-Allow-Methods" not in answer


@override_settings(CORS_ALLOW_ALL_ORIGINS=False, CORS_ALLOWED_ORIGINS=["https://shop.example"])
@pytest.mark.parametrize(
    ("origin", "allowed"), [("https://shop.example", True), ("https://evil.example", False)]
)
def test_with_listed_origins_only_those_are_allowed(origin: str, allowed: bool) -> None:
    response = preflight(APIClient(), SUBSCRIPTION, "PUT", "content-type", origin)

    assert response.get("Access-Control-Allow-Origin") == (origin if allowed else None)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, "True []"),
        ("*", "True []"),
        (
            "https://shop.example, https://app.example",
            "False ['https://shop.example', 'https://app.example']",
        ),
    ],
)
def test_the_allowed_origins_come_from_a_setting(value: str | None, expected: str) -> None:
    script = (
        "import django; django.setup(); from django.conf import settings; "
        "print(settings.CORS_ALLOW_ALL_ORIGINS, settings.CORS_ALLOWED_ORIGINS)"
    )
    env = {"MEMBER_API_CORS_ALLOWED_ORIGINS": value} if value else {}

    result = run(["-c", script], DJANGO_DEBUG="true", **env)

    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == expected
