"""Bad input of every kind the APIs have been sent: each a 4xx in the door's own shape, with
nothing written, on SQLite and PostgreSQL alike."""

import json
from dataclasses import dataclass, field
from typing import Any

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.conftest import API, application_error, confirmed, violation
from tests.factories import MarketingConsentFactory

pytestmark = pytest.mark.django_db

CONSENT_ID = "8a3c7b4e-1f2d-4e5a-9b6c-7d8e9f0a1b2c"
UNSTORABLE = "Text may not contain NUL characters or lone surrogates."
TOO_DEEP = "The JSON is nested deeper than 32 levels."
NOT_A_DATE = "Expected an ISO-8601 date and time."
NO_NUL = "Text may not contain NUL characters."


def nested(depth: int) -> Any:
    value: Any = "bottom"
    for level in range(depth):
        value = {"deeper": value} if (depth - level) % 2 else [value]  # an object outermost
    return value


def deep_text(depth: int, around: Any = None) -> str:
    """JSON text of arrays nested `depth` deep (too deep for `json.dumps` to write), alone or in
    the place of "HERE" in `around`."""
    arrays = "[" * depth + "]" * depth
    return arrays if around is None else json.dumps(around).replace('"HERE"', arrays)


def with_extended_fields(extended: Any) -> dict:
    return confirmed("new@example.com", extendedFields=extended)


def query(filter_document: dict) -> dict:
    return {"query": {"filter": filter_document}}


@dataclass(frozen=True)
class BadRequest:
    method: str
    path: str
    body: Any
    status: int
    answer: Any
    headers: dict[str, str] = field(default_factory=dict)


UPSERT = f"{API}/marketing-consent/upsert"
CREATE = f"{API}/marketing-consent"
UPDATE = f"{API}/marketing-consent/{CONSENT_ID}"
QUERY = f"{API}/marketing-consent/query"
CONSENT_ROUTES = [
    ("POST", UPSERT),
    ("POST", CREATE),
    ("PATCH", UPDATE),
    ("POST", f"{API}/marketing-consent/remove"),
    ("POST", QUERY),
    ("POST", f"{API}/bulk/marketing-consent/upsert"),
]

CASES = {
    # NUL and lone surrogates in extendedFields: jsonb refuses them.
    "upsert, NUL in an extended field": BadRequest(
        "POST",
        UPSERT,
        with_extended_fields({"namespaces": {"crm": {"note": "a\x00b"}}}),
        400,
        violation("extendedFields", UNSTORABLE, "FORMAT"),
    ),
    "upsert, lone surrogate in an extended field's name": BadRequest(
        "POST",
        UPSERT,
        with_extended_fields({"namespaces": {"crm": {"\ud800": "x"}}}),
        400,
        violation("extendedFields", UNSTORABLE, "FORMAT"),
    ),
    "upsert, NUL deep in an extended list": BadRequest(
        "POST",
        UPSERT,
        with_extended_fields({"namespaces": {"crm": {"tags": ["ok", ["\x00"]]}}}),
        400,
        violation("extendedFields", UNSTORABLE, "FORMAT"),
    ),
    "create, lone surrogate in an extended field": BadRequest(
        "POST",
        CREATE,
        {"marketingConsent": with_extended_fields({"namespaces": {"crm": {"n": "\udfff"}}})},
        400,
        violation("marketingConsent.extendedFields", UNSTORABLE, "FORMAT"),
    ),
    "update, NUL in an extended field": BadRequest(
        "PATCH",
        UPDATE,
        {"marketingConsent": {"extendedFields": {"namespaces": {"crm": {"n": "\x00"}}}}},
        400,
        violation("marketingConsent.extendedFields", UNSTORABLE, "FORMAT"),
    ),
    # Depth: refused before parsing.
    **{
        f"{method} {path}, nested 1,000 deep": BadRequest(
            method, path, deep_text(1000), 400, application_error(TOO_DEEP, "INVALID_ARGUMENT")
        )
        for method, path in CONSENT_ROUTES
    },
    "upsert, extendedFields nested 500 deep": BadRequest(
        "POST",
        UPSERT,
        deep_text(500, around=with_extended_fields({"namespaces": "HERE"})),
        400,
        application_error(TOO_DEEP, "INVALID_ARGUMENT"),
    ),
    "upsert, extendedFields one level too deep": BadRequest(
        "POST",
        UPSERT,
        with_extended_fields({"namespaces": nested(31)}),
        400,
        application_error(TOO_DEEP, "INVALID_ARGUMENT"),
    ),
    "member API, nested 1,000 deep": BadRequest(
        "POST",
        "/client/users/LOY-1/sessions",
        deep_text(1000),
        400,
        {"statusCode": 400, "errorCode": "INVALID_REQUEST", "errorMessage": TOO_DEEP},
    ),
    # Query dates shaped like ISO dates that do not exist.
    **{
        f"query, date {date}": BadRequest(
            "POST",
            QUERY,
            query({"createdDate": {"$gt": date}}),
            400,
            violation("query.filter.createdDate.$gt", NOT_A_DATE, "FORMAT"),
        )
        for date in (
            "2023-02-30T00:00:00Z",
            "2023-01-01T25:00:00Z",
            "2023-01-01T00:00:00+99:00",
            "0000-01-01T00:00:00Z",
        )
    },
    # NUL in any query value.
    **{
        f"query, NUL in {operator}": BadRequest(
            "POST",
            QUERY,
            query({name: {operator: value}}),
            400,
            violation(f"query.filter.{name}.{operator}", NO_NUL, "FORMAT"),
        )
        for name, operator, value in (
            ("details.email", "$startsWith", "a\x00"),
            ("details.email", "$eq", "a\x00@example.com"),
            ("details.phone", "$in", ["+15551234567", "\x00"]),
            ("state", "$ne", "\x00"),
            ("id", "$eq", "\x00"),
            ("updatedDate", "$lt", "2023-01-01T00:00:00Z\x00"),
        )
    },
    # An encoded body is not read as plain JSON.
    **{
        f"{path}, Content-Encoding {encoding}": BadRequest(
            "POST",
            path,
            confirmed("new@example.com"),
            415,
            application_error(
                f"Content-Encoding {encoding!r} is not supported.", "UNSUPPORTED_MEDIA_TYPE"
            ),
            headers={"HTTP_CONTENT_ENCODING": encoding},
        )
        for path, encoding in ((UPSERT, "gzip"), (CREATE, "br"), (QUERY, "deflate"))
    },
    # A body without a length is refused, never read as empty.
    "upsert, chunked": BadRequest(
        "POST",
        UPSERT,
        confirmed("new@example.com"),
        411,
        application_error(
            "Send the request body with a Content-Length header, not chunked.", "LENGTH_REQUIRED"
        ),
        headers={"HTTP_TRANSFER_ENCODING": "chunked"},
    ),
}


