"""The selectors (consents/selectors.py): what each read answers, and its queries, pinned. The
suite runs on SQLite and on PostgreSQL (DATABASE_URL), so each count holds on both."""

import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock
from urllib.parse import parse_qs, urlsplit

import pytest
from django.db import connection
from django.db.models import Q
from django.utils import timezone

from consents.addresses import erased_address
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    Eligibility,
    RevokeActivity,
    consent_delete,
    consent_erase,
    consent_update,
    consent_upsert,
)
from consents.links import CONFIRM, UNSUBSCRIBE, read_token
from consents.models import CONSENT_ATTNAMES, ConsentEvent, Door, EventKind, MarketingConsent
from consents.revocations.models import RevokeJob
from consents.selectors import (
    AddressConsent,
    ConsentStatus,
    SortKey,
    address_consent,
    asleep_webhook_endpoints,
    consent_by_id,
    consent_counts_by_state,
    consent_events_of,
    consent_of_address,
    consent_statuses,
    consents_after,
    consents_not_erased,
    consents_of_addresses,
    consents_page,
    email_consents_at_domain,
    event_by_id,
    first_event_since,
    latest_event_id,
    member_api_addresses,
    shown_consent,
    sms_message_event,
    stalled_revoke_jobs,
    webhook_endpoint_by_id,
    webhook_endpoint_events,
    webhook_endpoint_has_work,
    webhook_endpoints_due,
)
from consents.webhooks.models import EventType, WebhookEndpoint
from tests.factories import ConsentEventFactory, MarketingConsentFactory

pytestmark = pytest.mark.django_db

ADDRESS = "ada@example.com"
PHONE = "+14155550123"
SIGNED_UP = datetime(2025, 1, 10, 9, 30, 15, 123000, tzinfo=UTC)
CONTEXT = ChangeContext(door=Door.CONSENT_API, actor="crm-sync")


def confirm(date=SIGNED_UP, state="CONFIRMED", **extra) -> ConsentChange:
    activity = ConfirmationActivity(
        source="FORM",
        description="Signed up.",
        updated_date=date,
        opt_in_level="SINGLE_CONFIRMATION",
    )
    return ConsentChange(state=state, confirmation=activity, **extra)


def revoke(date=SIGNED_UP + timedelta(days=1)) -> ConsentChange:
    activity = RevokeActivity(source="FORM", description="Unsubscribed.", updated_date=date)
    return ConsentChange(state="REVOKED", revoke=activity)


def upsert(change, address=ADDRESS, type="EMAIL", context=CONTEXT):
    return consent_upsert(type=type, address=address, change=change, context=context)


def token_of(url: str) -> str:
    return parse_qs(urlsplit(url).query)["token"][0]


def fields(consent: MarketingConsent) -> dict:
    return {name: getattr(consent, name) for name in CONSENT_ATTNAMES}


# --- get-by: the consent of an address, with its eligibility -----------------------------------


def test_an_address_with_a_consent_is_one_statement_and_reads_as_the_orm_does(
    django_assert_num_queries,
):
    upsert(confirm(extended_fields={"shop": "Paris", "tags": [1, 2]}))
    stored = MarketingConsent.objects.get()

    with django_assert_num_queries(1):
        found = address_consent("EMAIL", ADDRESS)

    assert fields(found.consent) == fields(stored)
    assert found.consent.extended_fields == {"shop": "Paris", "tags": [1, 2]}
    assert found.consent.confirmation_date == SIGNED_UP
    assert found.consent._state.adding is False
    assert found.eligibility == Eligibility(True, "CONFIRMED_CONSENT")
    token = read_token(token_of(found.unsubscribe_url), purpose=UNSUBSCRIBE)
    assert token.consent_id == stored.id


def test_get_by_builds_no_orm_query():
    """The hot path runs its one constant statement: no query is compiled per call."""
    upsert(confirm())
    compiled = "django.db.models.sql.compiler.SQLCompiler.as_sql"

    with mock.patch(compiled, side_effect=AssertionError("an ORM query was built")):
        found = address_consent("EMAIL", ADDRESS)

    assert found.consent.state == "CONFIRMED"


