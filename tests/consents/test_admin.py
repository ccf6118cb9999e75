"""The staff admin: finding, proving and fixing consents (docs/design.md)."""

import csv
import io
from unittest import mock

import pytest
from django.contrib.auth.models import Permission
from django.db import connection
from django.test.utils import CaptureQueriesContext
from django.urls import reverse
from django.utils import timezone

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
)
from consents.ledger.changes import current_time
from consents.models import ConsentEvent, MarketingConsent
from consents.revocations import jobs, tasks
from consents.revocations.models import RevokeJob
from tests.factories import ClientApiKeyFactory, MarketingConsentFactory, MemberFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:consents_marketingconsent_changelist")
SYSTEM = ChangeContext(door="CONSENT_API", actor="crm-sync")


def make(address: str, state: str = "CONFIRMED", type: str = "EMAIL") -> MarketingConsent:
    change = {
        "CONFIRMED": ConsentChange(
            state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM")
        ),
        "PENDING": ConsentChange(state="PENDING", confirmation=ConfirmationActivity(source="FORM")),
        "REVOKED": ConsentChange(state="REVOKED", revoke=RevokeActivity(source="FORM")),
    }[state]
    return consent_upsert(type=type, address=address, change=change, context=SYSTEM).consent


def change_url(consent: MarketingConsent) -> str:
    return reverse("admin:consents_marketingconsent_change", args=[consent.pk])


@pytest.fixture
def viewer(client, django_user_model):
    """A staff user who may only view consents."""
    user = django_user_model.objects.create_user("viewer", password="pw", is_staff=True)
    user.user_permissions.add(
        *Permission.objects.filter(codename__in=["view_marketingconsent", "view_consentevent"])
    )
    client.force_login(user)
    return client


# --- list, search, filters ---------------------------------------------------------------------


def test_the_list_shows_the_columns_staff_need(admin_client):
    make("ann@example.com")

    response = admin_client.get(CHANGELIST)

    assert response.status_code == 200
    html = response.content.decode()
    row = html.split("<tbody>")[1].split("</tbody>")[0]
    for text in ["ann@example.com", '<td class="field-type">Email</td>', "Confirmed", "Revision"]:
        assert text in (row if text != "Revision" else html)


@pytest.mark.parametrize("term", ["ANN@Example.com", " ann@example.com ", "ann@"])
def test_search_finds_an_email_in_any_spelling(admin_client, term):
    make("ann@example.com")
    make("bob@example.com")

    response = admin_client.get(CHANGELIST, {"q": term})

    assert [c.address for c in response.context["cl"].result_list] == ["ann@example.com"]


@pytest.mark.parametrize("term", ["+1 415-555-0100", "(415) 555-0100", "4155550100"])
def test_search_finds_a_phone_in_any_spelling(admin_client, term):
    make("+14155550100", type="PHONE")
    make("+14155550111", type="PHONE")

    response = admin_client.get(CHANGELIST, {"q": term})

    assert [c.address for c in response.context["cl"].result_list] == ["+14155550100"]


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"state": "REVOKED"}, ["b@example.com"]),
        ({"type": "PHONE"}, ["+14155550100"]),
        ({"confirmation_source": "FORM", "state": "PENDING"}, ["c@example.com"]),
        ({"revoke_source": "FORM"}, ["b@example.com"]),
        (
            {"updated_date__year": str(timezone.now().year)},
            ["+14155550100", "a@example.com", "b@example.com", "c@example.com"],
        ),
    ],
)
def test_filters(admin_client, query, expected):
    make("a@example.com")
    make("b@example.com", "REVOKED")
    make("c@example.com", "PENDING")
    make("+14155550100", type="PHONE")

    response = admin_client.get(CHANGELIST, query)

    assert sorted(c.address for c in response.context["cl"].result_list) == expected


