"""Subject access export and erasure (docs/privacy.md), through the commands."""

import json
from datetime import UTC, datetime
from unittest import mock

import pytest
from django.contrib.admin.models import CHANGE, LogEntry
from django.contrib.contenttypes.models import ContentType
from django.core.management.base import CommandError
from django.db import connection
from rest_framework.test import APIClient

from consents.addresses import erased_address
from consents.models import ClientApiKey, ConsentEvent, IdempotencyRecord, MarketingConsent
from consents.privacy.models import Erasure
from members.models import Member, MemberSession
from tests.factories import IdempotencyRecordFactory, MemberFactory, MemberSessionFactory

pytestmark = pytest.mark.django_db

API = "/marketing-consent/v1"
EMAIL, PHONE = "augusta.lovelace@example.com", "+14155550123"
FIRST, LAST = "Augusta", "Lovelace"
IP, AGENT = "203.0.113.77", "AugustaPhone/1.0"
# Every trace of the person, as they may be spelled anywhere.
PERSONAL = [EMAIL, PHONE, "4155550123", FIRST.lower(), LAST.lower(), IP, AGENT.lower()]


@pytest.fixture
def person(api_client: APIClient, api_key: ClientApiKey, django_user_model) -> Member:
    """Augusta, with a history through every door: consent API (with an idempotency key, her
    IP and user agent, her name in free text and extended fields), member API, admin log."""
    member = MemberFactory(
        email=EMAIL, phone=PHONE, first_name=FIRST, last_name=LAST, external_id="EXT-AUGUSTA"
    )
    MemberSessionFactory(correlation_id="corr-augusta", member=member, api_key=api_key)
    headers = {"REMOTE_ADDR": IP, "HTTP_USER_AGENT": AGENT, "HTTP_X_REQUEST_ID": "req-1"}
    body = {
        "marketingConsent": {
            "details": {"type": "EMAIL", "email": "Augusta.Lovelace@Example.com"},
            "state": "CONFIRMED",
            "lastConfirmationActivity": {
                "source": "IN_PERSON",
                "description": "Augusta Lovelace signed at the store",
                "updatedDate": "2025-01-02T10:00:00.000Z",
            },
            "extendedFields": {"namespaces": {"_user_fields": {"name": "Augusta Lovelace"}}},
        }
    }
    response = api_client.post(
        f"{API}/marketing-consent/upsert",
        body,
        format="json",
        HTTP_IDEMPOTENCY_KEY="k-augusta",
        **headers,
    )
    assert response.status_code == 200
    response = api_client.put(
        "/client/users/corr-augusta/profile/marketing-subscription",
        {"sms": {"preference": "OPT_OUT"}},
        format="json",
        **headers,
    )
    assert response.status_code == 200
    staff = django_user_model.objects.create_user("dpo", is_staff=True)
    LogEntry.objects.create(
        user=staff,
        content_type=ContentType.objects.get_for_model(Member),
        object_id=str(member.pk),
        object_repr=str(member),
        action_flag=CHANGE,
    )
    return member


def export(run_command, *args: str) -> dict:
    return json.loads(run_command("export_person", *args).stdout)


def traces(text: str) -> list[str]:
    return [needle for needle in PERSONAL if needle in text.lower()]


def every_stored_value() -> list[tuple[str, str]]:
    """(table, value as text) for every column of every row of every table."""
    found = []
    with connection.cursor() as cursor:
        for table in connection.introspection.table_names(cursor):
            cursor.execute(f"SELECT * FROM {connection.ops.quote_name(table)}")
            for row in cursor.fetchall():
                for value in row:
                    if isinstance(value, bytes | memoryview):
                        value = bytes(value).decode("utf-8", "replace")
                    found.append((table, str(value)))
    return found


# --- export ------------------------------------------------------------------------------------


def test_the_export_holds_the_member_every_consent_and_every_event_newest_first(
    person, run_command
):
    with mock.patch("django.utils.timezone.now", return_value=datetime(2026, 1, 5, tzinfo=UTC)):
        document = export(run_command, "--email", " AUGUSTA.Lovelace@example.com")

    assert document["exportedAt"] == "2026-01-05T00:00:00.000Z"
    assert document["scope"] == {"email": EMAIL}
    [member] = document["members"]
    assert (member["email"], member["phone"], member["firstName"], member["lastName"]) == (
        EMAIL,
        PHONE,
        FIRST,
        LAST,
    )
    assert member["accountId"] == str(person.account_id)
    states = {
        c["details"].get("email") or c["details"]["phone"]: c["state"] for c in document["consents"]
    }
    assert states == {EMAIL: "CONFIRMED", PHONE: "REVOKED"}
    events = document["events"]
    assert [e["kind"] for e in events] == ["CREATED", "CREATED"]
    assert [e["door"] for e in events] == ["MEMBER_API", "CONSENT_API"]  # newest first
    email_event = events[1]
    assert (email_event["ipAddress"], email_event["userAgent"], email_event["requestId"]) == (
        IP,
        AGENT,
        "req-1",
    )
    assert email_event["activity"] == {
        "source": "IN_PERSON",
        "description": "Augusta Lovelace signed at the store",
        "optInLevel": "UNKNOWN_OPT_IN_LEVEL",
        "date": "2025-01-02T10:00:00.000Z",
    }