@pytest.mark.postgres
def test_get_by_runs_prepared_on_postgresql():
    """Run as often as the prepare threshold asks, the statement is prepared on the server."""
    upsert(confirm())
    for _ in range(connection.connection.prepare_threshold + 1):
        address_consent("EMAIL", ADDRESS)

    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_prepared_statements WHERE statement LIKE %s",
            ["%FROM consents_marketingconsent WHERE type = $1 AND address IN ($2, $3)"],
        )
        assert cursor.fetchone()[0] == 1


@pytest.mark.parametrize(
    ("type", "address", "eligibility"),
    [
        ("EMAIL", ADDRESS, Eligibility(True, "NO_CONSENT_REQUIRED")),
        ("PHONE", PHONE, Eligibility(False, "NO_CONSENT")),
    ],
)
def test_an_address_without_a_consent_has_only_its_eligibility(
    django_assert_num_queries, type, address, eligibility
):
    with django_assert_num_queries(1):
        found = address_consent(type, address)

    assert found == AddressConsent(consent=None, eligibility=eligibility, unsubscribe_url=None)


def test_only_a_confirmed_consent_has_an_unsubscribe_link(django_assert_num_queries):
    upsert(confirm(state="PENDING"))

    with django_assert_num_queries(1):
        found = address_consent("EMAIL", ADDRESS)

    assert found.consent.state == "PENDING"
    assert found.eligibility == Eligibility(False, "CONFIRMATION_PENDING")
    assert found.unsubscribe_url is None


def test_an_erased_address_is_not_eligible_and_shows_no_consent(django_assert_num_queries):
    upsert(confirm())
    consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)

    with django_assert_num_queries(1):
        found = address_consent("EMAIL", ADDRESS)

    assert found == AddressConsent(None, Eligibility(False, "CONSENT_REVOKED"))
    tombstone = consent_of_address("EMAIL", ADDRESS)
    assert (tombstone.address, tombstone.state) == (erased_address(ADDRESS), "REVOKED")


def test_the_address_in_clear_wins_over_its_tombstone():
    """Both spellings stored (rows written around the ledger): the address in clear is read."""
    MarketingConsentFactory(address=erased_address(ADDRESS), state="REVOKED", revoke_date=SIGNED_UP)
    MarketingConsentFactory(type="PHONE", address=ADDRESS)  # another type's: not read
    clear = MarketingConsentFactory(address=ADDRESS)

    assert consent_of_address("EMAIL", ADDRESS).id == clear.id


# --- the consent as the doors show it ----------------------------------------------------------


def test_a_consent_by_id_is_one_query(django_assert_num_queries):
    consent = MarketingConsentFactory(address=ADDRESS)

    with django_assert_num_queries(1):
        found = consent_by_id(str(consent.id))

    assert fields(found) == fields(MarketingConsent.objects.get())
    assert consent_by_id(consent.id).id == consent.id


def test_an_unknown_id_is_none_and_a_malformed_one_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert consent_by_id(uuid.uuid4()) is None
    with django_assert_num_queries(0):
        assert consent_by_id("not-a-uuid") is None


def test_a_tombstone_is_not_found_by_id():
    upsert(confirm())
    consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)

    assert consent_by_id(MarketingConsent.objects.get().id) is None


def test_a_tombstone_is_found_by_id_only_when_erased_ones_are_asked_for_too(
    django_assert_num_queries,
):
    live = MarketingConsentFactory(type="PHONE", address=PHONE)
    upsert(confirm())
    tombstone = consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT).consent

    with django_assert_num_queries(1):
        found = consent_by_id(tombstone.id, erased_too=True)

    assert fields(found) == fields(MarketingConsent.objects.get(id=tombstone.id))
    assert found.is_erased
    assert consent_by_id(str(live.id), erased_too=True) == live
    assert consent_by_id(uuid.uuid4(), erased_too=True) is None
    with django_assert_num_queries(0):
        assert consent_by_id("not-a-uuid", erased_too=True) is None


