"""Creating endpoints (command and admin), SSRF refusals, the admin's actions, and the wake a
commit gives its endpoints."""

import re
import time
from datetime import timedelta
from unittest import mock

import pytest
from django.core.management.base import CommandError
from django.urls import reverse
from django.utils import timezone
from kombu.exceptions import OperationalError

from consents.models import ConsentEvent
from consents.webhooks import delivery
from consents.webhooks.models import EventType, WebhookAttempt, WebhookEndpoint
from consents.webhooks.tasks import deliver_endpoint, sweep
from consentsite.celery import app
from tests.webhooks.test_delivery import deliver_all, endpoint_for, upsert

pytestmark = pytest.mark.django_db

ADD_URL = reverse("admin:consents_webhookendpoint_add")
LIST_URL = reverse("admin:consents_webhookendpoint_changelist")
ATTEMPTS_URL = reverse("admin:consents_webhookattempt_changelist")
HOUR = timedelta(hours=1)


def test_create_webhook_prints_the_secret_on_its_last_line(run_command):
    upsert("before@example.com")
    out = run_command(
        "create_webhook",
        "https://hooks.example.com/consent",
        "--events",
        "marketing_consent.updated",
        "marketing_consent.created",
        "--type",
        "PHONE",
        "--description",
        "ESP",
    )
    endpoint = WebhookEndpoint.objects.get()
    assert out.stdout.splitlines()[-1] == endpoint.secret
    assert re.fullmatch(r"whsec_[A-Za-z0-9+/]{43}=", endpoint.secret)
    assert out.stderr == f"Created webhook endpoint {endpoint.id} for {endpoint.url}.\n"
    assert (endpoint.url, endpoint.event_types, endpoint.consent_type, endpoint.description) == (
        "https://hooks.example.com/consent",
        ["marketing_consent.created", "marketing_consent.updated"],
        "PHONE",
        "ESP",
    )
    assert endpoint.cursor == ConsentEvent.objects.get().id  # from now
    assert endpoint.is_active


def test_create_webhook_defaults_to_every_event_type(run_command):
    run_command("create_webhook", "https://hooks.example.com/all")
    assert WebhookEndpoint.objects.get().event_types == EventType.values


@pytest.mark.parametrize(
    ("url", "message"),
    [
        ("http://hooks.example.com/x", "The URL must use HTTPS."),
        ("ftp://hooks.example.com/x", "The URL must use HTTPS."),
        ("https://user:pw@hooks.example.com/x", "The URL must not contain credentials."),
        ("https://127.0.0.1/x", "The URL points to a loopback address."),
        ("https://[::1]/x", "The URL points to a loopback address."),
        ("https://10.1.2.3/x", "The URL points to a private or reserved address."),
        ("https://192.168.0.10/x", "The URL points to a private or reserved address."),
        ("https://172.16.0.1/x", "The URL points to a private or reserved address."),
        ("https://100.64.0.1/x", "The URL points to a private or reserved address."),
        ("https://0.0.0.0/x", "The URL points to a private or reserved address."),
        ("https://169.254.169.254/latest", "The URL points to a link-local address."),
        ("https://[fe80::1]/x", "The URL points to a link-local address."),
        ("https://[::ffff:10.0.0.1]/x", "The URL points to a private or reserved address."),
        ("https://[fd00::1]/x", "The URL points to a private or reserved address."),
        ("https://localhost:8443/x", "The URL's host resolves to a loopback address."),
    ],
)
def test_create_webhook_refuses_unsafe_targets(run_command, url, message):
    with pytest.raises(CommandError, match=f"^{re.escape(message)}$"):
        run_command("create_webhook", url)
    assert not WebhookEndpoint.objects.exists()


def test_plain_http_is_allowed_in_debug_but_private_targets_are_not(run_command, settings):
    settings.DEBUG = True
    run_command("create_webhook", "http://hooks.example.com/dev")
    with pytest.raises(CommandError, match="loopback"):
        run_command("create_webhook", "http://127.0.0.1:9000/dev")
    assert WebhookEndpoint.objects.count() == 1


