"""POST /marketing-consent/v1/marketing-consent/upsert — the seed endpoint."""

import re

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.consents.conftest import API, SEED_BODY, confirmed, revoked, violation

pytestmark = pytest.mark.django_db

DATE = re.compile(r"^\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{3}Z$")


def test_the_seed_example_as_sent_creates_a_pending_consent_with_a_confirmation_link(upsert):
    response = upsert(SEED_BODY)

    assert response.status_code == 200
    body = response.json()
    consent = MarketingConsent.objects.get()
    assert body["marketingConsent"] == {
        "id": str(consent.id),
        "revision": "1",
        "details": {"type": "EMAIL", "email": "test@test.com"},
        "state": "PENDING",
        "lastConfirmationActivity": {
            "source": "IN_PERSON",
            "description": "Person filled a printed document.",
            "updatedDate": "2023-05-01T00:00:00.000Z",
            "optInLevel": "DOUBLE_CONFIRMATION",
        },
        "extendedFields": {},
        "createdDate": body["marketingConsent"]["createdDate"],
        "updatedDate": body["marketingConsent"]["updatedDate"],
    }
    assert DATE.match(body["marketingConsent"]["createdDate"])
    assert body["link"]["type"] == "CONFIRMATION"
    assert body["link"]["url"].startswith("http://127.0.0.1:8000/_manage-consent/subscribe?token=")
    assert "test" not in body["link"]["url"].split("token=")[1]
    event = ConsentEvent.objects.get()
    assert (event.kind, event.door, event.actor, event.state, event.revision) == (
        "CREATED",
        "CONSENT_API",
        "crm-sync",
        "PENDING",
        1,
    )
    assert event.activity_source == "IN_PERSON"


def test_wrapped_and_unwrapped_bodies_are_the_same_request(upsert):
    upsert({"marketingConsent": confirmed("w@example.com")})

    response = upsert(confirmed("w@example.com"))

    assert response.json()["marketingConsent"]["revision"] == "1"
    assert list(ConsentEvent.objects.values_list("kind", flat=True).order_by("id")) == [
        "CREATED",
        "UNCHANGED",
    ]


def test_a_confirmed_consent_gets_an_unsubscribe_link_and_a_revoked_one_none(upsert):
    assert upsert(confirmed("c@example.com")).json()["link"]["type"] == "REVOKE_CONFIRMATION"
    assert "link" not in upsert(revoked("c@example.com", "2024-02-01T00:00:00Z")).json()


def test_replaying_a_request_keeps_the_revision(upsert):
    upsert(confirmed("r@example.com"))
    upsert(revoked("r@example.com", "2024-02-01T00:00:00Z"))

    replay = upsert(revoked("r@example.com", "2024-02-01T00:00:00Z"))

    assert replay.json()["marketingConsent"]["revision"] == "2"
    assert ConsentEvent.objects.filter(kind="UNCHANGED").count() == 1


def test_an_older_opt_in_never_undoes_a_newer_opt_out(upsert):
    upsert(revoked("late@example.com", "2024-03-01T00:00:00Z"))

    response = upsert(confirmed("late@example.com", "2024-02-01T00:00:00Z"))

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["state"] == "REVOKED"
    assert response.json()["marketingConsent"]["revision"] == "1"
    assert ConsentEvent.objects.order_by("-id").first().kind == "SUPERSEDED"


def test_unknown_state_keeps_an_existing_email_consent(upsert):
    upsert(confirmed("u@example.com"))

    response = upsert(
        {"details": {"type": "EMAIL", "email": "u@example.com"}, "state": "UNKNOWN_STATE"}
    )

    assert response.json()["marketingConsent"]["state"] == "CONFIRMED"


def test_a_new_consent_may_start_in_unknown_state(upsert):
    response = upsert(
        {"details": {"type": "PHONE", "phone": "(415) 555-0100"}, "state": "UNKNOWN_STATE"}
    )

    assert response.json()["marketingConsent"]["details"] == {
        "type": "PHONE",
        "phone": "+14155550100",
    }
    assert response.json()["marketingConsent"]["state"] == "UNKNOWN_STATE"
    assert "link" not in response.json()


