import pytest
from rest_framework.test import APIClient

from consents.models import ClientApiKey
from members.models import Member, MemberSession
from tests.factories import MemberFactory, MemberSessionFactory


@pytest.fixture
def member(db) -> Member:
    return MemberFactory(email="ada@example.com", phone="+14155550123", loyalty_id="LOY-ADA")


@pytest.fixture
def session(member: Member, api_key: ClientApiKey) -> MemberSession:
    """An active WEBSITE session of `member`, correlation id `corr-ada`, started by `api_key`."""
    return MemberSessionFactory(correlation_id="corr-ada", member=member, api_key=api_key)


@pytest.fixture
def anonymous_client() -> APIClient:
    """A client without an API key."""
    return APIClient()