def test_insecure_targets_are_allowed_when_configured(run_command, settings):
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True
    run_command("create_webhook", "http://127.0.0.1:9000/dev")
    assert WebhookEndpoint.objects.get().url == "http://127.0.0.1:9000/dev"


def test_create_webhook_refuses_a_since_without_time_zone(run_command):
    with pytest.raises(CommandError, match="needs a time zone"):
        run_command("create_webhook", "https://hooks.example.com/x", "--since", "2026-01-01")


def test_staff_create_an_endpoint_and_see_its_secret_once(admin_client):
    response = admin_client.post(
        ADD_URL,
        {
            "url": "https://hooks.example.com/esp",
            "description": "ESP",
            "event_types": ["marketing_consent.created", "marketing_consent.deleted"],
            "consent_type": "EMAIL",
            "is_active": "on",
            "attempts-TOTAL_FORMS": "0",
            "attempts-INITIAL_FORMS": "0",
        },
        follow=True,
    )
    endpoint = WebhookEndpoint.objects.get()
    assert endpoint.event_types == ["marketing_consent.created", "marketing_consent.deleted"]
    assert endpoint.consent_type == "EMAIL"
    assert endpoint.secret in response.content.decode()
    page = admin_client.get(reverse("admin:consents_webhookendpoint_change", args=[endpoint.id]))
    assert endpoint.secret not in page.content.decode()