def test_address_spellings_are_one_consent(upsert):
    upsert(confirmed("Ann@Example.COM "))
    upsert(confirmed("ann@example.com"))

    assert list(MarketingConsent.objects.values_list("address", flat=True)) == ["ann@example.com"]


def test_dates_with_and_without_fractional_seconds_are_accepted(upsert):
    upsert(confirmed("d@example.com", "2023-05-01T00:00:00.000Z"))

    response = upsert(confirmed("d@example.com", "2023-05-01T00:00:00Z"))

    assert response.json()["marketingConsent"]["revision"] == "1"
    assert response.json()["marketingConsent"]["lastConfirmationActivity"]["updatedDate"] == (
        "2023-05-01T00:00:00.000Z"
    )


@pytest.mark.parametrize(
    ("body", "expected"),
    [
        (
            {"state": "CONFIRMED"},
            {"field": "details", "rule": "REQUIRED_FIELD"},
        ),
        (
            {"details": {"type": "EMAIL"}, "state": "NEVER_CONFIRMED"},
            {"field": "details.email", "rule": "REQUIRED_FIELD"},
        ),
        (
            {"details": {"type": "PHONE", "phone": "12"}, "state": "NEVER_CONFIRMED"},
            {"field": "details.phone", "rule": "FORMAT"},
        ),
        (
            {"details": {"type": "FAX", "email": "a@example.com"}, "state": "NEVER_CONFIRMED"},
            {"field": "details.type", "rule": "INVALID_ENUM_VALUE"},
        ),
        (
            {"details": {"type": "EMAIL", "email": "a@example.com"}},
            {"field": "state", "rule": "REQUIRED_FIELD"},
        ),
        (
            {"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "PENDING"},
            {"field": "lastConfirmationActivity", "rule": "REQUIRED_FIELD"},
        ),
        (
            {"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "REVOKED"},
            {"field": "lastRevokeActivity", "rule": "REQUIRED_FIELD"},
        ),
        (
            {**confirmed("a@example.com"), "lastConfirmationActivity": {"source": "PIGEON"}},
            {"field": "lastConfirmationActivity.source", "rule": "INVALID_ENUM_VALUE"},
        ),
        (
            {**confirmed("a@example.com"), "lastConfirmationActivity": {"updatedDate": "May 1"}},
            {"field": "lastConfirmationActivity.updatedDate", "rule": "FORMAT"},
        ),
        (
            {
                **confirmed("a@example.com"),
                "lastConfirmationActivity": {"updatedDate": "2999-01-01T00:00:00Z"},
            },
            {"field": "lastConfirmationActivity.updatedDate", "rule": "INVALID_VALUE"},
        ),
        (
            {**confirmed("a@example.com"), "extendedFields": ["x"]},
            {"field": "extendedFields", "rule": "FORMAT"},
        ),
    ],
)
def test_each_validation_rule_names_its_field_and_writes_nothing(upsert, body, expected):
    for wrapped, prefix in ((False, ""), (True, "marketingConsent.")):
        response = upsert({"marketingConsent": body} if wrapped else body)

        assert response.status_code == 400
        [found] = response.json()["details"]["validationError"]["fieldViolations"]
        assert (found["field"], found["violatedRule"]) == (
            prefix + expected["field"],
            expected["rule"],
        )
    assert not MarketingConsent.objects.exists()
    assert not ConsentEvent.objects.exists()


def test_a_violation_body_is_exact(upsert):
    response = upsert(
        {"details": {"type": "EMAIL", "email": "not-an-email"}, "state": "UNKNOWN_STATE"}
    )

    assert response.json() == violation(
        "details.email", "'not-an-email' is not a valid email address.", "FORMAT"
    )


def nested(depth: int) -> dict:
    """`{"a": {"a": … {}}}`, `depth` objects deep."""
    value: dict = {}
    for _ in range(depth - 1):
        value = {"a": value}
    return value


@pytest.mark.parametrize(
    ("fields", "field", "rule"),
    [
        ("x", "extendedFields", "FORMAT"),
        (["x"], "extendedFields", "FORMAT"),
        ({"shoe_size": "42"}, "extendedFields.shoe_size", "FORMAT"),
        ({"namespaces": {}, "other": {}}, "extendedFields.other", "FORMAT"),
        ({"namespaces": ["x"]}, "extendedFields.namespaces", "FORMAT"),
        ({"namespaces": "x"}, "extendedFields.namespaces", "FORMAT"),
        ({"namespaces": {"shop": "12"}}, "extendedFields.namespaces.shop", "FORMAT"),
        ({"namespaces": {"shop": ["12"]}}, "extendedFields.namespaces.shop", "FORMAT"),
        ({"namespaces": {"": {}}}, "extendedFields.namespaces", "FORMAT"),
        ({"namespaces": {"shop": {"a": "x" * 17000}}}, "extendedFields", "INVALID_VALUE"),
    ],
)
def test_extended_fields_must_have_the_platforms_shape_and_size(upsert, fields, field, rule):
    response = upsert(confirmed("x@example.com", extendedFields=fields))

    assert response.status_code == 400
    [found] = response.json()["details"]["validationError"]["fieldViolations"]
    assert (found["field"], found["violatedRule"]) == (field, rule)
    assert not MarketingConsent.objects.exists()


@pytest.mark.parametrize(
    "fields",
    [
        {},
        {"namespaces": {}},
        {"namespaces": {"shop": {}}},
        {"namespaces": {"shop": nested(8), "_user_fields": {"a": [1, "x", None, True]}}},
        {"namespaces": {"shop": {"a": "x" * 16000}}},
    ],
)
def test_extended_fields_of_the_platforms_shape_within_bounds_are_kept(upsert, fields):
    response = upsert(confirmed("x@example.com", extendedFields=fields))

    assert response.status_code == 200
    assert response.json()["marketingConsent"]["extendedFields"] == fields
    assert MarketingConsent.objects.get().extended_fields == fields


def test_extended_fields_of_another_shape_are_refused_on_update_and_bulk(api_client, upsert):
    consent_id = upsert(confirmed("x@example.com")).json()["marketingConsent"]["id"]

    update = api_client.patch(
        f"{API}/marketing-consent/{consent_id}",
        {"marketingConsent": {"extendedFields": {"shop": {"a": 1}}}},
        format="json",
    )
    bulk = api_client.post(
        f"{API}/bulk/marketing-consent/upsert",
        {"info": [confirmed("y@example.com", extendedFields={"namespaces": 1})]},
        format="json",
    )

    assert update.json() == violation(
        "marketingConsent.extendedFields.shop", "Only namespaces may be set.", "FORMAT"
    )
    assert bulk.json()["results"] == [
        {"originalIndex": 0, "error": "extendedFields.namespaces: Expected an object."}
    ]
    assert MarketingConsent.objects.get().extended_fields == {}


def test_extended_fields_are_stored_and_returned(upsert):
    fields = {"namespaces": {"_user_fields": {"shoe_size": "42"}}}

    response = upsert(confirmed("x@example.com", extendedFields=fields))

    assert response.json()["marketingConsent"]["extendedFields"] == fields
    assert MarketingConsent.objects.get().extended_fields == fields


def test_the_event_records_request_id_ip_and_user_agent(api_client):
    api_client.post(
        f"{API}/marketing-consent/upsert",
        confirmed("who@example.com"),
        format="json",
        HTTP_X_REQUEST_ID="req-42",
        HTTP_USER_AGENT="crm/1.0",
        REMOTE_ADDR="203.0.113.9",
    )

    event = ConsentEvent.objects.get()
    assert (event.request_id, event.ip_address, event.user_agent) == (
        "req-42",
        "203.0.113.9",
        "crm/1.0",
    )