@pytest.mark.parametrize(
    ("change", "link_type"),
    [(confirm(state="PENDING"), CONFIRM), (confirm(), UNSUBSCRIBE), (revoke(), None)],
    ids=["pending", "confirmed", "revoked"],
)
def test_a_consent_is_shown_with_the_link_its_state_calls_for(
    django_assert_num_queries, change, link_type
):
    consent = upsert(change).consent

    with django_assert_num_queries(0):
        shown = shown_consent(consent)
        without = shown_consent(consent, with_link=False)

    assert shown.consent is consent
    assert (shown.link or {}).get("type") == link_type
    if link_type is not None:
        token = read_token(token_of(shown.link["url"]), purpose=link_type)
        assert token.consent_id == consent.id
    assert without.link is None


# --- the member's preference view: the status of an address's consent ---------------------------


def test_a_status_is_the_last_write_that_set_the_state_in_one_query(django_assert_num_queries):
    member_api = ChangeContext(door=Door.MEMBER_API, actor="member")
    created = upsert(confirm(), context=member_api)
    upsert(confirm())  # a replay: UNCHANGED, does not update the status
    consent_update(  # leaves the state alone
        consent_id=created.consent.id,
        change=ConsentChange(extended_fields={"shop": "Paris"}),
        context=CONTEXT,
    )
    upsert(confirm(date=SIGNED_UP - timedelta(days=1)))  # older: SUPERSEDED
    consent = MarketingConsent.objects.get()
    assert consent.revision == 2

    with django_assert_num_queries(1):
        statuses = consent_statuses([("EMAIL", ADDRESS), ("PHONE", PHONE)])

    assert statuses == {
        ("EMAIL", ADDRESS): ConsentStatus(
            state="CONFIRMED", updated_at=created.event.recorded_at, door="MEMBER_API"
        )
    }


def test_a_status_without_an_event_is_the_consents_update_and_no_door():
    consent = MarketingConsentFactory(address=ADDRESS)

    assert consent_statuses([("EMAIL", ADDRESS)]) == {
        ("EMAIL", ADDRESS): ConsentStatus("CONFIRMED", consent.updated_date, None)
    }


def test_an_erased_addresss_tombstone_gives_its_status(django_assert_num_queries):
    upsert(confirm(), address=PHONE, type="PHONE")
    upsert(confirm())
    erased = consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)

    with django_assert_num_queries(1):
        statuses = consent_statuses([("EMAIL", ADDRESS), ("PHONE", PHONE)])

    assert statuses[("EMAIL", ADDRESS)].state == "REVOKED"
    assert statuses[("PHONE", PHONE)].state == "CONFIRMED"
    assert erased.event.kind == "ERASED"


def test_no_addresses_ask_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert consent_statuses([]) == {}


# --- the SMS door: the event an inbound message recorded --------------------------------------


def test_an_sms_messages_event_is_found_by_its_sid_through_the_sms_door_only(
    django_assert_num_queries,
):
    sms = ChangeContext(door=Door.SMS, actor="+14155550123", request_id="SM0001")
    recorded = upsert(revoke(), address=PHONE, type="PHONE", context=sms).event
    same_id_other_door = ChangeContext(door=Door.CONSENT_API, actor="crm", request_id="SM0002")
    upsert(confirm(), context=same_id_other_door)

    with django_assert_num_queries(1):
        found = sms_message_event("SM0001")

    assert found == recorded
    assert sms_message_event("SM0002") is None
    assert sms_message_event("SM9999") is None


# --- webhooks: each event's consent as it was right after it -----------------------------------


def test_an_event_at_the_consents_revision_gets_the_stored_consent(django_assert_num_queries):
    event = upsert(confirm()).event

    with django_assert_num_queries(1):
        after = consents_after([event])

    assert fields(after[event.id]) == fields(MarketingConsent.objects.get())


