"""The members' selectors (members/selectors.py): what each read answers, and its queries,
pinned on SQLite and on PostgreSQL (DATABASE_URL)."""

from datetime import timedelta

import pytest
from django.utils import timezone

from members.models import Member, MemberSession
from members.selectors import active_session
from tests.factories import ClientApiKeyFactory, MemberFactory, MemberSessionFactory

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
