"""POST /client/users/<identifier>/sessions (docs/member-api.md)."""

import threading
from datetime import timedelta
from typing import Any

import pytest
from django.db import connection
from django.utils import timezone
from rest_framework.test import APIClient

from consents.models import ConsentEvent
from members.models import Member, MemberSession
from tests.factories import ClientApiKeyFactory, MemberFactory, MemberSessionFactory

URL = "/client/users/{}/sessions"
BODY = {"correlationId": "corr-1", "channel": "WEBSITE"}


def start(client: APIClient, identifier: Any, body: Any = BODY, **extra: Any) -> Any:
    return client.post(URL.format(identifier), body, format="json", **extra)


def error(status: int, code: str, message: str) -> dict[str, Any]:
    return {"statusCode": status, "errorCode": code, "errorMessage": message}


def invalid(message: str) -> dict[str, Any]:
    return error(400, "INVALID_REQUEST", message)


def iso(moment: Any) -> str:
    return moment.isoformat(timespec="milliseconds").replace("+00:00", "Z")


@pytest.fixture
def frozen_now(monkeypatch: pytest.MonkeyPatch) -> Any:
    """Stop the clock at a fixed moment; returns a function that moves it."""
    moment = [timezone.now().replace(microsecond=123000)]
    monkeypatch.setattr(timezone, "now", lambda: moment[0])

    def move(**delta: float) -> Any:
        moment[0] += timedelta(**delta)
        return moment[0]

    move.now = lambda: moment[0]
    return move


def test_starting_a_session_by_account_id_binds_it_to_the_member(
    api_client: APIClient, member: Member, frozen_now: Any
) -> None:
    response = start(api_client, member.account_id)

    assert response.status_code == 200
    expires_at = frozen_now.now() + timedelta(seconds=3600)
    assert response.json() == {
        "correlationId": "corr-1",
        "accountId": str(member.account_id),
        "loyaltyId": "LOY-ADA",
        "expiresAt": iso(expires_at),
    }
    session = MemberSession.objects.get()
    assert (session.correlation_id, session.member, session.channel) == (
        "corr-1",
        member,
        "WEBSITE",
    )
    assert (session.created_at, session.expires_at) == (frozen_now.now(), expires_at)


@pytest.mark.parametrize(
    ("identifier_type", "identifier"),
    [
        ("ACCOUNT_ID", "{account_id}"),
        ("ACCOUNT_ID", "{account_id_upper}"),
        ("LOYALTY_ID", "LOY-ADA"),
        ("EXTERNAL_ID", "crm:ada"),
        ("EMAIL", "  Ada@EXAMPLE.com "),
        ("PHONE_NUMBER", "(415) 555-0123"),
        ("PHONE_NUMBER", "+1 415 555 0123"),
    ],
)
def test_each_identifier_type_finds_the_member(
    api_client: APIClient, member: Member, identifier_type: str, identifier: str
) -> None:
    Member.objects.filter(pk=member.pk).update(external_id="crm:ada")
    MemberFactory()  # someone else, who must not be found
    identifier = identifier.format(
        account_id=member.account_id, account_id_upper=str(member.account_id).upper()
    )

    response = start(api_client, identifier, HTTP_X_IDENTIFIER_TYPE=identifier_type)

    assert response.status_code == 200
    assert response.json()["accountId"] == str(member.account_id)
    assert MemberSession.objects.get().member == member


def test_a_member_without_loyalty_id_has_a_null_loyalty_id(api_client: APIClient) -> None:
    member = MemberFactory(loyalty_id=None)

    response = start(api_client, member.account_id)

    assert response.json()["loyaltyId"] is None


def test_session_ttl_comes_from_the_setting(
    api_client: APIClient, member: Member, settings, frozen_now: Any
) -> None:
    settings.MEMBER_SESSION_TTL = 60

    response = start(api_client, member.account_id)

    assert response.json()["expiresAt"] == iso(frozen_now.now() + timedelta(seconds=60))


def test_starting_it_again_for_the_same_member_refreshes_it(
    api_client: APIClient, member: Member, frozen_now: Any
) -> None:
    start(api_client, member.account_id)
    created_at = frozen_now.now()
    later = frozen_now(minutes=30)

    response = start(api_client, member.account_id, {"correlationId": "corr-1", "channel": "APP"})

    assert response.status_code == 200
    assert response.json()["expiresAt"] == iso(later + timedelta(hours=1))
    session = MemberSession.objects.get()
    assert (session.channel, session.created_at, session.expires_at) == (
        "APP",
        created_at,
        later + timedelta(hours=1),
    )