def test_events_of_a_consent_changed_since_get_what_each_recorded(django_assert_num_queries):
    first = upsert(confirm(extended_fields={"shop": "Paris"}))
    second = upsert(revoke())
    consent_delete(consent_id=first.consent.id, context=CONTEXT)
    deleted = ConsentEvent.objects.get(kind="DELETED")

    with django_assert_num_queries(1):
        after = consents_after([first.event, second.event, deleted])

    confirmed, revoked, gone = (after[e.id] for e in (first.event, second.event, deleted))
    assert (confirmed.id, confirmed.revision, confirmed.state) == (first.consent.id, 1, "CONFIRMED")
    assert (confirmed.confirmation_source, confirmed.confirmation_description) == (
        "FORM",
        "Signed up.",
    )
    assert (confirmed.confirmation_date, confirmed.confirmation_opt_in_level) == (
        SIGNED_UP,
        "SINGLE_CONFIRMATION",
    )
    assert confirmed.revoke_date is None
    assert confirmed.extended_fields == {}  # an event does not record them
    assert (confirmed.created_date, confirmed.updated_date) == (first.event.recorded_at,) * 2
    assert (revoked.revision, revoked.state, revoked.confirmation_date) == (2, "REVOKED", None)
    assert (revoked.revoke_source, revoked.revoke_description, revoked.revoke_date) == (
        "FORM",
        "Unsubscribed.",
        SIGNED_UP + timedelta(days=1),
    )
    assert (gone.state, gone.confirmation_date, gone.revoke_date) == ("REVOKED", None, None)


def test_the_recorded_activity_is_the_one_the_changes_event_recorded():
    """A REVOKED change that sends a confirmation too records its revoke activity."""
    both = ConsentChange(
        state="REVOKED", confirmation=confirm().confirmation, revoke=revoke().revoke
    )
    first = upsert(both)
    upsert(confirm(date=SIGNED_UP + timedelta(days=2)))

    recorded = consents_after([first.event])[first.event.id]

    assert (recorded.state, recorded.revoke_date) == ("REVOKED", SIGNED_UP + timedelta(days=1))
    assert recorded.confirmation_date is None


def test_an_erased_persons_event_keeps_its_activity():
    """Erasure blanks the change an event keeps: its activity is still told apart."""
    confirmed = upsert(confirm())
    revoked = upsert(revoke())
    consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)
    events = list(ConsentEvent.objects.filter(id__in=[confirmed.event.id, revoked.event.id]))
    assert [event.request for event in events] == [{}, {}]

    after = consents_after(events)

    assert after[confirmed.event.id].confirmation_date == SIGNED_UP
    assert after[confirmed.event.id].revoke_date is None
    assert after[revoked.event.id].revoke_date == SIGNED_UP + timedelta(days=1)
    assert after[revoked.event.id].confirmation_date is None


# --- lists of consents: the bulk commands' reads ----------------------------------------------


def test_consents_not_erased_are_every_consent_but_tombstones_by_type_and_address(
    django_assert_num_queries,
):
    phone = MarketingConsentFactory(type="PHONE", address=PHONE)
    zed = MarketingConsentFactory(address="zed@example.com", state="REVOKED", revoke_date=SIGNED_UP)
    ada = MarketingConsentFactory(address=ADDRESS, state="PENDING")
    MarketingConsentFactory(
        address=erased_address("bob@example.com"), state="REVOKED", revoke_date=SIGNED_UP
    )

    with django_assert_num_queries(1):
        assert list(consents_not_erased()) == [ada, zed, phone]
    with django_assert_num_queries(1):
        assert consents_not_erased().count() == 3


@pytest.mark.parametrize(
    ("state", "type", "expected"),
    [
        ("REVOKED", None, ["zed"]),
        (None, "PHONE", ["phone"]),
        ("CONFIRMED", "PHONE", ["phone"]),
        ("CONFIRMED", "EMAIL", []),
        ("", "", ["ada", "zed", "phone"]),  # an option left empty filters nothing
    ],
)
def test_consents_not_erased_of_a_state_and_a_type(state, type, expected):
    made = {
        "phone": MarketingConsentFactory(type="PHONE", address=PHONE),
        "zed": MarketingConsentFactory(
            address="zed@example.com", state="REVOKED", revoke_date=SIGNED_UP
        ),
        "ada": MarketingConsentFactory(address=ADDRESS, state="PENDING"),
    }

    assert list(consents_not_erased(state=state, type=type)) == [made[name] for name in expected]