def test_the_admin_refuses_an_unsafe_url(admin_client):
    response = admin_client.post(
        ADD_URL,
        {
            "url": "https://169.254.169.254/",
            "event_types": ["marketing_consent.created"],
            "consent_type": "",
            "attempts-TOTAL_FORMS": "0",
            "attempts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 200
    assert "The URL points to a link-local address." in response.content.decode()
    assert not WebhookEndpoint.objects.exists()


def test_the_admin_rotates_a_secret_and_shows_the_new_one(admin_client, settings):
    settings.WEBHOOK_ALLOW_INSECURE_TARGETS = True
    endpoint = WebhookEndpoint.objects.create(url="http://127.0.0.1:9/x", event_types=["x"])
    old = endpoint.secret
    response = admin_client.post(
        LIST_URL,
        {"action": "rotate_secret", "_selected_action": [endpoint.id]},
        follow=True,
    )
    endpoint.refresh_from_db()
    assert endpoint.secret != old
    assert endpoint.previous_secret == old
    assert endpoint.signing_secrets() == [endpoint.secret, old]
    assert endpoint.secret in response.content.decode()


def test_the_admin_shows_failing_endpoints_and_attempts(admin_client, webhook_settings, receiver):
    receiver.status = 500
    endpoint = endpoint_for(receiver)
    upsert("fail@example.com")
    for _ in webhook_settings.WEBHOOK_RETRY_SCHEDULE:
        time.sleep(delivery.deliver_pending(endpoint.id) or 0)
    page = admin_client.get(LIST_URL, {"failing_since__isnull": "False"}).content.decode()
    assert "failing since" in page
    assert receiver.url in page
    attempts = admin_client.get(ATTEMPTS_URL).content.decode()
    assert attempts.count("HTTP 500") == len(webhook_settings.WEBHOOK_RETRY_SCHEDULE)


def test_the_admin_redelivers_an_event(admin_client, webhook_settings, receiver):
    app.conf.task_always_eager = True
    try:
        endpoint = endpoint_for(receiver)
        event = upsert("again@example.com").event
        deliver_all(endpoint)
        attempt = WebhookAttempt.objects.get()
        response = admin_client.post(
            ATTEMPTS_URL,
            {"action": "redeliver", "_selected_action": [attempt.id]},
            follow=True,
        )
    finally:
        app.conf.task_always_eager = False
    assert "Queued 1 redeliveries." in response.content.decode()
    assert receiver.ledger_event_ids() == [event.id, event.id]
    assert WebhookAttempt.objects.filter(redelivery=True, succeeded=True).count() == 1


@pytest.mark.django_db(transaction=True)
def test_a_commit_wakes_its_endpoints_at_once(webhook_settings, receiver, api_client):
    """The upsert's commit queues the endpoint's delivery (run in-process here, eagerly)."""
    endpoint = endpoint_for(receiver)
    app.conf.task_always_eager = True
    try:
        response = api_client.post(
            "/marketing-consent/v1/marketing-consent/upsert",
            {
                "details": {"type": "EMAIL", "email": "wake@example.com"},
                "state": "REVOKED",
                "lastRevokeActivity": {"source": "FORM"},
            },
            format="json",
        )
    finally:
        app.conf.task_always_eager = False
    assert response.status_code == 200
    [got] = receiver.received
    assert got.json()["consentProof"]["state"] == "REVOKED"
    endpoint.refresh_from_db()
    assert (endpoint.cursor, endpoint.wake_pending) == (ConsentEvent.objects.get().id, False)


@pytest.mark.django_db(transaction=True)
def test_a_broker_that_is_down_never_fails_the_write(
    webhook_settings, receiver, api_client, caplog
):
    endpoint = endpoint_for(receiver)
    refused = OperationalError("Error 111 connecting to the broker. Connection refused.")
    with mock.patch.object(deliver_endpoint, "delay", side_effect=refused) as queue:
        response = api_client.post(
            "/marketing-consent/v1/marketing-consent/upsert",
            {
                "details": {"type": "EMAIL", "email": "nobroker@example.com"},
                "state": "REVOKED",
                "lastRevokeActivity": {"source": "FORM"},
            },
            format="json",
        )
    queue.assert_called_once_with(endpoint.id)
    assert response.status_code == 200
    assert "Could not queue change-event delivery" in caplog.text
    endpoint.refresh_from_db()
    assert endpoint.wake_pending is False  # the next commit or the sweep queues it
    app.conf.task_always_eager = True
    try:
        sweep()
    finally:
        app.conf.task_always_eager = False
    assert len(receiver.received) == 1


def test_a_delivery_that_finds_the_lease_taken_leaves_the_wake_to_its_holder(
    webhook_settings, receiver
):
    """Commits while a delivery runs find `wake_pending` set and queue nothing: the holder of
    the lease clears it only once caught up, then looks again."""
    endpoint = endpoint_for(receiver)
    ids = [upsert(f"held{n}@example.com").event.id for n in range(2)]
    held = WebhookEndpoint.objects.filter(id=endpoint.id)
    held.update(wake_pending=True, lease_token="other", lease_expires_at=timezone.now() + HOUR)

    assert delivery.deliver_pending(endpoint.id) is None
    endpoint.refresh_from_db()
    assert (endpoint.wake_pending, endpoint.lease_token, endpoint.cursor) == (True, "other", 0)
    assert receiver.received == []

    held.update(lease_token="", lease_expires_at=None)  # the holder's turn
    deliver_all(endpoint)
    assert receiver.ledger_event_ids() == ids
    assert (endpoint.wake_pending, endpoint.lease_token, endpoint.cursor) == (False, "", ids[-1])


def test_the_admin_replays_an_endpoint_since_a_time(admin_client, webhook_settings, receiver):
    endpoint = endpoint_for(receiver)
    events = [upsert(f"replay{n}@example.com").event for n in range(3)]
    deliver_all(endpoint)
    since = events[1].recorded_at
    response = admin_client.post(
        reverse("admin:consents_webhookendpoint_change", args=[endpoint.id]),
        {
            "url": endpoint.url,
            "description": "",
            "event_types": EventType.values,
            "consent_type": "",
            "is_active": "on",
            "since": since.strftime("%Y-%m-%d %H:%M:%S.%f"),
            "attempts-TOTAL_FORMS": "0",
            "attempts-INITIAL_FORMS": "0",
        },
    )
    assert response.status_code == 302
    endpoint.refresh_from_db()
    assert endpoint.cursor == events[1].id - 1
    deliver_all(endpoint)
    assert receiver.ledger_event_ids() == [e.id for e in events] + [e.id for e in events[1:]]