def test_the_export_finds_the_same_person_by_phone_or_member(person, run_command):
    by_phone = export(run_command, "--phone", "(415) 555-0123")
    by_member = export(run_command, "--member", "EXT-AUGUSTA")
    by_account = export(run_command, "--member", str(person.account_id))

    for document in (by_phone, by_member, by_account):
        assert [m["accountId"] for m in document["members"]] == [str(person.account_id)]
        assert len(document["consents"]) == 2
        assert len(document["events"]) == 2


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--email", "not-an-email"), "'not-an-email' is not a valid email address."),
        (("--member", "nobody"), "No member has the id 'nobody'."),
    ],
)
def test_a_person_that_cannot_be_found_is_a_clear_error(db, run_command, args, message):
    with pytest.raises(CommandError, match=message):
        run_command("export_person", *args)


# --- erasure -----------------------------------------------------------------------------------


def test_erasure_is_a_dry_run_by_default(person, run_command):
    before = every_stored_value()

    output = run_command("erase_person", "--email", EMAIL, "--reason", "Request 42")

    assert output.stdout == (
        f"Members: {person.account_id}\n"
        "Addresses: EMAIL a***@example.com, PHONE +1******0123\n"
        "DRY RUN — nothing was erased. Run again with --apply to erase.\n"
    )
    assert every_stored_value() == before


def test_erasure_leaves_no_personal_data_in_any_table(person, run_command):
    assert traces(" ".join(value for _, value in every_stored_value()))  # the scan sees them

    output = run_command("erase_person", "--email", EMAIL, "--reason", "Request 42", "--apply")

    assert "Erased: 1 member(s), 2 address(es)" in output.stdout
    left = [(table, value) for table, value in every_stored_value() if traces(value)]
    assert left == []


def test_erasure_keeps_the_facts_and_records_itself(person, run_command):
    IdempotencyRecordFactory(key="unrelated", body=b'{"email": "someone.else@example.com"}')
    assert IdempotencyRecord.objects.count() == 2  # and Augusta's upsert

    run_command("erase_person", "--member", "EXT-AUGUSTA", "--reason", "Request 42", "--apply")

    member = Member.objects.get(pk=person.pk)
    assert (member.account_id, member.email, member.phone, member.first_name) == (
        person.account_id,
        "",
        "",
        "",
    )
    assert (member.loyalty_id, member.external_id) == (None, None)
    assert not MemberSession.objects.exists()
    assert list(IdempotencyRecord.objects.values_list("key", flat=True)) == ["unrelated"]
    tombstones = {c.type: c for c in MarketingConsent.objects.all()}
    assert (tombstones["EMAIL"].address, tombstones["EMAIL"].state) == (
        erased_address(EMAIL),
        "REVOKED",
    )
    assert tombstones["EMAIL"].confirmation_date == datetime(2025, 1, 2, 10, tzinfo=UTC)
    assert tombstones["EMAIL"].confirmation_source == "IN_PERSON"
    assert tombstones["EMAIL"].extended_fields == {}
    assert tombstones["PHONE"].address == erased_address(PHONE)
    erasure = Erasure.objects.get()
    assert (erasure.door, erasure.actor, erasure.reason) == (
        "COMMAND",
        "erase_person",
        "Request 42",
    )
    assert erasure.member_account_ids == [str(person.account_id)]
    assert sorted(erasure.consent_ids) == sorted(str(c.id) for c in tombstones.values())
    created = ConsentEvent.objects.get(type="EMAIL", kind="CREATED")
    assert (created.door, created.actor, created.request_id, created.state) == (
        "CONSENT_API",
        "crm-sync",
        "req-1",
        "CONFIRMED",
    )
    assert created.activity_date == datetime(2025, 1, 2, 10, tzinfo=UTC)
    erased = ConsentEvent.objects.get(type="EMAIL", kind="ERASED")
    assert (erased.previous_state, erased.state, erased.actor, erased.note) == (
        "CONFIRMED",
        "REVOKED",
        "erase_person",
        "Request 42",
    )


def test_the_export_of_an_erased_person_holds_no_personal_data(person, run_command):
    run_command("erase_person", "--email", EMAIL, "--reason", "Request 42", "--apply")

    document = export(run_command, "--member", str(person.account_id))

    assert traces(json.dumps(document)) == []
    [member] = document["members"]
    assert member["email"] == member["firstName"] == ""
    by_email = export(run_command, "--email", EMAIL)
    del by_email["scope"]  # what the request itself named
    assert traces(json.dumps(by_email)) == []
    [tombstone] = by_email["consents"]
    assert (tombstone["details"], tombstone["state"], tombstone["erased"]) == (
        {"type": "EMAIL"},
        "REVOKED",
        True,
    )
    assert [e["kind"] for e in by_email["events"]] == ["ERASED", "CREATED"]
    assert {e["address"] for e in by_email["events"]} == {None}


def test_erasure_needs_a_reason(person, run_command):
    with pytest.raises(CommandError, match="--reason"):
        run_command("erase_person", "--email", EMAIL, "--apply")
    assert Erasure.objects.count() == 0


def test_an_address_the_member_had_before_is_part_of_the_person(person, api_client, run_command):
    api_client.put(
        "/client/users/corr-augusta/profile/marketing-subscription",
        {"email": {"preference": "OPT_IN"}},
        format="json",
    )
    Member.objects.filter(pk=person.pk).update(email="augusta.new@example.com")

    document = export(run_command, "--member", "EXT-AUGUSTA")

    emails = sorted(c["details"]["email"] for c in document["consents"] if "email" in c["details"])
    assert emails == [EMAIL]  # the new address has no consent yet; the old one is still hers
    run_command("erase_person", "--member", "EXT-AUGUSTA", "--reason", "Request 43", "--apply")
    assert not MarketingConsent.objects.filter(address=EMAIL).exists()