def test_email_consents_at_a_domain_are_exactly_that_domain_in_any_case(
    django_assert_num_queries,
):
    at_domain = MarketingConsentFactory(address="ada@example.com")
    legacy = MarketingConsentFactory(address="Bob@EXAMPLE.com")
    MarketingConsentFactory(address="eve@mail.example.com")  # a subdomain
    MarketingConsentFactory(address="mallory@notexample.com")
    MarketingConsentFactory(address="ada@example.com.evil")
    MarketingConsentFactory(type="PHONE", address="x@example.com")  # another type's
    MarketingConsentFactory(
        address=erased_address("carol@example.com"), state="REVOKED", revoke_date=SIGNED_UP
    )

    with django_assert_num_queries(1):
        found = set(email_consents_at_domain("example.com"))

    assert found == {at_domain, legacy}


# --- privacy requests: what belongs to a person -----------------------------------------------

ADA_ID, BOB_ID = str(uuid.UUID(int=7)), str(uuid.UUID(int=8))


def member_api(actor: str) -> ChangeContext:
    return ChangeContext(door=Door.MEMBER_API, actor=actor)


def test_the_consents_of_addresses_are_in_their_order_one_statement_each(
    django_assert_num_queries,
):
    phone = upsert(confirm(), address=PHONE, type="PHONE").consent
    ada = upsert(confirm()).consent
    upsert(confirm(), address="gone@example.com")
    tombstone = consent_erase(type="EMAIL", address="gone@example.com", context=CONTEXT).consent
    addresses = [
        ("EMAIL", ADDRESS),
        ("EMAIL", "none@example.com"),
        ("EMAIL", "gone@example.com"),
        ("PHONE", PHONE),
    ]

    with django_assert_num_queries(4):
        found = consents_of_addresses(addresses)

    assert [consent.id for consent in found] == [ada.id, tombstone.id, phone.id]
    assert found[1].is_erased
    with django_assert_num_queries(0):
        assert consents_of_addresses([]) == []


def test_the_events_of_consents_and_addresses_are_newest_first_in_one_query(
    django_assert_num_queries,
):
    first = upsert(confirm())
    consent_delete(consent_id=first.consent.id, context=CONTEXT)
    deleted = ConsentEvent.objects.get(kind="DELETED")
    again = upsert(confirm())  # the address's consent now, a new one
    phone = upsert(confirm(), address=PHONE, type="PHONE")
    upsert(confirm(), address="other@example.com")
    addresses = [("EMAIL", ADDRESS), ("PHONE", PHONE)]

    with django_assert_num_queries(1):
        events = consent_events_of([again.consent], addresses)

    assert events == [phone.event, again.event, deleted, first.event]
    with django_assert_num_queries(1):
        by_consent = consent_events_of([phone.consent], [])
    assert by_consent == [phone.event]


def test_member_api_addresses_are_those_the_members_set_once_each_in_one_query(
    django_assert_num_queries,
):
    upsert(confirm(), address="old-ada@example.com", context=member_api(ADA_ID))
    upsert(revoke(), address="old-ada@example.com", context=member_api(ADA_ID))
    upsert(confirm(), address=PHONE, type="PHONE", context=member_api(ADA_ID))
    upsert(confirm(), address="bob@example.com", context=member_api(BOB_ID))
    upsert(confirm(), address="api@example.com", context=ChangeContext(door="ADMIN", actor=ADA_ID))
    upsert(confirm(), address="gone@example.com", context=member_api(ADA_ID))
    consent_erase(type="EMAIL", address="gone@example.com", context=CONTEXT)

    with django_assert_num_queries(1):
        found = member_api_addresses([ADA_ID])

    assert found == {("EMAIL", "old-ada@example.com"), ("PHONE", PHONE)}
    assert member_api_addresses([ADA_ID, BOB_ID]) == found | {("EMAIL", "bob@example.com")}


def test_no_member_asks_nothing(django_assert_num_queries):
    with django_assert_num_queries(0):
        assert member_api_addresses([]) == set()


# --- the admin index: how many consents in each state -----------------------------------------