def test_the_list_takes_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    for n in range(30):
        make(f"p{n}@example.com")

    with django_assert_max_num_queries(12):
        assert admin_client.get(CHANGELIST).status_code == 200


# --- the consent page --------------------------------------------------------------------------


def test_the_consent_page_shows_its_link_and_every_event_newest_first(admin_client):
    consent = make("e@example.com", "PENDING")
    consent_upsert(
        type="EMAIL",
        address="e@example.com",
        change=ConsentChange(state="REVOKED", revoke=RevokeActivity()),
        context=SYSTEM,
    )
    consent = make("e@example.com")

    response = admin_client.get(change_url(consent))

    html = response.content.decode()
    assert "REVOKE_CONFIRMATION" in html
    assert "/_manage-consent/unsubscribe?token=" in html
    inline = response.context["inline_admin_formsets"][0]
    kinds = [form.original.kind for form in inline]
    revisions = [form.original.revision for form in inline]
    assert kinds == ["UPDATED", "UPDATED", "CREATED"]
    assert revisions == [3, 2, 1]


def post_change(client, consent, **fields):
    data = {
        "state": consent.state,
        "reason": "",
        "loaded_revision": consent.revision,
        "confirmation_source": "",
        "confirmation_opt_in_level": "SINGLE_CONFIRMATION",
        "revoke_source": "",
        "events-TOTAL_FORMS": "0",
        "events-INITIAL_FORMS": "0",
        "events-MIN_NUM_FORMS": "0",
        "events-MAX_NUM_FORMS": "0",
        **fields,
    }
    return client.post(change_url(consent), data)


def test_a_staff_change_goes_through_the_ledger_with_the_username(admin_client, admin_user):
    consent = make("f@example.com")

    response = post_change(
        admin_client, consent, state="REVOKED", revoke_source="IN_PERSON", reason="Asked by phone."
    )

    assert response.status_code == 302
    consent.refresh_from_db()
    assert (consent.state, consent.revoke_source, consent.revoke_description, consent.revision) == (
        "REVOKED",
        "IN_PERSON",
        "Asked by phone.",
        2,
    )
    event = ConsentEvent.objects.latest("id")
    assert (event.door, event.actor, event.kind, event.note) == (
        "ADMIN",
        admin_user.username,
        "UPDATED",
        "Asked by phone.",
    )


@pytest.mark.parametrize(
    ("fields", "error_field"),
    [
        ({"state": "REVOKED", "revoke_source": "", "reason": "x"}, "revoke_source"),
        ({"state": "CONFIRMED", "confirmation_source": "", "reason": "x"}, "confirmation_source"),
        ({"state": "REVOKED", "revoke_source": "FORM", "reason": ""}, "reason"),
    ],
)
def test_a_change_without_its_activity_or_reason_is_a_form_error(admin_client, fields, error_field):
    consent = make("g@example.com")

    response = post_change(admin_client, consent, **fields)

    assert response.status_code == 200
    assert error_field in response.context["adminform"].form.errors
    assert ConsentEvent.objects.count() == 1


def test_a_change_from_a_stale_page_is_refused(admin_client):
    consent = make("h@example.com")
    stale_revision = consent.revision
    make("h@example.com", "REVOKED")

    response = post_change(
        admin_client,
        consent,
        state="CONFIRMED",
        confirmation_source="FORM",
        reason="x",
        loaded_revision=stale_revision,
    )

    assert response.status_code == 200
    assert response.context["adminform"].form.non_field_errors() == [
        "Nothing was changed: The consent is at revision 2, not 1. Someone changed it meanwhile: "
        "reload this page to see that change."
    ]
    consent.refresh_from_db()
    assert consent.state == "REVOKED"
    assert ConsentEvent.objects.filter(door="ADMIN").count() == 0


def test_address_and_type_are_read_only_after_creation(admin_client):
    consent = make("i@example.com")

    form = admin_client.get(change_url(consent)).context["adminform"].form

    assert "address" not in form.fields
    assert "type" not in form.fields


