"""GET /client/users/<correlation_id>/profile/marketing-preferences (docs/member-api.md)."""

from datetime import UTC, datetime
from typing import Any

import pytest
from rest_framework.test import APIClient

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_update,
    consent_upsert,
)
from consents.models import ConsentEvent
from members.models import Member

URL = "/client/users/corr-ada/profile/marketing-preferences"
NOT_SET = {"status": "NOT_SET"}

pytestmark = pytest.mark.usefixtures("session")


def iso(moment: datetime) -> str:
    return moment.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def confirm(address: str, door: str, type: str = "EMAIL", **activity: Any) -> ConsentEvent:
    change = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(
            source="FORM", opt_in_level="SINGLE_CONFIRMATION", **activity
        ),
    )
    return write(type, address, change, door)


def revoke(address: str, door: str, type: str = "EMAIL", **activity: Any) -> ConsentEvent:
    change = ConsentChange(state="REVOKED", revoke=RevokeActivity(source="FORM", **activity))
    return write(type, address, change, door)


def write(type: str, address: str, change: ConsentChange, door: str) -> ConsentEvent:
    context = ChangeContext(door=door, actor="someone")
    return consent_upsert(type=type, address=address, change=change, context=context).event


def test_a_member_without_consents_has_nothing_set(api_client: APIClient) -> None:
    response = api_client.get(URL)

    assert response.status_code == 200
    assert response.json() == {"EMAIL": {"LOYALTY": NOT_SET}, "SMS": {"32123": NOT_SET}}


def test_a_change_through_the_member_api_shows_as_cux(api_client: APIClient) -> None:
    api_client.put(
        "/client/users/corr-ada/profile/marketing-subscription",
        {"email": {"preference": "OPT_IN"}, "sms": {"preference": "OPT_OUT"}},
        format="json",
    )
    events = {event.type: event for event in ConsentEvent.objects.all()}

    response = api_client.get(URL)

    assert response.json() == {
        "EMAIL": {
            "LOYALTY": {
                "status": "OPTED_IN",
                "lastStatusUpdateDt": iso(events["EMAIL"].recorded_at),
                "lastStatusUpdateSource": "CUX",
            }
        },
        "SMS": {
            "32123": {
                "status": "OPTED_OUT",
                "lastStatusUpdateDt": iso(events["PHONE"].recorded_at),
                "lastStatusUpdateSource": "CUX",
            }
        },
    }


@pytest.mark.parametrize(
    ("door", "source"),
    [
        ("MEMBER_API", "CUX"),
        ("ADMIN", "CONSOLE"),
        ("COMMAND", "CONSOLE"),
        ("CONSENT_API", "ESP"),
        ("LINK", "ESP"),
    ],
)
def test_the_source_names_the_door_of_the_last_change(
    api_client: APIClient, door: str, source: str
) -> None:
    confirm("ada@example.com", "MEMBER_API", description="first")
    event = revoke("ada@example.com", door)

    response = api_client.get(URL)

    assert response.json()["EMAIL"] == {
        "LOYALTY": {
            "status": "OPTED_OUT",
            "lastStatusUpdateDt": iso(event.recorded_at),
            "lastStatusUpdateSource": source,
        }
    }


def test_a_replay_or_a_superseded_write_through_another_door_is_no_status_update(
    api_client: APIClient,
) -> None:
    event = revoke("ada@example.com", "MEMBER_API", description="Member said no.")
    replay = revoke("ada@example.com", "CONSENT_API", description="Member said no.")
    old = confirm("ada@example.com", "CONSENT_API", updated_date=datetime(2020, 1, 1, tzinfo=UTC))
    assert (replay.kind, old.kind) == ("UNCHANGED", "SUPERSEDED")

    response = api_client.get(URL)

    assert response.json()["EMAIL"]["LOYALTY"] == {
        "status": "OPTED_OUT",
        "lastStatusUpdateDt": iso(event.recorded_at),
        "lastStatusUpdateSource": "CUX",
    }


def test_a_change_of_extended_fields_alone_is_no_status_update(api_client: APIClient) -> None:
    event = confirm("ada@example.com", "MEMBER_API")
    other = consent_update(
        consent_id=event.consent_id,
        change=ConsentChange(extended_fields={"namespaces": {"crm": {"tier": "gold"}}}),
        context=ChangeContext(door="CONSENT_API", actor="crm-sync"),
    ).event
    assert (other.kind, other.revision) == ("UPDATED", 2)

    response = api_client.get(URL)

    assert response.json()["EMAIL"]["LOYALTY"] == {
        "status": "OPTED_IN",
        "lastStatusUpdateDt": iso(event.recorded_at),
        "lastStatusUpdateSource": "CUX",
    }


def test_a_pending_double_opt_in_shows_as_pending(api_client: APIClient) -> None:
    change = ConsentChange(
        state="PENDING", confirmation=ConfirmationActivity(source="FORM", description="Signed up.")
    )
    event = write("PHONE", "+14155550123", change, "CONSENT_API")

    response = api_client.get(URL)

    assert response.json()["SMS"] == {
        "32123": {
            "status": "PENDING",
            "lastStatusUpdateDt": iso(event.recorded_at),
            "lastStatusUpdateSource": "ESP",
        }
    }