def test_the_counts_by_state_hold_every_consent_and_tombstone_in_one_query(
    django_assert_num_queries,
):
    MarketingConsentFactory.create_batch(3)
    MarketingConsentFactory(state="PENDING")
    upsert(confirm())
    consent_erase(type="EMAIL", address=ADDRESS, context=CONTEXT)

    with django_assert_num_queries(1):
        counts = consent_counts_by_state()

    assert counts == {"CONFIRMED": 3, "PENDING": 1, "REVOKED": 1}


def test_no_consents_count_nothing():
    assert consent_counts_by_state() == {}


# --- webhooks: the events and endpoints delivery reads -------------------------------------------


def test_an_event_by_its_id_is_one_query(django_assert_num_queries):
    event = upsert(confirm()).event

    with django_assert_num_queries(1):
        assert event_by_id(event.id) == event
    with django_assert_num_queries(1), pytest.raises(ConsentEvent.DoesNotExist):
        event_by_id(event.id + 1)


def test_the_latest_event_id_is_one_query_and_0_without_events(django_assert_num_queries):
    with django_assert_num_queries(1):
        assert latest_event_id() == 0
    upsert(confirm())
    last = upsert(revoke()).event

    with django_assert_num_queries(1):
        assert latest_event_id() == last.id


def test_the_first_event_since_a_time_is_the_first_in_ledger_order(django_assert_num_queries):
    at = datetime(2025, 3, 1, 12, tzinfo=UTC)
    ConsentEventFactory(recorded_at=at - timedelta(seconds=1))
    first = ConsentEventFactory(recorded_at=at + timedelta(seconds=5))
    ConsentEventFactory(recorded_at=at)  # later in ledger order, though recorded earlier

    with django_assert_num_queries(1):
        assert first_event_since(at) == first
    with django_assert_num_queries(1):
        assert first_event_since(at + timedelta(seconds=6)) is None


def endpoint(**fields) -> WebhookEndpoint:
    fields.setdefault("event_types", EventType.values)
    return WebhookEndpoint.objects.create(url="https://hooks.example.com/consents", **fields)


def test_an_endpoint_by_its_id_is_one_query(django_assert_num_queries):
    hook = endpoint(cursor=7, is_active=False)

    with django_assert_num_queries(1):
        found = webhook_endpoint_by_id(hook.id)

    assert (found, found.cursor, found.is_active) == (hook, 7, False)
    with pytest.raises(WebhookEndpoint.DoesNotExist):
        webhook_endpoint_by_id(hook.id + 1)


def test_an_endpoint_has_work_past_its_cursor_or_when_its_retry_is_due(
    django_assert_num_queries,
):
    event = upsert(confirm()).event
    behind, caught_up = endpoint(cursor=event.id - 1), endpoint(cursor=event.id)
    retry_due = endpoint(cursor=event.id, next_attempt_at=timezone.now() - timedelta(seconds=1))
    retry_later = endpoint(cursor=0, next_attempt_at=timezone.now() + timedelta(minutes=1))
    inactive = endpoint(cursor=0, is_active=False)

    with django_assert_num_queries(2):
        assert webhook_endpoint_has_work(behind.id)
    with django_assert_num_queries(2):
        assert not webhook_endpoint_has_work(caught_up.id)
    with django_assert_num_queries(1):
        assert webhook_endpoint_has_work(retry_due.id)
    with django_assert_num_queries(1):
        assert not webhook_endpoint_has_work(retry_later.id)
    with django_assert_num_queries(1):
        assert not webhook_endpoint_has_work(inactive.id)


def test_an_endpoints_events_are_those_it_subscribes_to_in_a_range_in_one_query(
    django_assert_num_queries,
):
    email = [ConsentEventFactory(kind=kind) for kind in EventKind.values]
    phone = ConsentEventFactory(consent=MarketingConsentFactory(type="PHONE", address=PHONE))
    hook = endpoint(event_types=[EventType.CREATED, EventType.DELETED], consent_type="EMAIL")
    delivered = [e for e in email if e.kind in ("CREATED", "DELETED", "ERASED")]

    with django_assert_num_queries(1):
        events = webhook_endpoint_events(hook, after=0, up_to=phone.id, limit=10)

    assert events == delivered
    assert webhook_endpoint_events(hook, after=delivered[0].id, up_to=phone.id, limit=1) == [
        delivered[1]
    ]
    assert webhook_endpoint_events(hook, after=0, up_to=delivered[1].id - 1, limit=10) == [
        delivered[0]
    ]
    assert webhook_endpoint_events(endpoint(), after=0, up_to=phone.id, limit=10)[-1] == phone


