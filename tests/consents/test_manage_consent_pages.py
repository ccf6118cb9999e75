"""The confirmation and unsubscribe pages behind the links (docs/design.md)."""

from datetime import timedelta
from urllib.parse import urlsplit

import pytest
from django.test import Client
from django.utils import timezone

from consents.links import CONFIRM, UNSUBSCRIBE, make_token
from consents.models import ConsentEvent, MarketingConsent
from tests.consents.conftest import SEED_BODY, confirmed

pytestmark = pytest.mark.django_db


def path_of(url: str) -> str:
    parts = urlsplit(url)
    return f"{parts.path}?{parts.query}"


@pytest.fixture
def pending_link(upsert) -> str:
    return path_of(upsert(SEED_BODY).json()["link"]["url"])


@pytest.fixture
def unsubscribe_link(upsert) -> str:
    return path_of(upsert(confirmed("jane@example.com")).json()["link"]["url"])


def test_the_source_example_then_confirm_then_one_click_unsubscribe(upsert, api_client, client):
    """The issue's acceptance: PENDING → CONFIRMED (link, double) → REVOKED (revoke link)."""
    created = upsert(SEED_BODY).json()
    page = client.get(path_of(created["link"]["url"]))
    assert page.status_code == 200

    confirmed_page = client.post(path_of(created["link"]["url"]))
    assert confirmed_page.status_code == 200
    consent = MarketingConsent.objects.get()
    assert (consent.state, consent.confirmation_source, consent.confirmation_opt_in_level) == (
        "CONFIRMED",
        "LINK_CONFIRMATION",
        "DOUBLE_CONFIRMATION",
    )

    got = api_client.get(
        "/marketing-consent/v1/marketing-consent/get-by",
        {"type": "EMAIL", "email": "test@test.com"},
    ).json()
    unsubscribe_url = got["communicationEligibility"]["revokeConfirmationLink"]
    one_click = client.post(
        path_of(unsubscribe_url),
        {"List-Unsubscribe": "One-Click"},
        HTTP_USER_AGENT="MailClient/2",
        REMOTE_ADDR="198.51.100.7",
    )

    assert one_click.status_code == 200
    consent.refresh_from_db()
    assert (consent.state, consent.revoke_source, consent.revision) == ("REVOKED", "REVOKE_LINK", 3)
    events = list(ConsentEvent.objects.order_by("id"))
    assert [(e.kind, e.state, e.revision, e.door) for e in events] == [
        ("CREATED", "PENDING", 1, "CONSENT_API"),
        ("UPDATED", "CONFIRMED", 2, "LINK"),
        ("UPDATED", "REVOKED", 3, "LINK"),
    ]
    assert (events[-1].ip_address, events[-1].user_agent) == ("198.51.100.7", "MailClient/2")


def test_get_shows_a_masked_address_and_changes_nothing(client, pending_link):
    response = client.get(pending_link)

    assert response.status_code == 200
    html = response.content.decode()
    assert "t***@test.com" in html
    assert "test@test.com" not in html
    assert '<button type="submit">Confirm subscription</button>' in html
    assert '<meta name="viewport"' in html
    assert "http" not in html.split("<body>")[1]  # no external assets
    assert MarketingConsent.objects.get().state == "PENDING"
    assert ConsentEvent.objects.count() == 1


def test_confirming_records_ip_and_user_agent(client, pending_link):
    client.post(pending_link, HTTP_USER_AGENT="Firefox/130", REMOTE_ADDR="192.0.2.4")

    event = ConsentEvent.objects.latest("id")
    assert (event.door, event.actor, event.ip_address, event.user_agent) == (
        "LINK",
        "link recipient",
        "192.0.2.4",
        "Firefox/130",
    )


def test_confirming_twice_is_a_no_op(client, pending_link):
    client.post(pending_link)
    client.post(pending_link)

    assert MarketingConsent.objects.get().revision == 2
    assert ConsentEvent.objects.latest("id").kind == "UNCHANGED"


def test_the_confirmation_page_needs_the_csrf_token(pending_link):
    response = Client(enforce_csrf_checks=True).post(pending_link)

    assert response.status_code == 403
    assert MarketingConsent.objects.get().state == "PENDING"


def test_the_unsubscribe_page_button_revokes(client, unsubscribe_link):
    page = client.get(unsubscribe_link)
    assert b"j***@example.com" in page.content

    response = client.post(unsubscribe_link)

    assert b"unsubscribed" in response.content
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_one_click_works_without_csrf_and_repeats_are_no_ops(unsubscribe_link):
    client = Client(enforce_csrf_checks=True)

    first = client.post(unsubscribe_link, {"List-Unsubscribe": "One-Click"})
    again = client.post(unsubscribe_link, {"List-Unsubscribe": "One-Click"})

    assert (first.status_code, again.status_code) == (200, 200)
    assert MarketingConsent.objects.get().revision == 2
    assert ConsentEvent.objects.latest("id").kind == "UNCHANGED"


def test_a_confirmation_link_issued_before_a_later_unsubscribe_does_not_resubscribe(
    client, pending_link, upsert
):
    consent = MarketingConsent.objects.get()
    unsubscribe = (
        f"/_manage-consent/unsubscribe?token={make_token(consent.id, purpose=UNSUBSCRIBE)}"
    )
    client.post(unsubscribe, {"List-Unsubscribe": "One-Click"})

    response = client.post(pending_link)

    assert response.status_code == 400
    assert MarketingConsent.objects.get().state == "REVOKED"


