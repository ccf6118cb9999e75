"""On PostgreSQL the batch paths (the bulk commands' outcomes, the consent API's consents) run as
set-based statements over a COPY'd staging table (consents/ledger/postgres.py). Whatever batches
an address receives, in whatever order and with whatever repeats, they must give exactly what the
Python path gives: the same outcome per item, the same consents, the same events."""

import threading
import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.db import connection, connections
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from psycopg.copy import LibpqWriter

from consents.ledger import (
    BatchItem,
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    Outcome,
    RevokeActivity,
    consent_upsert_batch,
    consent_upsert_many,
)
from consents.ledger.batch import prepare_batch, upsert_batch_in_python
from consents.ledger.postgres import COPY_STAGING_SQL, CREATE_STAGING_SQL, staging_copy_data
from consents.ledger.sessions import split_batch
from consents.models import ConsentEvent, MarketingConsent
from tests.consents.test_ledger_pg import CLOCK, CONSENT_FIELDS, EVENT_FIELDS, changes, outcome

pytestmark = [pytest.mark.postgres]

CONTEXT = ChangeContext(
    door="COMMAND", actor="import_consents", request_id="r1", ip_address="10.0.0.1", note="n"
)
SLOTS = 3

# A batch: items on a few addresses (so that some repeat), each a slot and a change.
batches = st.lists(
    st.lists(st.tuples(st.integers(0, SLOTS - 1), changes), min_size=1, max_size=6),
    min_size=1,
    max_size=3,
)


def described(outcome: Outcome | Exception) -> tuple:
    if isinstance(outcome, Exception):
        return (type(outcome).__name__, str(outcome))
    return (outcome.kind, outcome.type, outcome.previous_state, outcome.state)


def stored(addresses: list[str]) -> list:
    """Each slot's consent and events, but for what differs by construction (ids, addresses,
    the time an event was recorded)."""
    history = []
    for address in addresses:
        consent = MarketingConsent.objects.filter(address=address).values(*CONSENT_FIELDS).first()
        events = list(
            ConsentEvent.objects.filter(address=address).order_by("id").values(*EVENT_FIELDS)
        )
        history.append((consent, events))
    return history


@pytest.mark.django_db
@settings(
    max_examples=150,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(consent_type=st.sampled_from(["EMAIL", "PHONE"]), sequence=batches)
def test_the_set_based_batch_gives_what_the_python_path_gives(consent_type, sequence):
    # Fresh addresses per example (the examples share one database transaction); phone numbers
    # whose exchange starts with 2-9 are valid.
    token = 2_000_000 + uuid.uuid4().int % 7_000_000
    if consent_type == "EMAIL":
        fast = [f"fast{token}-{slot}@example.com" for slot in range(SLOTS)]
        answered = [f"answered{token}-{slot}@example.com" for slot in range(SLOTS)]
        slow = [f"slow{token}-{slot}@example.com" for slot in range(SLOTS)]
    else:
        fast = [f"+1415{token + slot}" for slot in range(SLOTS)]
        answered = [f"+1650{token + slot}" for slot in range(SLOTS)]
        slow = [f"+1628{token + slot}" for slot in range(SLOTS)]

    for step, batch in enumerate(sequence):

        def items(addresses: list[str], batch: list = batch) -> list[BatchItem]:
            return [BatchItem(consent_type, addresses[slot], change) for slot, change in batch]

        with mock.patch("django.utils.timezone.now", return_value=CLOCK + timedelta(seconds=step)):
            in_sql = consent_upsert_many(items=items(fast), context=CONTEXT)
            with_consents = consent_upsert_batch(items=items(answered), context=CONTEXT)
            in_python = upsert_batch_in_python(items=items(slow), context=CONTEXT)

        assert [described(o) for o in in_sql] == [
            described(o if isinstance(o, Exception) else Outcome.of(o)) for o in in_python
        ], (step, batch)
        assert [answer(o) for o in with_consents] == [answer(o) for o in in_python], (step, batch)
    assert stored(fast) == stored(slow) == stored(answered)


def answer(result: object) -> object:
    """What the consent API answers of an item: its error, or its consent and event."""
    if isinstance(result, Exception):
        return (type(result).__name__, str(result))
    return outcome(result, result.consent.address)


@pytest.mark.django_db
def test_a_batch_runs_in_a_fixed_number_of_queries_whatever_its_size(django_assert_num_queries):
    confirmed = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(source="FORM", updated_date=CLOCK),
    )
    items = [BatchItem("EMAIL", f"n{number}@example.com", confirmed) for number in range(2000)]
    # One repeat: a second round of the merge statement.
    items.append(items[0])

    # Savepoint, staging table, emptying it, COPY, two merge rounds, release.
    with django_assert_num_queries(7):
        outcomes = consent_upsert_many(items=items, context=CONTEXT)

    assert [o.kind for o in outcomes[:2]] == ["CREATED", "CREATED"]
    assert outcomes[-1].kind == "UNCHANGED"
    assert ConsentEvent.objects.count() == 2001


