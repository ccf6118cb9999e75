"""The privacy actions in the admin: export, erase with a typed confirmation, the erasure
records, and a consent's receipt."""

import json

import pytest
from django.urls import reverse

from consents.addresses import erased_address
from consents.ledger import ChangeContext, ConfirmationActivity, ConsentChange, consent_upsert
from consents.models import ConsentEvent, MarketingConsent
from consents.privacy.models import Erasure
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

MEMBERS = "/admin/members/member/"
CONSENTS = "/admin/consents/marketingconsent/"


@pytest.fixture
def member() -> Member:
    member = MemberFactory(email="hedy@example.com", phone="", first_name="Hedy")
    change = ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(source="FORM"))
    consent_upsert(
        type="EMAIL",
        address="hedy@example.com",
        change=change,
        context=ChangeContext(door="CONSENT_API", actor="crm"),
    )
    return member


def action(client, url: str, name: str, pk, *, follow: bool = False, **fields):
    return client.post(url, {"action": name, "_selected_action": [pk], **fields}, follow=follow)


def test_export_from_a_member_downloads_the_persons_document(admin_client, member):
    response = action(admin_client, MEMBERS, "export_person_action", member.pk)

    assert response.status_code == 200
    assert response["Content-Disposition"] == 'attachment; filename="person-export.json"'
    document = json.loads(response.content)
    assert [m["email"] for m in document["members"]] == ["hedy@example.com"]
    assert [c["state"] for c in document["consents"]] == ["CONFIRMED"]


def test_export_from_a_consent_finds_the_member_by_its_address(admin_client, member):
    consent = MarketingConsent.objects.get()

    response = action(admin_client, CONSENTS, "export_person_action", consent.pk)

    assert [m["accountId"] for m in json.loads(response.content)["members"]] == [
        str(member.account_id)
    ]


def test_export_wants_exactly_one_row(admin_client, member):
    other = MemberFactory()

    response = admin_client.post(
        MEMBERS,
        {"action": "export_person_action", "_selected_action": [member.pk, other.pk]},
        follow=True,
    )

    assert "Select exactly one row." in response.content.decode()


def test_erase_asks_for_a_typed_confirmation_first(admin_client, member):
    response = action(admin_client, MEMBERS, "erase_person_action", member.pk)

    assert response.status_code == 200
    page = response.content.decode()
    assert "EMAIL h***@example.com" in page
    assert "Type ERASE to confirm." in page
    assert Erasure.objects.count() == 0


@pytest.mark.parametrize("word", ["", "erase", "yes"])
def test_erase_without_the_word_erases_nothing(admin_client, member, word):
    response = action(
        admin_client,
        MEMBERS,
        "erase_person_action",
        member.pk,
        confirm="yes",
        reason="Request 7",
        confirmation=word,
    )

    assert response.status_code == 200
    assert "Type ERASE to confirm." in response.content.decode()
    assert Erasure.objects.count() == 0
    assert Member.objects.get().email == "hedy@example.com"


def test_erase_with_the_word_erases_and_records_who_and_why(admin_client, member):
    response = action(
        admin_client,
        CONSENTS,
        "erase_person_action",
        MarketingConsent.objects.get().pk,
        confirm="yes",
        reason="Request 7",
        confirmation="ERASE",
        follow=True,
    )

    assert response.status_code == 200
    erasure = Erasure.objects.get()
    assert f"Erased 1 member(s) and 1 address(es); erasure record {erasure.pk}." in (
        response.content.decode()
    )
    assert (erasure.door, erasure.actor, erasure.reason) == ("ADMIN", "admin", "Request 7")
    assert MarketingConsent.objects.get().address == erased_address("hedy@example.com")
    assert ConsentEvent.objects.filter(kind="ERASED", actor="admin").count() == 1
    # The erasure is listed; the tombstone is not, as a consent.
    assert "Request 7" in admin_client.get("/admin/privacy/erasure/").content.decode()
    assert "erased:" not in admin_client.get(CONSENTS).content.decode()


def test_a_consents_page_links_its_receipt(admin_client, member):
    consent = MarketingConsent.objects.get()
    url = reverse("admin:privacy_consent_receipt", args=[consent.pk])

    page = admin_client.get(f"{CONSENTS}{consent.pk}/change/").content.decode()
    receipt = admin_client.get(url)

    assert f'href="{url}"' in page
    assert receipt.status_code == 200
    body = receipt.json()
    assert body["@type"] == "dpv:ConsentReceipt"
    assert body["dpv:hasRecordOfActivity"][0]["dct:identifier"] == str(consent.pk)


def test_the_receipt_needs_staff_who_may_see_consents(client, django_user_model, member):
    consent = MarketingConsent.objects.get()
    url = reverse("admin:privacy_consent_receipt", args=[consent.pk])
    client.force_login(django_user_model.objects.create_user("clerk", is_staff=True))

    assert client.get(url).status_code == 404
    client.logout()
    assert client.get(url).status_code == 302  # to the login page
