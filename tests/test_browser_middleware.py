"""The browser middleware (sessions, messages, users, static files) runs on the admin and the
link pages, not on the APIs' routes; CSRF protection guards the admin and leaves the APIs be."""

import pytest
from django.test import Client

pytestmark = pytest.mark.django_db

GET_BY = "/marketing-consent/v1/marketing-consent/get-by?type=EMAIL&email=nobody@example.com"


def test_an_api_answer_neither_reads_nor_sets_browser_state(api_client):
    api_client.cookies["sessionid"] = "anything"

    response = api_client.get(GET_BY)

    assert response.status_code == 200
    assert "Cookie" not in response.get("Vary", "")
    assert not response.cookies
    assert not hasattr(response.wsgi_request, "session")
    assert not hasattr(response.wsgi_request, "_messages")


def test_an_api_write_needs_no_csrf_token_even_with_a_session_cookie(api_client):
    csrf_checked = Client(enforce_csrf_checks=True)
    csrf_checked.cookies["sessionid"] = "anything"
    body = {
        "details": {"type": "EMAIL", "email": "csrf@example.com"},
        "state": "CONFIRMED",
        "lastConfirmationActivity": {"source": "FORM"},
    }

    response = csrf_checked.post(
        "/marketing-consent/v1/marketing-consent/upsert",
        body,
        content_type="application/json",
        headers={"Authorization": api_client._credentials["HTTP_AUTHORIZATION"]},
    )

    assert response.status_code == 200, response.content


def test_the_admin_keeps_sessions_and_csrf():
    csrf_checked = Client(enforce_csrf_checks=True)

    page = csrf_checked.get("/admin/login/")
    refused = csrf_checked.post("/admin/login/", {"username": "x", "password": "y"})

    assert page.status_code == 200
    assert "csrftoken" in page.cookies
    assert hasattr(page.wsgi_request, "session")
    assert refused.status_code == 403
