"""Events are append-only in the database itself: raw SQL cannot change or remove one. The
redaction function is the one deliberate way around it."""

import pytest
from django.db import DatabaseError, connection, transaction

from consents.ledger import redact_event_addresses
from consents.models import ConsentEvent
from tests.consents.conftest import confirmed

pytestmark = pytest.mark.django_db


@pytest.fixture
def event(upsert) -> ConsentEvent:
    upsert(confirmed("proof@example.com"))
    return ConsentEvent.objects.get()


def raw(sql: str, *params: object) -> None:
    with transaction.atomic(), connection.cursor() as cursor:
        cursor.execute(sql, params)


@pytest.mark.postgres
@pytest.mark.parametrize(
    "sql",
    [
        "UPDATE consents_consentevent SET state = 'REVOKED' WHERE id = %s",
        "UPDATE consents_consentevent SET address = 'other@example.com' WHERE id = %s",
        "DELETE FROM consents_consentevent WHERE id = %s",
    ],
)
def test_raw_sql_cannot_change_or_remove_an_event(event, sql):
    with pytest.raises(DatabaseError, match="Cannot update or delete rows"):
        raw(sql, event.id)

    assert ConsentEvent.objects.get() == event
    assert (ConsentEvent.objects.get().state, ConsentEvent.objects.get().address) == (
        "CONFIRMED",
        "proof@example.com",
    )


def test_redaction_rewrites_an_address_in_its_events_only(upsert):
    upsert(confirmed("erase@example.com"))
    upsert(confirmed("erase@example.com", date="2024-02-01T00:00:00Z"))
    upsert(confirmed("keep@example.com"))

    rewritten = redact_event_addresses(
        type="EMAIL", address="erase@example.com", replacement="erased-1"
    )

    assert rewritten == 2
    assert sorted(ConsentEvent.objects.values_list("address", flat=True)) == [
        "erased-1",
        "erased-1",
        "keep@example.com",
    ]


@pytest.mark.postgres
def test_the_trigger_guards_again_after_a_redaction(event):
    redact_event_addresses(type="EMAIL", address="proof@example.com", replacement="erased-1")

    with pytest.raises(DatabaseError, match="Cannot update or delete rows"):
        raw("UPDATE consents_consentevent SET address = 'x' WHERE id = %s", event.id)

    assert ConsentEvent.objects.get().address == "erased-1"
