"""The members' selectors (members/selectors.py): what each read answers, and its queries,
pinned on SQLite and on PostgreSQL (DATABASE_URL)."""

import uuid
from datetime import timedelta

import pytest
from django.utils import timezone

from consents.addresses import erased_address
from consents.exceptions import InvalidAddress
from members.exceptions import AmbiguousIdentifier
from members.models import Member, MemberSession
from members.selectors import (
    active_session,
    consents_of_member,
    member_identified_by,
    members_with_address,
    members_with_any_id,
    members_with_loyalty_or_external_id,
)
from tests.factories import (
    ClientApiKeyFactory,
    MarketingConsentFactory,
    MemberFactory,
    MemberSessionFactory,
)

pytestmark = pytest.mark.django_db


def fields(instance) -> dict:
    return {field.attname: getattr(instance, field.attname) for field in instance._meta.fields}


def test_an_active_session_is_one_query_and_reads_as_the_orm_does(django_assert_num_queries):
    member = MemberFactory(email="ada@example.com", phone="+14155550123", external_id="crm-7")
    started = MemberSessionFactory(correlation_id="corr-ada", member=member, channel="APP")

    with django_assert_num_queries(1):
        session = active_session("corr-ada", started.api_key)
        found_member = session.member  # read with the session, no second query

    assert fields(session) == fields(MemberSession.objects.get(pk=started.pk))
    assert fields(found_member) == fields(Member.objects.get(pk=member.pk))
    assert session._state.adding is False and session._state.db == "default"


def test_a_session_is_found_only_by_the_client_that_started_it():
    MemberSessionFactory(correlation_id="corr-ada")

    assert active_session("corr-ada", ClientApiKeyFactory()) is None


def test_an_expired_or_unknown_session_is_none():
    expired = MemberSessionFactory(
        correlation_id="corr-old", expires_at=timezone.now() - timedelta(seconds=1)
    )

    assert active_session("corr-old", expired.api_key) is None
    assert active_session("corr-unknown", expired.api_key) is None


# --- the member a path's identifier names ------------------------------------------------------


@pytest.fixture
def ada():
    return MemberFactory(
        account_id=uuid.UUID(int=7),
        loyalty_id="LOY-ADA",
        external_id="crm-7",
        email="ada@example.com",
        phone="+14155550123",
    )


@pytest.mark.parametrize(
    ("identifier_type", "identifier"),
    [
        ("ACCOUNT_ID", "00000000-0000-0000-0000-000000000007"),
        ("ACCOUNT_ID", "00000000000000000000000000000007"),
        ("LOYALTY_ID", "LOY-ADA"),
        ("EXTERNAL_ID", "crm-7"),
        ("EMAIL", "  Ada@EXAMPLE.com "),  # normalised as it is stored
        ("PHONE_NUMBER", "(415) 555-0123"),
    ],
)
def test_a_member_is_found_by_each_identifier_in_one_query(
    ada, django_assert_num_queries, identifier_type, identifier
):
    MemberFactory()  # another member

    with django_assert_num_queries(1):
        found = member_identified_by(identifier_type, identifier)

    assert fields(found) == fields(Member.objects.get(pk=ada.pk))


@pytest.mark.parametrize(
    ("identifier_type", "identifier"),
    [
        ("ACCOUNT_ID", "00000000-0000-0000-0000-000000000008"),
        ("LOYALTY_ID", "loy-ada"),  # ids are compared exactly
        ("EXTERNAL_ID", "LOY-ADA"),  # another type's identifier
        ("EMAIL", "bob@example.com"),
        ("PHONE_NUMBER", "+14155550124"),
    ],
)
def test_an_identifier_no_member_has_is_none(
    ada, django_assert_num_queries, identifier_type, identifier
):
    with django_assert_num_queries(1):
        assert member_identified_by(identifier_type, identifier) is None