def written() -> tuple:
    return (
        list(MarketingConsent.objects.values_list("address", "revision", "extended_fields")),
        ConsentEvent.objects.count(),
    )


@pytest.mark.parametrize("case", CASES.values(), ids=CASES.keys())
def test_bad_input_is_refused_in_the_doors_shape_and_changes_nothing(api_client, case):
    MarketingConsentFactory(id=CONSENT_ID, address="kept@example.com")
    before = written()

    response = api_client.generic(
        case.method,
        case.path,
        case.body if isinstance(case.body, str) else json.dumps(case.body),
        content_type="application/json",
        **case.headers,
    )

    assert (response.status_code, response.json()) == (case.status, case.answer)
    assert written() == before


def test_one_bad_item_in_a_bulk_upsert_never_fails_the_others(api_client):
    items = [
        confirmed("first@example.com"),
        with_extended_fields({"namespaces": {"crm": {"note": "\x00"}}}),
        confirmed("third@example.com", extendedFields={"namespaces": {"crm": {"tier": "gold"}}}),
    ]

    response = api_client.post(
        f"{API}/bulk/marketing-consent/upsert", {"info": items}, format="json"
    )

    assert response.status_code == 200
    results = response.json()["results"]
    assert [result["originalIndex"] for result in results] == [0, 1, 2]
    assert results[1] == {
        "originalIndex": 1,
        "error": f"extendedFields: {UNSTORABLE}",
    }
    assert response.json()["metadata"] == {"totalSuccess": 2, "totalFailure": 1}
    assert dict(MarketingConsent.objects.values_list("address", "extended_fields")) == {
        "first@example.com": {},
        "third@example.com": {"namespaces": {"crm": {"tier": "gold"}}},
    }
    assert ConsentEvent.objects.count() == 2


def test_extended_fields_at_the_depth_limit_are_kept(api_client):
    # 32 levels with the body's, extendedFields' and namespaces' own, in the platform's shape.
    extended = {"namespaces": {"deep": nested(29)}}

    response = api_client.post(UPSERT, with_extended_fields(extended), format="json")

    assert response.status_code == 200
    assert MarketingConsent.objects.get().extended_fields == extended