def test_staff_can_add_a_consent_through_the_ledger(admin_client):
    response = admin_client.post(
        reverse("admin:consents_marketingconsent_add"),
        {
            "type": "EMAIL",
            "address": "New@Example.com",
            "state": "REVOKED",
            "revoke_source": "IN_PERSON",
            "reason": "Said so at the desk.",
            "confirmation_opt_in_level": "SINGLE_CONFIRMATION",
            "events-TOTAL_FORMS": "0",
            "events-INITIAL_FORMS": "0",
            "events-MIN_NUM_FORMS": "0",
            "events-MAX_NUM_FORMS": "0",
        },
    )

    assert response.status_code == 302
    consent = MarketingConsent.objects.get()
    assert (consent.address, consent.state) == ("new@example.com", "REVOKED")
    assert ConsentEvent.objects.get().door == "ADMIN"


# --- actions -----------------------------------------------------------------------------------


def test_revoke_selected_asks_for_a_reason_first(admin_client):
    consent = make("j@example.com")

    response = admin_client.post(
        CHANGELIST, {"action": "revoke_selected", "_selected_action": [consent.pk]}
    )

    assert response.status_code == 200
    assert b'<input type="submit" value="Revoke 1 consent">' in response.content
    assert MarketingConsent.objects.get().state == "CONFIRMED"


def test_revoke_selected_revokes_through_the_ledger_and_counts(admin_client, admin_user):
    active = [make("k@example.com"), make("l@example.com", "PENDING")]
    already = make("m@example.com", "REVOKED")

    response = admin_client.post(
        CHANGELIST,
        {
            "action": "revoke_selected",
            "_selected_action": [c.pk for c in [*active, already]],
            "confirm": "yes",
            "reason": "Complaint #42",
        },
        follow=True,
    )

    messages = [str(m) for m in response.context["messages"]]
    assert messages == ["Revoked 2 consent(s); 1 were already revoked."]
    assert set(MarketingConsent.objects.values_list("state", flat=True)) == {"REVOKED"}
    admin_events = ConsentEvent.objects.filter(door="ADMIN")
    assert sorted(e.address for e in admin_events) == ["k@example.com", "l@example.com"]
    assert {(e.actor, e.activity_source, e.activity_description) for e in admin_events} == {
        (admin_user.username, "OTHER", "Complaint #42")
    }


def test_export_selected_streams_the_export_columns(admin_client):
    consents = [make("n@example.com"), make("o@example.com", "REVOKED")]

    response = admin_client.post(
        CHANGELIST, {"action": "export_selected_csv", "_selected_action": [c.pk for c in consents]}
    )

    assert response.streaming
    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert rows[0] == ["type", "address", "state", "source", "opt_in_level", "description", "date"]
    assert sorted(row[1:4] for row in rows[1:]) == [
        ["n@example.com", "CONFIRMED", "FORM"],
        ["o@example.com", "REVOKED", "FORM"],
    ]


def test_export_selected_neutralises_cells_a_spreadsheet_would_run(admin_client):
    consent = consent_upsert(
        type="EMAIL",
        address="q@example.com",
        change=ConsentChange(
            state="CONFIRMED",
            confirmation=ConfirmationActivity(source="FORM", description="=1+1"),
        ),
        context=SYSTEM,
    ).consent
    phone = make("+14155550123", type="PHONE")

    response = admin_client.post(
        CHANGELIST,
        {"action": "export_selected_csv", "_selected_action": [consent.pk, phone.pk]},
    )

    rows = list(csv.reader(io.StringIO(b"".join(response.streaming_content).decode())))
    assert sorted((row[1], row[5]) for row in rows[1:]) == [
        ("'+14155550123", ""),
        ("q@example.com", "'=1+1"),
    ]


# --- events, keys, index -----------------------------------------------------------------------


