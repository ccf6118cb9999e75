"""The member list of the staff admin: any identifier, any spelling, consent states at a glance."""

import pytest
from django.urls import reverse

from consents.ledger import ChangeContext, ConsentChange, RevokeActivity, consent_upsert
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

CHANGELIST = reverse("admin:members_member_changelist")


@pytest.fixture
def alice(db):
    member = MemberFactory(
        loyalty_id="LOY-ALICE",
        external_id="crm-77",
        email="alice@example.com",
        phone="+14155550100",
    )
    MemberFactory(email="other@example.com", phone="+14155550199")
    return member


@pytest.mark.parametrize(
    "term",
    ["+1 415-555-0100", "(415) 555-0100", "ALICE@Example.com", "LOY-ALICE", "crm-77", "alice"],
)
def test_search_finds_a_member_by_any_identifier_in_any_spelling(admin_client, alice, term):
    response = admin_client.get(CHANGELIST, {"q": term})

    assert list(response.context["cl"].result_list) == [alice]


def test_search_by_account_id(admin_client, alice):
    response = admin_client.get(CHANGELIST, {"q": str(alice.account_id)})

    assert list(response.context["cl"].result_list) == [alice]


def test_the_list_shows_each_members_consent_states(admin_client, alice):
    consent_upsert(
        type="PHONE",
        address="+14155550100",
        change=ConsentChange(state="REVOKED", revoke=RevokeActivity()),
        context=ChangeContext(door="CONSENT_API", actor="crm"),
    )

    response = admin_client.get(CHANGELIST)

    row = next(m for m in response.context["cl"].result_list if m.pk == alice.pk)
    assert (row.email_state, row.sms_state) == (None, "REVOKED")
    html = response.content.decode()
    assert '<td class="field-sms_consent">Revoked</td>' in html
    assert '<td class="field-email_consent">—</td>' in html


def test_the_list_takes_a_fixed_number_of_queries(admin_client, django_assert_max_num_queries):
    for _ in range(30):
        MemberFactory()

    with django_assert_max_num_queries(10):
        assert admin_client.get(CHANGELIST).status_code == 200


def test_a_member_saved_in_the_admin_is_stored_normalised(admin_client):
    response = admin_client.post(
        reverse("admin:members_member_add"),
        {"email": " Zoe@Example.COM ", "phone": "(415) 555-0142", "loyalty_id": "LOY-Z"},
    )

    assert response.status_code == 302
    member = MemberFactory._meta.model.objects.get(loyalty_id="LOY-Z")
    assert (member.email, member.phone) == ("zoe@example.com", "+14155550142")


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ({"has_email": "yes"}, ["LOY-MAIL", "LOY-BOTH"]),
        ({"has_email": "no"}, ["LOY-PHONE"]),
        ({"has_phone": "yes"}, ["LOY-PHONE", "LOY-BOTH"]),
        ({"has_phone": "no", "has_email": "yes"}, ["LOY-MAIL"]),
        ({"created_at__gte": "2000-01-01 00:00:00+00:00"}, ["LOY-MAIL", "LOY-PHONE", "LOY-BOTH"]),
        ({"created_at__lt": "2000-01-01 00:00:00+00:00"}, []),
    ],
)
def test_members_filter_on_email_phone_and_created(admin_client, query, expected):
    MemberFactory(loyalty_id="LOY-MAIL", email="m@example.com", phone="")
    MemberFactory(loyalty_id="LOY-PHONE", email="", phone="+14155550111")
    MemberFactory(loyalty_id="LOY-BOTH", email="b@example.com", phone="+14155550122")

    response = admin_client.get(CHANGELIST, query)

    assert sorted(m.loyalty_id for m in response.context["cl"].result_list) == sorted(expected)
    assert response.context["cl"].has_filters