@pytest.mark.parametrize("state", ["NEVER_CONFIRMED", "UNKNOWN_STATE"])
def test_a_consent_without_a_decision_is_not_set(api_client: APIClient, state: str) -> None:
    write("EMAIL", "ada@example.com", ConsentChange(state=state), "CONSENT_API")

    response = api_client.get(URL)

    assert response.json()["EMAIL"] == {"LOYALTY": NOT_SET}


def test_the_consent_is_found_by_the_members_normalised_address(
    api_client: APIClient, member: Member
) -> None:
    confirm("ada@example.com", "CONSENT_API")
    Member.objects.filter(pk=member.pk).update(email=" ADA@Example.com", phone="(415) 555-0123")
    confirm("+14155550123", "ADMIN", type="PHONE")

    response = api_client.get(URL)

    body = response.json()
    assert body["EMAIL"]["LOYALTY"]["status"] == "OPTED_IN"
    assert body["SMS"]["32123"]["lastStatusUpdateSource"] == "CONSOLE"


def test_another_address_consent_is_not_the_members(api_client: APIClient) -> None:
    confirm("someone@example.com", "CONSENT_API")
    confirm("+14155550100", "CONSENT_API", type="PHONE")

    response = api_client.get(URL)

    assert response.json() == {"EMAIL": {"LOYALTY": NOT_SET}, "SMS": {"32123": NOT_SET}}


def test_a_member_without_addresses_has_nothing_set(
    api_client: APIClient, member: Member, django_assert_num_queries
) -> None:
    Member.objects.filter(pk=member.pk).update(email="", phone="12")

    # The API key, its throttle block and the session: no consent can belong to no address.
    with django_assert_num_queries(3):
        response = api_client.get(URL)

    assert response.json() == {"EMAIL": {"LOYALTY": NOT_SET}, "SMS": {"32123": NOT_SET}}


def test_the_sms_topic_is_the_configured_shortcode(api_client: APIClient, settings) -> None:
    settings.SMS_DEFAULT_SHORTCODE = "77777"

    response = api_client.get(URL)

    assert response.json()["SMS"] == {"77777": NOT_SET}


def test_get_runs_a_pinned_number_of_queries(
    api_client: APIClient, django_assert_num_queries
) -> None:
    for index in range(3):
        confirm("ada@example.com", "CONSENT_API", description=f"change {index}")
        revoke("+14155550123", "ADMIN", type="PHONE", description=f"change {index}")

    # The API key, its throttle block, the session with its member, both consents with their
    # last update.
    with django_assert_num_queries(4):
        response = api_client.get(URL)

    assert response.status_code == 200


def test_an_unknown_session_is_unauthorized(api_client: APIClient) -> None:
    response = api_client.get("/client/users/corr-nobody/profile/marketing-preferences")

    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "errorCode": "UNAUTHORIZED",
        "errorMessage": "Session expired or invalid correlation ID.",
    }


def test_an_api_key_is_required(anonymous_client: APIClient) -> None:
    response = anonymous_client.get(URL)

    assert response.status_code == 401
    assert response.json() == {
        "statusCode": 401,
        "errorCode": "UNAUTHORIZED",
        "errorMessage": "Authentication credentials were not provided.",
    }


# --- ?channels= ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("query", "expected"),
    [
        ("?channels=EMAIL", ["EMAIL"]),
        ("?channels=SMS", ["SMS"]),
        ("?channels=EMAIL,SMS", ["EMAIL", "SMS"]),
        ("?channels=SMS,%20email", ["EMAIL", "SMS"]),
        ("?channels=SMS&channels=EMAIL", ["EMAIL", "SMS"]),
        ("", ["EMAIL", "SMS"]),
    ],
)
def test_channels_filters_the_channels_returned(api_client: APIClient, query, expected) -> None:
    response = api_client.get(URL + query)

    assert response.status_code == 200
    assert list(response.json()) == expected
    for label in expected:
        assert list(response.json()[label].values()) == [NOT_SET]


@pytest.mark.parametrize(
    ("query", "message"),
    [
        ("?channels=PUSH", "Invalid communication channel present in the request: PUSH."),
        (
            "?channels=EMAIL,PUSH,fax",
            "Invalid communication channel present in the request: PUSH, fax.",
        ),
        ("?channels=", "channels must name EMAIL, SMS or both."),
        ("?channels=,", "channels must name EMAIL, SMS or both."),
    ],
)
def test_an_unknown_channel_is_a_400_in_the_envelope(api_client: APIClient, query, message) -> None:
    response = api_client.get(URL + query)

    assert response.status_code == 400
    assert response.json() == {
        "statusCode": 400,
        "errorCode": "INVALID_REQUEST",
        "errorMessage": message,
    }
    assert response["MCK-APPID"] == "ES-CB-V1"