def test_events_are_read_only_even_for_superusers(admin_client):
    make("p@example.com")
    event = ConsentEvent.objects.get()
    change = reverse("admin:consents_consentevent_change", args=[event.pk])

    assert admin_client.get(reverse("admin:consents_consentevent_add")).status_code == 403
    assert admin_client.post(change, {"actor": "someone else"}).status_code == 403
    delete = reverse("admin:consents_consentevent_delete", args=[event.pk])
    assert admin_client.post(delete, {"post": "yes"}).status_code == 403
    assert ConsentEvent.objects.get().actor == "crm-sync"
    assert admin_client.get(change).status_code == 200


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"q": "Q@Example.com"}, ["q@example.com"]),
        ({"q": "crm-sync"}, ["q@example.com", "r@example.com"]),
        ({"kind": "CREATED", "state": "REVOKED"}, ["r@example.com"]),
        ({"door": "ADMIN"}, []),
    ],
)
def test_events_search_and_filters(admin_client, query, expected):
    make("q@example.com")
    make("r@example.com", "REVOKED")

    response = admin_client.get(reverse("admin:consents_consentevent_changelist"), query)

    assert sorted(e.address for e in response.context["cl"].result_list) == expected


def test_api_keys_are_listed_and_can_be_revoked(admin_client):
    key = ClientApiKeyFactory(name="crm")

    listing = admin_client.get(reverse("admin:consents_clientapikey_changelist"))
    page = admin_client.get(reverse("admin:consents_clientapikey_change", args=[key.pk]))

    assert b"crm" in listing.content
    assert b"revoked" in page.content.lower()


def test_the_index_shows_counts_by_state(admin_client):
    make("s@example.com")
    make("t@example.com")
    make("u@example.com", "REVOKED")

    html = admin_client.get(reverse("admin:index")).content.decode()

    assert "Consents by state" in html
    assert '<th scope="row">Confirmed</th><td>2</td>' in html
    assert '<th scope="row">Revoked</th><td>1</td>' in html
    assert '<th scope="row">Pending</th><td>0</td>' in html


# --- permissions -------------------------------------------------------------------------------


def test_only_staff_reach_the_admin(client, django_user_model):
    user = django_user_model.objects.create_user("customer", password="pw")
    client.force_login(user)

    response = client.get(CHANGELIST)

    assert response.status_code == 302
    assert "/admin/login/" in response["Location"]


def test_a_viewer_sees_but_cannot_change_or_revoke(viewer):
    consent = make("v@example.com")

    page = viewer.get(change_url(consent))
    listing = viewer.get(CHANGELIST)
    attempt = viewer.post(
        CHANGELIST,
        {
            "action": "revoke_selected",
            "_selected_action": [consent.pk],
            "confirm": "yes",
            "reason": "x",
        },
    )

    assert page.status_code == 200
    assert "state" not in page.context["adminform"].form.fields
    assert "revoke_selected" not in listing.context["cl"].model_admin.get_actions(
        listing.wsgi_request
    )
    assert attempt.status_code in (200, 302)
    assert MarketingConsent.objects.get().state == "CONFIRMED"
    assert not ConsentEvent.objects.filter(door="ADMIN").exists()


def test_the_member_page_links_to_its_consents(admin_client):
    member = MemberFactory(email="w@example.com", phone="+14155550177")
    consent = make("w@example.com")

    html = admin_client.get(
        reverse("admin:members_member_change", args=[member.pk])
    ).content.decode()

    assert change_url(consent) in html
    assert "+14155550177" in html


def test_deleting_in_the_admin_goes_through_the_ledger(admin_client, admin_user):
    consent = make("x@example.com")

    response = admin_client.post(
        reverse("admin:consents_marketingconsent_delete", args=[consent.pk]), {"post": "yes"}
    )

    assert response.status_code == 302
    assert not MarketingConsent.objects.exists()
    event = ConsentEvent.objects.latest("id")
    assert (event.kind, event.door, event.actor) == ("DELETED", "ADMIN", admin_user.username)