def test_a_correlation_id_bound_to_another_member_is_a_conflict(
    api_client: APIClient, session: MemberSession
) -> None:
    other = MemberFactory()

    response = start(api_client, other.account_id, {"correlationId": "corr-ada", "channel": "APP"})

    assert response.status_code == 409
    assert response.json() == error(
        409, "CONFLICT", "The correlation ID is in use by another member."
    )
    assert MemberSession.objects.get().member == session.member


def test_an_expired_correlation_id_can_be_bound_to_another_member(
    api_client: APIClient, member: Member, frozen_now: Any
) -> None:
    MemberSessionFactory(
        correlation_id="corr-1", member=member, expires_at=frozen_now.now() - timedelta(seconds=1)
    )
    other = MemberFactory()

    response = start(api_client, other.account_id)

    assert response.status_code == 200
    session = MemberSession.objects.get()
    assert (session.member, session.created_at) == (other, frozen_now.now())


def test_an_expired_session_started_again_is_a_new_session(
    api_client: APIClient, member: Member, frozen_now: Any
) -> None:
    start(api_client, member.account_id)
    later = frozen_now(hours=2)

    response = start(api_client, member.account_id)

    assert response.json()["expiresAt"] == iso(later + timedelta(hours=1))
    session = MemberSession.objects.get()
    assert (session.created_at, session.expires_at) == (later, later + timedelta(hours=1))


def test_a_session_expires_after_its_ttl(
    api_client: APIClient, member: Member, frozen_now: Any
) -> None:
    start(api_client, member.account_id)
    url = "/client/users/corr-1/profile/marketing-preferences"
    frozen_now(seconds=3599)
    assert api_client.get(url).status_code == 200

    frozen_now(seconds=1)
    response = api_client.get(url)

    assert response.status_code == 401
    assert response.json() == error(
        401, "UNAUTHORIZED", "Session expired or invalid correlation ID."
    )


# --- a session belongs to the client that started it -------------------------------------------


@pytest.fixture
def other_client(db) -> APIClient:
    """A client with an API key of another client system."""
    client = APIClient()
    client.credentials(HTTP_AUTHORIZATION=f"Api-Key {ClientApiKeyFactory().clear_key}")
    return client


@pytest.mark.parametrize(
    ("method", "path", "body"),
    [
        ("get", "/client/users/corr-1/profile/marketing-preferences", None),
        (
            "put",
            "/client/users/corr-1/profile/marketing-subscription",
            {"email": {"preference": "OPT_OUT"}},
        ),
    ],
)
def test_another_client_cannot_use_a_session(
    api_client: APIClient, other_client: APIClient, member: Member, method, path, body
) -> None:
    start(api_client, member.account_id)

    response = getattr(other_client, method)(path, body, format="json")

    assert response.status_code == 401
    assert response.json() == error(
        401, "UNAUTHORIZED", "Session expired or invalid correlation ID."
    )
    assert not ConsentEvent.objects.exists()
    assert getattr(api_client, method)(path, body, format="json").status_code == 200


def test_another_client_cannot_take_over_a_session_of_the_same_member(
    api_client: APIClient, other_client: APIClient, member: Member, api_key: Any
) -> None:
    start(api_client, member.account_id)

    response = start(other_client, member.account_id)

    assert response.status_code == 409
    assert response.json() == error(
        409, "CONFLICT", "The correlation ID is in use by another member."
    )
    assert MemberSession.objects.get().api_key == api_key


def test_an_expired_session_can_be_started_by_another_client(
    api_client: APIClient, other_client: APIClient, member: Member, frozen_now: Any
) -> None:
    start(api_client, member.account_id)
    frozen_now(hours=1)

    response = start(other_client, member.account_id)

    assert response.status_code == 200
    url = "/client/users/corr-1/profile/marketing-preferences"
    assert other_client.get(url).status_code == 200
    assert api_client.get(url).status_code == 401


# --- errors ------------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("identifier_type", "identifier"),
    [
        ("ACCOUNT_ID", "00000000-0000-0000-0000-000000000000"),
        ("ACCOUNT_ID", "not-a-uuid"),
        ("LOYALTY_ID", "LOY-NOBODY"),
        ("EXTERNAL_ID", "LOY-ADA"),
        ("EMAIL", "nobody@example.com"),
        ("PHONE_NUMBER", "+14155550199"),
    ],
)
def test_an_unknown_member_is_not_found(
    api_client: APIClient, member: Member, identifier_type: str, identifier: str
) -> None:
    response = start(api_client, identifier, HTTP_X_IDENTIFIER_TYPE=identifier_type)

    assert response.status_code == 404
    assert response.json() == error(404, "NOT_FOUND", "Member not found.")
    assert not MemberSession.objects.exists()


