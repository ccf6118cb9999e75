"""The staff scenario in a real browser (Debian's chromium, driven by Playwright)."""

import re
from pathlib import Path
from unittest import mock
from urllib.parse import urlsplit

import pytest
from django.db import connections
from rest_framework.test import APIClient

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
)
from consents.models import ConsentEvent, MarketingConsent
from consents.revocations import jobs, tasks
from consents.revocations.models import RevokeJob
from tests.factories import (
    ClientApiKeyFactory,
    MarketingConsentFactory,
    MemberFactory,
    MemberSessionFactory,
)

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
    assert "Updated" in first_event.inner_text()
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


def sign_in(page, live_server, django_user_model) -> None:
    django_user_model.objects.create_superuser("sam", "sam@example.com", "a-long-password-1")
    page.goto(f"{live_server.url}/admin/")
    page.fill("#id_username", "sam")
    page.fill("#id_password", "a-long-password-1")
    page.click("input[type=submit]")


def test_staff_cannot_overwrite_an_opt_out_forge_a_click_or_be_misled_on_20000_consents(
    page, live_server, django_user_model
):
    system = ChangeContext(door="CONSENT_API", actor="crm-sync")
    ann = consent_upsert(
        type="EMAIL",
        address="ann@example.com",
        change=ConsentChange(state="REVOKED", revoke=RevokeActivity(source="FORM")),
        context=system,
    ).consent
    pia = consent_upsert(
        type="EMAIL",
        address="pia@example.com",
        change=ConsentChange(state="PENDING", confirmation=ConfirmationActivity(source="FORM")),
        context=system,
    ).consent
    MarketingConsentFactory._meta.model.objects.bulk_create(
        MarketingConsentFactory.build_batch(20_000), batch_size=2000
    )
    failed_responses = []
    page.on(
        "response",
        lambda response: response.status >= 400 and failed_responses.append(response.url),
    )
    sign_in(page, live_server, django_user_model)
    ARTIFACTS.mkdir(exist_ok=True)

    # 1 and 4: Add on an address that has a consent is refused, with a link to it, and the form
    # keeps what was typed.
    page.goto(f"{live_server.url}/admin/consents/marketingconsent/add/")
    page.select_option("#id_type", "EMAIL")
    page.fill("#id_address", "ANN@Example.com")
    page.select_option("#id_state", "CONFIRMED")
    page.fill("#id_reason", "Wants the newsletter again")
    page.select_option("#id_confirmation_source", "FORM")
    page.click("input[name=_save]")
    error = page.locator(".field-address .errorlist")
    assert "A consent for this email already exists." in error.inner_text()
    assert page.input_value("#id_address") == "ANN@Example.com"
    assert page.input_value("#id_reason") == "Wants the newsletter again"
    assert page.input_value("#id_state") == "CONFIRMED"
    error.locator("a", has_text="Open that consent").click()
    assert page.url.endswith(f"/admin/consents/marketingconsent/{ann.pk}/change/")
    ann.refresh_from_db()
    assert (ann.state, ann.revision) == ("REVOKED", 1)

    # 3: an invalid edit leaves every fact on the page as stored.
    page.goto(f"{live_server.url}/admin/consents/marketingconsent/{pia.pk}/change/")
    page.select_option("#id_state", "CONFIRMED")
    page.click("input[name=_save]")
    page.wait_for_selector(".errornote")
    assert "(Pending)" in page.locator("#content > h2").inner_text()
    assert "(Pending)" in page.locator(".breadcrumbs").inner_text()
    assert page.locator(".field-state_now .readonly").inner_text() == "Pending"
    link = page.input_value(".field-current_link input")
    assert "/_manage-consent/subscribe?token=" in link
    page.screenshot(path=str(ARTIFACTS / "admin-consent-page.png"), full_page=True)

    # 2: the link is text to copy, not an anchor; used in this browser, it records the staff user.
    assert page.locator("a[href*='_manage-consent']").count() == 0
    parts = urlsplit(link)
    page.goto(f"{live_server.url}{parts.path}?{parts.query}")
    page.click("button[type=submit]")
    page.wait_for_selector("text=You're subscribed")
    event = ConsentEvent.objects.latest("id")
    assert (event.door, event.actor, event.activity_opt_in_level) == (
        "LINK",
        "sam",
        "UNKNOWN_OPT_IN_LEVEL",
    )
    assert "by staff user 'sam'" in event.activity_description

    # 5: "select all" over every consent: a count and a sample, then batches through the ledger.
    page.goto(f"{live_server.url}/admin/consents/marketingconsent/")
    page.screenshot(path=str(ARTIFACTS / "admin-consent-list.png"))
    page.check("#action-toggle")
    page.click(".actions .question a")
    page.select_option("select[name=action]", "revoke_selected")
    page.click("button[name=index]")
    summary = page.locator("#revoke-summary").inner_text()
    assert summary.startswith("20,002 consents selected. 1 is revoked already")
    assert page.locator("#revoke-sample tbody tr").count() == 20
    page.screenshot(path=str(ARTIFACTS / "admin-revoke-confirmation.png"), full_page=True)
    page.fill("textarea[name=reason]", "Complaint 42: stop everything")
    # More than the request revokes itself: it records a revoke job for a worker, links to it.
    with mock.patch.object(tasks.run_revoke_job, "delay") as queued:
        page.click("input[type=submit][value='Revoke 20,002 consents']")
        page.wait_for_selector("text=Revoking 20,002 consents in the background, in batches.")
    job = RevokeJob.objects.get()
    queued.assert_called_once_with(job.id)
    assert MarketingConsent.objects.filter(state="REVOKED").count() == 1

    jobs.run_revoke_job(job.id)  # what the worker does with the queued job
    page.click(f"text=Revoke job {job.id}")
    page.wait_for_selector("text=Revoked 20001 consent(s); 1 were already revoked.")
    assert "20,002 of 20,002 (100%)" in page.content()

    assert not MarketingConsent.objects.exclude(state="REVOKED").exists()
    assert ConsentEvent.objects.filter(door="ADMIN", actor="sam").count() == 20_001

    # The event list does not count its 20,000 rows; members and keys fit the screen too.
    page.goto(f"{live_server.url}/admin/consents/consentevent/")
    assert "More than 10000 consent events" in page.locator(".paginator").inner_text()
    page.screenshot(path=str(ARTIFACTS / "admin-event-list.png"))
    MemberFactory.create_batch(3)
    ClientApiKeyFactory.create_batch(2)
    page.goto(f"{live_server.url}/admin/members/member/")
    page.screenshot(path=str(ARTIFACTS / "admin-member-list.png"))
    page.goto(f"{live_server.url}/admin/consents/clientapikey/")
    page.screenshot(path=str(ARTIFACTS / "admin-api-key-list.png"))
    ann.refresh_from_db()
    assert (ann.revision, ann.revoke_source) == (1, "FORM")
    assert failed_responses == []
