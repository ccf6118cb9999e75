from unittest import mock

import pytest
from django.db import DatabaseError

pytestmark = pytest.mark.django_db


def test_healthz_answers_ok_without_authentication(client):
    response = client.get("/healthz")

    assert (response.status_code, response.json()) == (200, {"status": "ok"})


def test_healthz_answers_503_when_the_database_does_not(client):
    with mock.patch("consentsite.views.connection.cursor", side_effect=DatabaseError("down")):
        response = client.get("/healthz")

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