def test_the_endpoints_due_are_active_unleased_and_behind_or_retrying_in_two_queries(
    django_assert_num_queries,
):
    event = upsert(confirm()).event
    now = timezone.now()
    behind = endpoint(cursor=event.id - 1)
    endpoint(cursor=event.id)  # caught up
    retry_due = endpoint(cursor=event.id, next_attempt_at=now - timedelta(seconds=1))
    endpoint(cursor=0, next_attempt_at=now + timedelta(minutes=1))  # retry later
    endpoint(cursor=0, is_active=False)
    endpoint(cursor=0, lease_token="held", lease_expires_at=now + timedelta(minutes=1))
    lease_expired = endpoint(cursor=0, lease_token="lost", lease_expires_at=now)

    with django_assert_num_queries(2):
        due = webhook_endpoints_due()

    assert due == [behind.id, retry_due.id, lease_expired.id]


def test_the_endpoints_a_commit_wakes_are_active_with_nothing_queued_nor_waiting_in_one_query(
    django_assert_num_queries,
):
    now = timezone.now()
    asleep = endpoint()
    endpoint(wake_pending=True)  # a delivery is queued already
    retry_due = endpoint(next_attempt_at=now - timedelta(seconds=1))
    endpoint(next_attempt_at=now + timedelta(minutes=1))  # waits for its retry
    endpoint(is_active=False)

    with django_assert_num_queries(1):
        woken = asleep_webhook_endpoints()

    assert woken == [asleep.id, retry_due.id]


def test_no_event_leaves_no_endpoint_behind(django_assert_num_queries):
    endpoint(cursor=0)

    with django_assert_num_queries(2):
        assert webhook_endpoints_due() == []


# --- revoke jobs: the ones the sweep queues again ----------------------------------------------


def test_stalled_revoke_jobs_are_the_unfinished_ones_without_recent_progress(
    settings, django_assert_num_queries
):
    settings.REVOKE_JOB_STALLED_SECONDS = 60
    long_ago = timezone.now() - timedelta(seconds=61)

    def job(status, updated_at):
        return RevokeJob.objects.create(
            status=status,
            reason="Complaint.",
            actor="staff",
            asked_by={},
            total=1,
            updated_at=updated_at,
        )

    queued, running = job("QUEUED", long_ago), job("RUNNING", long_ago)
    job("DONE", long_ago)
    job("RUNNING", timezone.now())

    with django_assert_num_queries(0):
        stalled = stalled_revoke_jobs()  # no query until evaluated
    with django_assert_num_queries(1):
        assert sorted(stalled, key=lambda j: j.id) == [queued, running]


# --- the consent API's query: a page by keyset position ----------------------------------------

T0 = datetime(2025, 3, 1, tzinfo=UTC)


def dated(number: int, day: int, hour: int, **extra) -> MarketingConsent:
    """A consent with a known id (ids order as `number`), created on `day`, updated at `hour`."""
    return MarketingConsentFactory(
        id=uuid.UUID(int=number),
        address=f"p{number:02d}@example.com",
        created_date=T0 + timedelta(days=day),
        updated_date=T0 + timedelta(hours=hour),
        **extra,
    )


@pytest.fixture
def tied():
    """Seven consents whose creation days tie in threes, and whose update hours tie too."""
    return {
        number: dated(number, day, hour)
        for number, day, hour in [
            (1, 2, 5),
            (2, 1, 7),
            (3, 2, 5),
            (4, 1, 6),
            (5, 3, 9),
            (6, 2, 8),
            (7, 1, 7),
        ]
    }


def ids(page) -> list[int]:
    return [consent.id.int for consent in page.consents]