def test_an_account_id_that_is_no_uuid_names_no_one_without_a_query(ada, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert member_identified_by("ACCOUNT_ID", "LOY-ADA") is None


@pytest.mark.parametrize(
    ("identifier_type", "identifier"), [("EMAIL", "ada@"), ("PHONE_NUMBER", "not a phone")]
)
def test_an_invalid_address_is_refused_without_a_query(
    django_assert_num_queries, identifier_type, identifier
):
    with django_assert_num_queries(0), pytest.raises(InvalidAddress):
        member_identified_by(identifier_type, identifier)


@pytest.mark.parametrize(
    ("identifier_type", "identifier"),
    [("EMAIL", "shared@example.com"), ("PHONE_NUMBER", "+14155550199")],
)
def test_an_identifier_two_members_share_is_ambiguous_in_one_query(
    django_assert_num_queries, identifier_type, identifier
):
    MemberFactory.create_batch(3, email="shared@example.com", phone="+14155550199")

    with django_assert_num_queries(1), pytest.raises(AmbiguousIdentifier):
        member_identified_by(identifier_type, identifier)


# --- privacy requests: the members a person is -------------------------------------------------


def test_the_members_with_an_address_are_all_of_them_by_id_in_one_query(
    django_assert_num_queries,
):
    first = MemberFactory(email="shared@example.com", phone="+14155550199")
    second = MemberFactory(email="shared@example.com", phone="+14155550100")
    third = MemberFactory(email="other@example.com", phone="+14155550199")
    MemberFactory(email="Shared@example.com", phone="+141555501990")  # compared exactly

    with django_assert_num_queries(1):
        by_email = list(members_with_address("EMAIL", "shared@example.com"))
    with django_assert_num_queries(1):
        by_phone = list(members_with_address("PHONE", "+14155550199"))

    assert by_email == [first, second]
    assert by_phone == [first, third]
    assert list(members_with_address("PHONE", "shared@example.com")) == []


def test_the_members_with_any_id_match_an_account_loyalty_or_external_id(
    ada, django_assert_num_queries
):
    by_external = MemberFactory(external_id="LOY-ADA")
    by_loyalty = MemberFactory(loyalty_id="crm-7")
    MemberFactory(loyalty_id="loy-ada")  # compared exactly

    with django_assert_num_queries(0):
        members = members_with_any_id("LOY-ADA")  # no query until evaluated
    with django_assert_num_queries(1):
        assert members.exists()
    with django_assert_num_queries(1):
        assert list(members) == [ada, by_external]
    assert list(members_with_any_id("crm-7")) == [ada, by_loyalty]
    assert list(members_with_any_id("00000000-0000-0000-0000-000000000007")) == [ada]
    assert list(members_with_any_id("00000000000000000000000000000007")) == [ada]


def test_an_id_no_member_has_finds_none(ada, django_assert_num_queries):
    with django_assert_num_queries(1):
        assert not members_with_any_id("nobody").exists()
    assert list(members_with_any_id("00000000-0000-0000-0000-000000000008")) == []


# --- the member import: the stored members a batch names ----------------------------------------


def test_the_members_with_loyalty_or_external_ids_are_either_by_id(django_assert_num_queries):
    by_loyalty = MemberFactory(loyalty_id="L-1", external_id=None)
    by_external = MemberFactory(loyalty_id=None, external_id="E-2")
    MemberFactory(loyalty_id="E-2", external_id="L-1")  # each id in the other column
    MemberFactory(loyalty_id="l-1", external_id=None)  # compared exactly
    both = MemberFactory(loyalty_id="L-3", external_id="E-3")

    with django_assert_num_queries(0):
        members = members_with_loyalty_or_external_id(["L-1", "", "L-3"], ["E-2", "", "E-3"])
    with django_assert_num_queries(1):
        assert list(members) == [by_loyalty, by_external, both]
    assert list(members_with_loyalty_or_external_id({"L-3"}, set())) == [both]
    assert list(members_with_loyalty_or_external_id(set(), {"E-3"})) == [both]


def test_empty_ids_name_no_member_without_a_query(ada, django_assert_num_queries):
    with django_assert_num_queries(0):
        assert list(members_with_loyalty_or_external_id({""}, {""})) == []


# --- the admin: the consents of a member's addresses ------------------------------------------


def test_a_members_consents_are_its_emails_then_its_phones_one_query_each(
    ada, django_assert_num_queries
):
    phone = MarketingConsentFactory(type="PHONE", address="+14155550123")
    email = MarketingConsentFactory(address="ada@example.com", state="PENDING")
    MarketingConsentFactory(type="PHONE", address="ada@example.com")  # another type's
    MarketingConsentFactory(address="Ada@example.com")  # compared exactly

    with django_assert_num_queries(2):
        assert consents_of_member(ada) == [email, phone]


def test_a_member_without_a_phone_asks_for_its_email_only(django_assert_num_queries):
    member = MemberFactory(email="bob@example.com", phone="")
    # An erased address's tombstone is stored under its hash.
    MarketingConsentFactory(
        address=erased_address("bob@example.com"), state="REVOKED", revoke_date=timezone.now()
    )

    nothing = MemberFactory(email="", phone="")

    with django_assert_num_queries(1):
        assert consents_of_member(member) == []
    with django_assert_num_queries(0):
        assert consents_of_member(nothing) == []