@pytest.mark.django_db(transaction=True)
def test_an_address_created_by_a_concurrent_writer_meanwhile_is_merged_in_order():
    """The batch's insert waits for the other writer and loses: that address's items are then
    applied one by one after it, in order; the other addresses are merged as usual."""
    first = datetime(2024, 1, 1, tzinfo=UTC)

    def confirmed(day: int) -> ConsentChange:
        return ConsentChange(
            state="CONFIRMED",
            confirmation=ConfirmationActivity(
                source="FORM", updated_date=first + timedelta(days=day)
            ),
        )

    other = connections.create_connection("default")
    other.connect()
    other.set_autocommit(False)
    with other.cursor() as cursor:
        cursor.execute(
            "INSERT INTO consents_marketingconsent (id, type, address, state, revision,"
            " confirmation_source, confirmation_description, confirmation_date,"
            " confirmation_opt_in_level, revoke_source, revoke_description, extended_fields,"
            " created_date, updated_date) VALUES (%s, 'EMAIL', 'race@example.com', 'CONFIRMED',"
            " 1, 'IN_PERSON', '', %s, 'SINGLE_CONFIRMATION', '', '', '{}', now(), now())",
            [uuid.uuid4(), first + timedelta(days=5)],
        )
    outcomes: list = []

    def import_batch() -> None:
        try:
            outcomes.extend(
                consent_upsert_many(
                    items=[
                        BatchItem("EMAIL", "race@example.com", confirmed(1)),
                        BatchItem("EMAIL", "calm@example.com", confirmed(1)),
                        BatchItem("EMAIL", "race@example.com", confirmed(9)),
                    ],
                    context=CONTEXT,
                )
            )
        finally:
            connection.close()

    writer = threading.Thread(target=import_batch)
    writer.start()
    writer.join(timeout=1)
    assert writer.is_alive(), "the batch should wait for the other writer's insert"
    other.commit()
    other.close()
    writer.join()

    assert [(o.kind, o.address, o.state) for o in outcomes] == [
        ("SUPERSEDED", "race@example.com", "CONFIRMED"),
        ("CREATED", "calm@example.com", "CONFIRMED"),
        ("UPDATED", "race@example.com", "CONFIRMED"),
    ]
    race = MarketingConsent.objects.get(address="race@example.com")
    assert (race.revision, race.confirmation_date) == (2, first + timedelta(days=9))
    assert list(
        ConsentEvent.objects.filter(address="race@example.com")
        .order_by("id")
        .values_list("kind", "revision")
    ) == [("SUPERSEDED", 1), ("UPDATED", 2)]


@pytest.mark.django_db
def test_a_batchs_copy_data_is_what_psycopg_sends_for_its_rows_and_splits_by_row():
    """The staging data a bulk command formats beforehand must be what `Copy.write_row` sends."""
    date = datetime(2024, 1, 2, 3, 4, 5, 678000, tzinfo=UTC)
    changes = [
        ConsentChange(state="NEVER_CONFIRMED"),
        ConsentChange(
            state="CONFIRMED",
            confirmation=ConfirmationActivity(
                source="FORM", description='tab\there\nline "q" \\ é', updated_date=date
            ),
            extended_fields={"namespaces": {"n": ["\t\n\\", 1.5, None]}},
        ),
        ConsentChange(state="REVOKED", revoke=RevokeActivity(description="\r", updated_date=date)),
    ]
    items = [
        BatchItem("EMAIL", f"row{n}@example.com", change) for n, change in enumerate(changes * 4)
    ]
    batch = prepare_batch(items)
    sent = bytearray()

    class Capture(LibpqWriter):
        def write(self, data):
            sent.extend(data)
            super().write(data)

    with connection.cursor() as cursor:
        cursor.execute(CREATE_STAGING_SQL)
        raw = cursor.cursor
        with raw.copy(COPY_STAGING_SQL, writer=Capture(raw)) as copy:
            for row in batch.staging_rows:
                copy.write_row(row)
    assert batch.copy_data == sent
    parts = split_batch(batch, 3)
    assert sum(len(part.accepted) for part in parts) == len(items)
    for part in parts:
        assert part.copy_data == staging_copy_data(part.staging_rows)