@pytest.mark.parametrize(
    "url",
    [
        "/_manage-consent/subscribe",
        "/_manage-consent/subscribe?token=",
        "/_manage-consent/subscribe?token=garbage",
        "/_manage-consent/unsubscribe?token=a:b:c",
    ],
)
def test_missing_or_bad_tokens_get_a_friendly_400(client, url):
    for response in (client.get(url), client.post(url)):
        assert response.status_code == 400
        assert b"This link does not work" in response.content


def test_a_tampered_token_gets_400(client, pending_link, upsert):
    response = client.get(pending_link[:-3] + "abc")

    assert response.status_code == 400


def test_a_token_for_the_other_purpose_is_refused(client, upsert):
    consent_id = upsert(SEED_BODY).json()["marketingConsent"]["id"]
    token = make_token(consent_id, purpose=UNSUBSCRIBE)

    response = client.post(f"/_manage-consent/subscribe?token={token}")

    assert response.status_code == 400
    assert MarketingConsent.objects.get().state == "PENDING"


def test_an_expired_confirmation_link_gets_410(client, pending_link, settings, monkeypatch):
    later = timezone.now() + timedelta(seconds=settings.CONFIRMATION_LINK_MAX_AGE + 60)
    monkeypatch.setattr("time.time", lambda: later.timestamp())

    response = client.post(pending_link)

    assert response.status_code == 410
    assert b"This link has expired" in response.content
    assert MarketingConsent.objects.get().state == "PENDING"


def test_unsubscribe_links_keep_working(client, unsubscribe_link, settings, monkeypatch):
    later = timezone.now() + timedelta(days=3650)
    monkeypatch.setattr("time.time", lambda: later.timestamp())

    assert client.post(unsubscribe_link).status_code == 200
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_a_link_to_a_deleted_consent_gets_400(client, api_client, pending_link):
    consent = MarketingConsent.objects.get()
    api_client.delete(f"/marketing-consent/v1/marketing-consent/{consent.id}")

    assert client.get(pending_link).status_code == 400


def test_tokens_hold_no_address(upsert):
    token = make_token(
        MarketingConsent.objects.create(
            type="EMAIL", address="z@example.com", state="NEVER_CONFIRMED"
        ).id,
        purpose=CONFIRM,
    )

    assert "z@example" not in token


def test_a_stale_confirmation_link_says_why_on_get(client, pending_link):
    consent = MarketingConsent.objects.get()
    unsubscribe = (
        f"/_manage-consent/unsubscribe?token={make_token(consent.id, purpose=UNSUBSCRIBE)}"
    )
    client.post(unsubscribe, {"List-Unsubscribe": "One-Click"})

    response = client.get(pending_link)

    assert response.status_code == 400
    html = response.content.decode()
    assert "<h1>You unsubscribed after this link was sent</h1>" in html
    assert (
        "This confirmation link was sent before you unsubscribed, so it can no longer "
        "subscribe you." in html
    )
    assert "<button" not in html
    assert MarketingConsent.objects.get().state == "REVOKED"


def test_a_confirmation_by_a_browser_signed_in_as_staff_names_the_staff_user(
    client, pending_link, admin_user
):
    client.force_login(admin_user)

    client.post(pending_link)

    consent = MarketingConsent.objects.get()
    assert (consent.state, consent.confirmation_opt_in_level) == (
        "CONFIRMED",
        "UNKNOWN_OPT_IN_LEVEL",
    )
    event = ConsentEvent.objects.latest("id")
    assert (event.door, event.actor, event.activity_source, event.activity_description) == (
        "LINK",
        "admin",
        "LINK_CONFIRMATION",
        "Confirmed through the confirmation link by staff user 'admin', signed in to the admin: "
        "not the recipient.",
    )


def test_an_unsubscribe_by_a_browser_signed_in_as_staff_names_the_staff_user(
    client, unsubscribe_link, admin_user
):
    client.force_login(admin_user)

    client.post(unsubscribe_link)

    assert MarketingConsent.objects.get().state == "REVOKED"
    event = ConsentEvent.objects.latest("id")
    assert (event.door, event.actor, event.activity_source, event.activity_description) == (
        "LINK",
        "admin",
        "REVOKE_LINK",
        "Unsubscribed through the link by staff user 'admin', signed in to the admin: "
        "not the recipient.",
    )


def test_a_signed_in_user_who_is_not_staff_is_the_link_recipient(
    client, pending_link, django_user_model
):
    client.force_login(django_user_model.objects.create_user("customer", password="pw"))

    client.post(pending_link)

    event = ConsentEvent.objects.latest("id")
    assert (event.actor, event.activity_description, event.activity_opt_in_level) == (
        "link recipient",
        "Confirmed through the confirmation link.",
        "DOUBLE_CONFIRMATION",
    )


def test_the_pages_warn_a_browser_signed_in_as_staff(client, pending_link, admin_user):
    client.force_login(admin_user)

    html = client.get(pending_link).content.decode()

    assert (
        '<p class="error" role="alert">You are signed in to the admin as <strong>admin</strong>. '
        "If you confirm here, the consent records you, not the person who got this link.</p>"
    ) in html
    assert MarketingConsent.objects.get().state == "PENDING"
