"""The staff scenario in a real browser (Debian's chromium, driven by Playwright)."""

import re
from pathlib import Path

import pytest
from django.db import connections
from rest_framework.test import APIClient

from consents.ledger import ChangeContext, ConfirmationActivity, ConsentChange, consent_upsert
from consents.models import ConsentEvent, MarketingConsent
from tests.factories import ClientApiKeyFactory, MemberFactory, MemberSessionFactory

CHROMIUM = Path("/usr/bin/chromium")
ARTIFACTS = Path(__file__).resolve().parent.parent / "artifacts"

pytestmark = [
    pytest.mark.browser,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(
        not CHROMIUM.exists(), reason="needs Debian's chromium (.ci/run installs it)"
    ),
]


@pytest.fixture
def page(monkeypatch):
    from playwright.sync_api import sync_playwright

    # Playwright's sync API runs an event loop in this thread; the ORM calls here stay synchronous.
    monkeypatch.setenv("DJANGO_ALLOW_ASYNC_UNSAFE", "true")
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=[
                "--no-sandbox",
                "--disable-gpu",
                "--disable-background-networking",
                "--disable-component-update",
                "--disable-sync",
                "--no-first-run",
            ],
        )
        page = browser.new_page(viewport={"width": 1280, "height": 900})
        page.set_default_timeout(15_000)
        yield page
        browser.close()
        # Playwright runs an event loop in this thread, so the test's queries used a connection of
        # that loop's context, which Django's teardown would not close.
        connections.close_all()


def test_staff_find_a_member_by_phone_and_revoke_the_email_consent(
    page, live_server, django_user_model
):
    django_user_model.objects.create_superuser("sam", "sam@example.com", "a-long-password-1")
    member = MemberFactory(first_name="Ada", email="ada@example.com", phone="+14155550123")
    consent_upsert(
        type="EMAIL",
        address=member.email,
        change=ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM")),
        context=ChangeContext(door="CONSENT_API", actor="crm-sync"),
    )

    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")

    page.goto(f"{live_server.url}/admin/members/member/")
    page.fill("#searchbar", "(415) 555-0123")
    page.press("#searchbar", "Enter")
    page.click("#result_list tbody tr th a")
    page.click("text=ada@example.com")
    assert re.search(r"/admin/consents/marketingconsent/[0-9a-f-]+/change/$", page.url)

    page.goto(f"{live_server.url}/admin/consents/marketingconsent/?q=ADA@example.com")
    page.check("#result_list tbody input.action-select")
    page.select_option("select[name=action]", "revoke_selected")
    page.click("button[name=index]")
    page.fill("textarea[name=reason]", "Asked by phone, ticket 881")
    page.click("input[type=submit][value^=Revoke]")
    page.wait_for_selector("text=Revoked 1 consent(s); 0 were already revoked.")

    page.click("#result_list tbody tr th a")
    first_event = page.locator("#events-group tbody tr").first
    assert "UPDATED" in first_event.inner_text()
    assert "sam" in first_event.inner_text()
    ARTIFACTS.mkdir(exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "admin-consent.png"), full_page=True)

    consent = MarketingConsent.objects.get()
    assert (consent.state, consent.revoke_description) == ("REVOKED", "Asked by phone, ticket 881")
    event = ConsentEvent.objects.latest("id")
    assert (event.door, event.actor) == ("ADMIN", "sam")

    # The revocation is visible through both APIs too.
    api = APIClient()
    api_key = ClientApiKeyFactory()
    api.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.clear_key}")
    got = api.get(
        "/marketing-consent/v1/marketing-consent/get-by", {"type": "EMAIL", "email": member.email}
    ).json()
    assert got["marketingConsent"]["state"] == "REVOKED"
    assert got["communicationEligibility"]["granted"] is False
    MemberSessionFactory(correlation_id="corr-ada", member=member, api_key=api_key)
    loyalty = api.get("/client/users/corr-ada/profile/marketing-preferences").json()["EMAIL"]
    assert loyalty["LOYALTY"]["status"] == "OPTED_OUT"
    assert loyalty["LOYALTY"]["lastStatusUpdateSource"] == "CONSOLE"
