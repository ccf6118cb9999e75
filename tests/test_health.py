import threading
from unittest import mock

import pytest
from django.db import DatabaseError, connections

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_authentication(client):
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def failing_cursor(error: Exception | None = None, until: threading.Event | None = None):
    """Every connection's cursor (the probe runs on a thread of its own) fails, or hangs until
    `until` is set."""

    def cursor(*args, **kwargs):
        if until is not None:
            until.wait()
        raise error or DatabaseError("down")

    return mock.patch.object(type(connections["default"]), "cursor", cursor)


def test_healthz_answers_503_when_the_database_does_not(client):
    with failing_cursor():
        response = client.get("/healthz")

    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})


def test_healthz_answers_503_when_the_database_does_not_answer_in_time(client, settings):
    settings.HEALTHZ_TIMEOUT = 0.05
    released = threading.Event()
    with failing_cursor(until=released):
        response = client.get("/healthz")
        released.set()

    assert (response.status_code, response.json()) == (503, {"status": "unavailable"})


def test_swagger_ui_renders_with_local_assets_only(client):
    response = client.get("/api/docs/")

    assert response.status_code == 200
    html = response.content.decode()
    assert "/static/drf_spectacular_sidecar/swagger-ui-dist/swagger-ui-bundle.js" in html
    assert "cdn" not in html.lower()


def test_the_schema_documents_both_apis(client):
    response = client.get("/api/schema/?format=json")

    paths = response.json()["paths"]
    assert "/client/users/{correlation_id}/profile/marketing-subscription" in paths
    assert "/marketing-consent/v1/marketing-consent/upsert" in paths
