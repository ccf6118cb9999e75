"""Admin login is rate-limited per username and IP address (django-axes)."""

import pytest
from axes.models import AccessAttempt

pytestmark = pytest.mark.django_db

LOGIN = "/admin/login/?next=/admin/"


@pytest.fixture(autouse=True)
def staff(django_user_model, settings):
    settings.AXES_FAILURE_LIMIT = 3
    return django_user_model.objects.create_user("sam", password="right", is_staff=True)


def log_in(client, password: str, username: str = "sam", ip: str = "10.0.0.1"):
    return client.post(LOGIN, {"username": username, "password": password}, REMOTE_ADDR=ip)


def test_a_wrong_password_is_told_so_below_the_limit(client):
    response = log_in(client, "wrong")

    assert response.status_code == 200
    assert "Please enter the correct username and password" in response.content.decode()


def test_after_the_limit_even_the_right_password_is_refused(client):
    for _ in range(3):
        log_in(client, "wrong")

    response = log_in(client, "right")

    assert response.status_code == 429
    assert "_auth_user_id" not in client.session
    assert client.get("/admin/").status_code == 302  # still sent to the login page


def test_the_lockout_is_per_username_and_ip_address(client):
    for _ in range(3):
        log_in(client, "wrong")

    from_elsewhere = log_in(client, "right", ip="10.0.0.2")

    assert from_elsewhere.status_code == 302
    assert from_elsewhere["Location"] == "/admin/"


def test_a_successful_login_resets_the_count(client):
    for _ in range(2):
        log_in(client, "wrong")
    assert log_in(client, "right").status_code == 302
    client.logout()

    for _ in range(2):
        log_in(client, "wrong")

    assert log_in(client, "right").status_code == 302
    assert not AccessAttempt.objects.filter(failures_since_start__gte=3).exists()