def test_an_unknown_identifier_type_is_rejected(api_client: APIClient, member: Member) -> None:
    response = start(api_client, member.loyalty_id, HTTP_X_IDENTIFIER_TYPE="loyalty_id")

    assert response.status_code == 400
    assert response.json() == invalid(
        "X-Identifier-Type must be one of ACCOUNT_ID, LOYALTY_ID, EXTERNAL_ID, EMAIL, PHONE_NUMBER."
    )


@pytest.mark.parametrize(
    ("identifier_type", "identifier", "message"),
    [
        ("EMAIL", "not-an-email", "'not-an-email' is not a valid email address."),
        ("PHONE_NUMBER", "12", "'12' is not a valid phone number."),
        ("LOYALTY_ID", "LOY%00ADA", "Null characters are not allowed."),
    ],
)
def test_an_identifier_that_cannot_be_one_is_rejected(
    api_client: APIClient, identifier_type: str, identifier: str, message: str
) -> None:
    response = start(api_client, identifier, HTTP_X_IDENTIFIER_TYPE=identifier_type)

    assert response.status_code == 400
    assert response.json() == invalid(message)


def test_an_email_shared_by_two_members_is_ambiguous(api_client: APIClient, member: Member) -> None:
    MemberFactory(email="ada@example.com")

    response = start(api_client, "ada@example.com", HTTP_X_IDENTIFIER_TYPE="EMAIL")

    assert response.status_code == 409
    assert response.json() == error(
        409,
        "CONFLICT",
        "More than one member has this EMAIL; identify the member by another identifier type.",
    )


@pytest.mark.parametrize(
    ("body", "message"),
    [
        ({"channel": "WEBSITE"}, "correlationId is required."),
        ({"correlationId": None, "channel": "WEBSITE"}, "correlationId is required."),
        (
            {"correlationId": "", "channel": "WEBSITE"},
            "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes.",
        ),
        (
            {"correlationId": "a b", "channel": "WEBSITE"},
            "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes.",
        ),
        (
            {"correlationId": "a/b", "channel": "WEBSITE"},
            "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes.",
        ),
        (
            {"correlationId": "x" * 129, "channel": "WEBSITE"},
            "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes.",
        ),
        (
            {"correlationId": "a\x00b", "channel": "WEBSITE"},
            "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes.",
        ),
        (
            {"correlationId": ["corr-1"], "channel": "WEBSITE"},
            "correlationId must be 1 to 128 printable ASCII characters without spaces or slashes.",
        ),
        ({"correlationId": "corr-1"}, "channel is required."),
        (
            {"correlationId": "corr-1", "channel": "EMAIL"},
            "channel must be one of APP, STORE, POS, PARTNER, WEBSITE.",
        ),
        (["corr-1", "WEBSITE"], "Request body must be a JSON object."),
    ],
)
def test_a_bad_body_is_rejected(
    api_client: APIClient, member: Member, body: Any, message: str
) -> None:
    response = start(api_client, member.account_id, body)

    assert response.status_code == 400
    assert response.json() == invalid(message)
    assert not MemberSession.objects.exists()


def test_malformed_json_is_rejected(api_client: APIClient, member: Member) -> None:
    response = api_client.post(URL.format(member.account_id), "{", content_type="application/json")

    assert response.status_code == 400
    assert response.json() == invalid("Request body is not valid JSON.")


def test_the_body_is_checked_before_the_member(api_client: APIClient) -> None:
    response = start(
        api_client, "nobody", {"channel": "WEBSITE"}, HTTP_X_IDENTIFIER_TYPE="LOYALTY_ID"
    )

    assert response.json() == invalid("correlationId is required.")


def test_an_api_key_is_required(anonymous_client: APIClient, member: Member) -> None:
    response = start(anonymous_client, member.account_id)

    assert response.status_code == 401
    assert response.json() == error(
        401, "UNAUTHORIZED", "Authentication credentials were not provided."
    )
    assert not MemberSession.objects.exists()


# --- concurrency -------------------------------------------------------------------------------


@pytest.mark.postgres
@pytest.mark.django_db(transaction=True)
def test_concurrent_starts_of_one_id_bind_it_once(api_key: Any) -> None:
    """Two members race for one correlation id: one wins, the other gets a 409, never a 500."""
    members = [MemberFactory(), MemberFactory()]
    barrier = threading.Barrier(len(members))
    statuses: list[int] = []

    def race(member: Member) -> None:
        client = APIClient()
        client.credentials(HTTP_AUTHORIZATION=f"Api-Key {api_key.clear_key}")
        try:
            barrier.wait()
            statuses.append(start(client, member.account_id).status_code)
        finally:
            connection.close()

    threads = [threading.Thread(target=race, args=(member,)) for member in members]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert sorted(statuses) == [200, 409]
    assert MemberSession.objects.count() == 1
