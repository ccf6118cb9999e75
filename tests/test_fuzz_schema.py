"""Fuzzing both APIs from their own OpenAPI schema (schemathesis): whatever a client sends, the
answer is never a 5xx and always matches the documented responses."""

import pytest
import schemathesis
from django.core import signals
from django.db import close_old_connections
from hypothesis import HealthCheck, settings
from schemathesis.checks import (
    content_type_conformance,
    not_a_server_error,
    response_headers_conformance,
    response_schema_conformance,
    status_code_conformance,
)

from consentsite.wsgi import application

FUZZ_EXAMPLES = 25  # per operation: bounded so that CI stays within a few minutes

# No 5xx, and every answer as documented. (Not "schema-valid data is accepted": a schema-valid
# string that is no phone number is rightly refused.)
CHECKS = [
    not_a_server_error,
    status_code_conformance,
    content_type_conformance,
    response_headers_conformance,
    response_schema_conformance,
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


@schema.parametrize()
@settings(
    max_examples=FUZZ_EXAMPLES,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@pytest.mark.django_db
def test_api_never_fails_and_answers_as_documented(case, api_key):
    case.call_and_validate(headers={"Authorization": f"Api-Key {api_key.clear_key}"}, checks=CHECKS)