def test_only_our_api_keys_are_in_the_admin(admin_client):
    html = admin_client.get(reverse("admin:index")).content.decode()

    assert "/admin/rest_framework_api_key/" not in html
    assert "/admin/consents/clientapikey/" in html


# --- round 2: safety and reading --------------------------------------------------------------

ADD = reverse("admin:consents_marketingconsent_add")
EMPTY_INLINE = {
    "events-TOTAL_FORMS": "0",
    "events-INITIAL_FORMS": "0",
    "events-MIN_NUM_FORMS": "0",
    "events-MAX_NUM_FORMS": "0",
}


def test_add_refuses_an_address_that_has_a_consent_and_links_to_it(admin_client):
    existing = make("ann@example.com", "REVOKED")

    response = admin_client.post(
        ADD,
        {
            "type": "EMAIL",
            "address": " ANN@Example.com",
            "state": "CONFIRMED",
            "confirmation_source": "FORM",
            "confirmation_opt_in_level": "SINGLE_CONFIRMATION",
            "reason": "Wants it again",
            **EMPTY_INLINE,
        },
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert form.errors["address"] == [
        f'A consent for this email already exists. <a href="{change_url(existing)}">Open that '
        "consent</a> to change it there, with a reason."
    ]
    assert (form.data["address"], form.data["reason"]) == (" ANN@Example.com", "Wants it again")
    existing.refresh_from_db()
    assert (existing.state, existing.revision) == ("REVOKED", 1)
    assert ConsentEvent.objects.count() == 1


def test_an_invalid_add_shows_the_errors_on_the_filled_form(admin_client):
    response = admin_client.post(
        ADD,
        {
            "type": "PHONE",
            "address": "not a phone",
            "state": "REVOKED",
            "revoke_source": "IN_PERSON",
            "reason": "At the desk",
            "confirmation_opt_in_level": "SINGLE_CONFIRMATION",
            **EMPTY_INLINE,
        },
    )

    assert response.status_code == 200
    form = response.context["adminform"].form
    assert list(form.errors) == ["address"]
    assert form.errors["address"][0].startswith("Nothing was changed: ")
    html = response.content.decode()
    assert 'value="not a phone"' in html
    assert "At the desk</textarea>" in html
    assert not MarketingConsent.objects.exists()


def test_an_invalid_edit_shows_the_stored_consent_not_the_posted_one(admin_client):
    consent = make("pia@example.com", "PENDING")

    response = post_change(admin_client, consent, state="CONFIRMED", reason="")

    assert response.status_code == 200
    html = response.content.decode()
    assert response.context["original"].state == "PENDING"
    assert "<h2>Email pia@example.com (Pending)</h2>" in html
    assert '<div class="readonly">Pending</div>' in html
    assert "/_manage-consent/subscribe?token=" in html
    assert "/_manage-consent/unsubscribe?token=" not in html
    consent.refresh_from_db()
    assert (consent.state, consent.revision) == ("PENDING", 1)


def test_the_consent_page_shows_its_link_as_text_to_copy_not_an_anchor(admin_client):
    consent = make("q@example.com")

    html = admin_client.get(change_url(consent)).content.decode()

    assert (
        '<input type="text" readonly class="vLargeTextField" aria-label="Unsubscribe link"' in html
    )
    assert 'href="http://127.0.0.1:8000/_manage-consent' not in html


def test_revoke_with_select_across_carries_the_filters_not_the_rows(admin_client, admin_user):
    on_page = [make(f"a{n}@example.com") for n in range(3)]
    make("+14155550100", type="PHONE")
    make("b@example.com", "REVOKED")
    url = f"{CHANGELIST}?type__exact=EMAIL"
    selection = {
        "action": "revoke_selected",
        "select_across": "1",
        "_selected_action": [c.pk for c in on_page],
    }

    page = admin_client.post(url, {**selection, "index": "0"})

    html = page.content.decode()
    assert "<strong>4 consents selected.</strong>" in html
    assert "1 is revoked already and will be left as it is." in html
    assert html.count('name="_selected_action"') == 3
    assert '<input type="hidden" name="select_across" value="1">' in html

    done = admin_client.post(
        url,
        {**selection, "confirm": "yes", "reason": "Complaint 7"},
        follow=True,
    )

    assert [str(m) for m in done.context["messages"]] == [
        "Revoked 3 consent(s); 1 were already revoked."
    ]
    assert dict(MarketingConsent.objects.values_list("address", "state")) == {
        "a0@example.com": "REVOKED",
        "a1@example.com": "REVOKED",
        "a2@example.com": "REVOKED",
        "b@example.com": "REVOKED",
        "+14155550100": "CONFIRMED",
    }


def revoke_every_consent(admin_client, count: int, reason: str):
    """`count` consents in the ledger, all selected with "Select all" and revoked through the
    admin's action: the confirmation page and the answer to confirming it."""
    MarketingConsent.objects.bulk_create(
        MarketingConsentFactory.build_batch(count), batch_size=2000
    )
    one = MarketingConsent.objects.first()
    selection = {"action": "revoke_selected", "select_across": "1", "_selected_action": [one.pk]}
    page = admin_client.post(CHANGELIST, {**selection, "index": "0"})
    done = admin_client.post(
        CHANGELIST, {**selection, "confirm": "yes", "reason": reason}, follow=True
    )
    return page, done


def test_revoke_selected_revokes_as_many_as_the_limit_in_the_request(admin_client, settings):
    limit = settings.REVOKE_IN_REQUEST_MAX

    page, done = revoke_every_consent(admin_client, limit, "Complaint 8")

    assert f"<strong>{limit:,} consents selected.</strong>".encode() in page.content
    assert [str(m) for m in done.context["messages"]] == [
        f"Revoked {limit} consent(s); 0 were already revoked."
    ]
    assert not MarketingConsent.objects.exclude(state="REVOKED").exists()
    assert ConsentEvent.objects.filter(door="ADMIN", kind="UPDATED").count() == limit


def test_revoke_selected_is_tested_with_20000_consents(admin_client):
    with mock.patch.object(tasks.run_revoke_job, "delay") as queued:
        page, done = revoke_every_consent(admin_client, 20_000, "Complaint 8")

    job = RevokeJob.objects.get()
    queued.assert_called_once_with(job.id)
    assert b"<strong>20,000 consents selected.</strong>" in page.content
    assert page.content.count(b"<tr><td>person") == 20
    job_url = reverse("admin:consents_revokejob_change", args=[job.id])
    assert [str(m) for m in done.context["messages"]] == [
        "Revoking 20,000 consents in the background, in batches. "
        f'<a href="{job_url}">Revoke job {job.id}</a> shows its progress, and what was done '
        "once finished."
    ]
    assert MarketingConsent.objects.filter(state="REVOKED").count() == 0

    finished = jobs.run_revoke_job(job.id)

    assert (finished.status, finished.done) == ("DONE", 20_000)
    assert finished.summary == "Revoked 20000 consent(s); 0 were already revoked."
    assert not MarketingConsent.objects.exclude(state="REVOKED").exists()
    assert ConsentEvent.objects.filter(door="ADMIN", kind="UPDATED").count() == 20_000


def test_dates_show_seconds_and_utc_everywhere(admin_client):
    consent = make("d@example.com")
    stamp = f"{consent.updated_date:%Y-%m-%d %H:%M:%S} UTC"
    confirmed = f"{consent.confirmation_date:%Y-%m-%d %H:%M:%S} UTC"
    event = ConsentEvent.objects.get()
    recorded = f"{event.recorded_at:%Y-%m-%d %H:%M:%S} UTC"

    listing = admin_client.get(CHANGELIST).content.decode()
    page = admin_client.get(change_url(consent)).content.decode()
    events = admin_client.get(reverse("admin:consents_consentevent_changelist")).content.decode()

    assert f'<td class="field-updated_date nowrap">{stamp}</td>' in listing
    assert f"Form, Unknown level, {confirmed} — " in page
    assert f"<p>{recorded}</p>" in page  # the events inline
    assert (
        f'<a href="{reverse("admin:consents_consentevent_change", args=[event.pk])}">{recorded}</a>'
        in events
    )


def test_labels_read_as_words(admin_client):
    make("w@example.com", "REVOKED")

    events = admin_client.get(reverse("admin:consents_consentevent_changelist")).content.decode()
    listing = admin_client.get(CHANGELIST).content.decode()

    assert '<td class="field-door">Consent API</td>' in events
    assert '<td class="field-kind">Created</td>' in events
    assert '<td class="field-state">Revoked</td>' in listing
    assert ">Unsubscribe link</a>" in listing  # the revoke source filter
    assert "CONSENT_API<" not in events
    assert "REVOKED<" not in listing


def test_lists_are_newest_change_first(admin_client):
    # The ledger stores times to the millisecond: each change in a millisecond of its own, or
    # two would tie (a write takes less than a millisecond on PostgreSQL).
    for address, state in [("old", "CONFIRMED"), ("new", "CONFIRMED"), ("old", "REVOKED")]:
        started = current_time()
        while current_time() == started:
            pass
        make(f"{address}@example.com", state)  # the last makes "old" the newest change

    consents = admin_client.get(CHANGELIST).context["cl"].result_list
    events = admin_client.get(reverse("admin:consents_consentevent_changelist")).context["cl"]
    keys = [ClientApiKeyFactory(name="first"), ClientApiKeyFactory(name="second")]
    key_list = admin_client.get(reverse("admin:consents_clientapikey_changelist")).context["cl"]

    assert [c.address for c in consents] == ["old@example.com", "new@example.com"]
    assert next(e.address for e in events.result_list) == "old@example.com"
    assert next(e.kind for e in events.result_list) == "UPDATED"
    assert [k.name for k in key_list.result_list] == [keys[1].name, keys[0].name]


def test_the_event_list_counts_at_most_its_cap(admin_client, monkeypatch):
    from consents.admin import CappedCountPaginator

    monkeypatch.setattr(CappedCountPaginator, "cap", 3)
    for n in range(5):
        make(f"e{n}@example.com")
    url = reverse("admin:consents_consentevent_changelist")

    with CaptureQueriesContext(connection) as queries:
        response = admin_client.get(url)

    counts = [q["sql"] for q in queries if "COUNT(" in q["sql"].upper()]
    assert counts and all("LIMIT 4" in sql for sql in counts)
    html = response.content.decode()
    assert "More than 3 consent events: filter by door, kind or date" in html
    assert "More than 3 results" in html


def test_the_site_names_the_product_links_the_api_docs_and_has_a_favicon(admin_client, client):
    html = admin_client.get(reverse("admin:index")).content.decode()
    icon = client.get("/favicon.svg")

    assert '<a href="/admin/">consentsite: the consent ledger</a>' in html
    assert "<title>Consents, their proof, members and API keys | consentsite admin</title>" in html
    assert '<a href="/api/docs/">View site</a>' in html
    assert '<link rel="icon" href="/favicon.svg" type="image/svg+xml">' in html
    assert 'id="nav-sidebar"' not in html  # lists get the screen's width
    assert (icon.status_code, icon["Content-Type"]) == (200, "image/svg+xml")
    assert icon.content.startswith(b"<svg")
    assert client.get("/favicon.ico")["Location"] == "/favicon.svg"
