"""Fuzzing both APIs from their own OpenAPI schema (schemathesis): whatever a client sends, the
answer is never a 5xx and always matches the documented responses; a request the schema calls
valid is accepted, and one it calls invalid is refused, except for the few rules below that
OpenAPI 3.0 cannot state (each named, with its reason)."""

import json
import re
from typing import Any

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    negative_data_rejection,
    not_a_server_error,
    positive_data_acceptance,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)
from schemathesis.config import OperationConfig
from schemathesis.core.parameters import ParameterLocation

from consentsite.wsgi import application

FUZZ_EXAMPLES = 10  # per operation: bounded so that CI stays within a few minutes

CONSENT = "/marketing-consent/v1/marketing-consent"
BULK = "POST /marketing-consent/v1/bulk/marketing-consent/upsert"
# A schema-valid request that the server rightly refuses, for a rule OpenAPI 3.0 cannot state:
# (operation, the field (consent API) or "" (member API), a pattern of the message).
JUSTIFIED_REJECTIONS = [
    # Whether a phone number exists is libphonenumber's knowledge; the schema states E.164's
    # shape only.
    ("*", r".*", r".* is not a valid phone number\.$"),
    # An activity dated in the future is refused: "now" is not a value a schema can hold.
    (
        "*",
        r"(.+\.)?last(Confirmation|Revoke)Activity\.updatedDate",
        r"The date is in the future\.$",
    ),
    # Text with NUL or a lone surrogate cannot be stored (PostgreSQL refuses both); extended
    # fields hold any keys at any depth, which OpenAPI 3.0 cannot give a pattern.
    (
        "*",
        r"(.+\.)?extendedFields",
        r"Text may not contain NUL characters or lone surrogates\.$",
    ),
    # get-by: which of `email` and `phone` is required depends on `type`; OpenAPI 3.0 cannot
    # make one query parameter depend on another.
    (f"GET {CONSENT}/get-by", r"email|phone", r"This field is required\.$"),
    # sessions: the identifier's format depends on the `X-Identifier-Type` header.
    (
        "POST /client/users/{identifier}/sessions",
        "",
        r".* is not a valid (email address|phone number)\.$",
    ),
    # update: the body's id must be the path's id, and a mask naming `state` needs a state;
    # neither can be stated across a path and a body, or across two body fields of this shape.
    (f"PATCH {CONSENT}/{{id}}", r"marketingConsent\.id", r"It is not the id in the URL\.$"),
    (f"PATCH {CONSENT}/{{id}}", r"marketingConsent\.state", r"Required\.$"),
    # query: a cursor is a signed token that only the server makes; a field may be sorted on
    # once (the schema bounds the list, but cannot say "unique by fieldName").
    (f"POST {CONSENT}/query", r"query\.cursorPaging\.cursor", r".*"),
    (f"POST {CONSENT}/query", r"query\.sort\[\d\]\.fieldName", r".* is sorted on already\.$"),
]


def is_justified_rejection(case: Any, response: Any) -> bool:
    """Every reason the server gave for refusing this request is on JUSTIFIED_REJECTIONS."""
    if response.status_code != 400:
        return False
    label = case.operation.label
    rules = [(f, m) for op, f, m in JUSTIFIED_REJECTIONS if op in ("*", label)]
    body = json.loads(response.text)
    if "errorMessage" in body:  # the member API: one message
        reasons = [("", body["errorMessage"])]
    else:
        violations = body["details"].get("validationError", {}).get("fieldViolations", [])
        reasons = [(v["field"], v["description"]) for v in violations]
    return bool(reasons) and all(
        any(re.fullmatch(f, field) and re.fullmatch(m, message) for f, m in rules)
        for field, message in reasons
    )


def is_lenient_reading(case: Any) -> bool:
    """DRF reads a number sent for a text field as its text (a `description` of 0 is "0"), and 0
    and 1 sent for a boolean as false and true: a negative case whose only fault is such a
    number is accepted. Any other wrong type is refused, and that is checked."""
    data = case.meta.phase.data
    if data.mutations:
        sent = [m.new_value for m in data.mutations if m.keywords == ("type",)]
        if len(sent) != len(data.mutations):
            return False
    else:  # the coverage phase names the one field it changed: "a -> b: Incorrect type"
        fault = re.fullmatch(r"(.+): Incorrect type", data.description or "")
        if fault is None or data.parameter_location is not ParameterLocation.BODY:
            return False
        sent = [case.body]
        for key in fault.group(1).split(" -> "):
            sent = [sent[0].get(key) if isinstance(sent[0], dict) else None]
    return bool(sent) and all(
        isinstance(value, int | float) and not isinstance(value, bool) for value in sent
    )


def schema_valid_data_is_accepted(ctx: Any, response: Any, case: Any) -> bool | None:
    if is_justified_rejection(case, response):
        return True
    return positive_data_acceptance(ctx, response, case)


def is_reported_bulk_item(case: Any, response: Any) -> bool:
    """A bulk upsert answers a bad item in its own result, never failing the others: a
    negative case whose faults are all inside `info`'s items is accepted when reported so."""
    if case.operation.label != BULK or response.status_code != 200:
        return False
    data = case.meta.phase.data
    paths = [list(m.path) for m in data.mutations] or [(data.description or "").split(" -> ")]
    in_items = all(len(path) > 1 and path[0] == "info" for path in paths)
    return in_items and json.loads(response.text)["metadata"]["totalFailure"] > 0


def schema_invalid_data_is_refused(ctx: Any, response: Any, case: Any) -> bool | None:
    if is_lenient_reading(case) or is_reported_bulk_item(case, response):
        return True
    return negative_data_rejection(ctx, response, case)


# No 5xx, every answer as documented, and the schema says truly what is accepted.
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
    schema_valid_data_is_accepted,
    schema_invalid_data_is_refused,
]


@pytest.fixture(autouse=True)
def keep_the_test_connection():
    """Requests go through the real WSGI handler, which closes "old" connections at each request
    (inside a test's transaction, that is this one). Django's test client turns it off too."""
    signals.request_started.disconnect(close_old_connections)
    signals.request_finished.disconnect(close_old_connections)
    yield
    signals.request_started.connect(close_old_connections)
    signals.request_finished.connect(close_old_connections)


# Loaded at collection: generating the schema needs no database.
schema = schemathesis.openapi.from_wsgi("/api/schema/?format=json", application)
# The query filter's schema is large: the coverage phase's boundary cases of every keyword in it
# cost more than the rest of the test together. The query is fuzzed (both ways) without them.
schema.config.operations.operations.append(
    OperationConfig.from_dict(
        {"include-path": f"{CONSENT}/query", "phases": {"coverage": {"enabled": False}}}
    )
)


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    derandomize=True,  # the same cases on every run and both databases
    database=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db
def test_api_never_fails_and_answers_as_documented(case, api_key):
    case.call_and_validate(headers={"Authorization": f"Api-Key {api_key.clear_key}"}, checks=CHECKS)