def position(consent: MarketingConsent, order) -> list:
    return [getattr(consent, key.column) for key in order]


BY_CREATED_THEN_ID = (SortKey("created_date"), SortKey("id"))
# created ascending; in a tie, updated descending; in a tie of both, id descending.
BY_CREATED_UPDATED_DESC = (
    SortKey("created_date"),
    SortKey("updated_date", descending=True),
    SortKey("id", descending=True),
)
BY_CREATED_DESC = (SortKey("created_date", descending=True), SortKey("id", descending=True))


def test_the_first_page_is_the_first_consents_in_order_in_one_query(
    tied, django_assert_num_queries
):
    with django_assert_num_queries(1) as queries:
        page = consents_page(Q(), BY_CREATED_THEN_ID, 3)

    assert (ids(page), page.more) == ([2, 4, 7], True)
    assert queries.captured_queries[0]["sql"].endswith("LIMIT 4")  # one past the page


@pytest.mark.parametrize(
    ("order", "expected"),
    [
        (BY_CREATED_THEN_ID, [2, 4, 7, 1, 3, 6, 5]),
        (BY_CREATED_UPDATED_DESC, [7, 2, 4, 6, 3, 1, 5]),
        (BY_CREATED_DESC, [5, 6, 3, 1, 7, 4, 2]),
    ],
    ids=["created-id", "created-updated_desc-id_desc", "created_desc-id_desc"],
)
@pytest.mark.parametrize("limit", [1, 2, 3, 7])
def test_paging_after_and_before_a_position_goes_through_ties_both_ways(
    tied, django_assert_num_queries, order, expected, limit
):
    forward, page = [], consents_page(Q(), order, limit)
    pages = [page]
    while True:
        forward += ids(page)
        if not page.more:
            break
        with django_assert_num_queries(1):
            page = consents_page(Q(), order, limit, after=position(page.consents[-1], order))
        pages.append(page)
    assert forward == expected
    assert [len(page.consents) for page in pages[:-1]] == [limit] * (len(pages) - 1)

    # Back from the last page, before its first consent: the same pages, each in order.
    backward, page = [], pages[-1]
    for earlier in reversed(pages[:-1]):
        with django_assert_num_queries(1):
            page = consents_page(Q(), order, limit, before=position(page.consents[0], order))
        assert (ids(page), page.more) == (ids(earlier), earlier is not pages[0])
        backward = ids(page) + backward
    assert backward + ids(pages[-1]) == expected


def test_a_page_before_the_second_consent_is_the_first_with_nothing_more(tied):
    second = tied[4]

    page = consents_page(Q(), BY_CREATED_THEN_ID, 5, before=position(second, BY_CREATED_THEN_ID))

    assert (ids(page), page.more) == ([2], False)


def test_a_page_after_the_last_consent_is_empty(tied):
    last = tied[5]

    page = consents_page(Q(), BY_CREATED_THEN_ID, 5, after=position(last, BY_CREATED_THEN_ID))

    assert (ids(page), page.more) == ([], False)


def test_a_page_holds_only_consents_matching_the_condition_and_never_a_tombstone(tied):
    tied[6].state = "PENDING"
    tied[6].save()
    MarketingConsentFactory(
        address=erased_address("gone@example.com"), state="REVOKED", revoke_date=SIGNED_UP
    )

    assert ids(consents_page(Q(state="CONFIRMED"), BY_CREATED_THEN_ID, 10)) == [2, 4, 7, 1, 3, 5]
    assert ids(consents_page(~Q(state="CONFIRMED"), BY_CREATED_THEN_ID, 10)) == [6]
    after_first = consents_page(
        Q(state="CONFIRMED"), BY_CREATED_THEN_ID, 2, after=position(tied[7], BY_CREATED_THEN_ID)
    )
    assert (ids(after_first), after_first.more) == ([1, 3], True)


def test_a_page_is_read_after_a_position_or_before_it_not_both(tied):
    at = position(tied[1], BY_CREATED_THEN_ID)

    with pytest.raises(ValueError):
        consents_page(Q(), BY_CREATED_THEN_ID, 2, after=at, before=at)
