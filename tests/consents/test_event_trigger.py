"""Events are append-only in the database itself: raw SQL cannot change or remove one. The
ledger's redaction (erasing a person) is the one deliberate way around it."""

import pytest
from django.db import DatabaseError, connection, transaction

from consents.addresses import erased_address
from consents.ledger import ChangeContext, consent_erase
from consents.models import ConsentEvent
from tests.consents.conftest import confirmed

pytestmark = pytest.mark.django_db

STAFF = ChangeContext(door="ADMIN", actor="dpo", note="Erasure request #1")


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


def test_erasure_rewrites_the_events_of_the_erased_address_only(upsert):
    upsert(confirmed("erase@example.com"))
    upsert(confirmed("erase@example.com", date="2024-02-01T00:00:00Z"))
    upsert(confirmed("keep@example.com"))

    consent_erase(type="EMAIL", address="erase@example.com", context=STAFF)

    tombstone = erased_address("erase@example.com")
    assert sorted(ConsentEvent.objects.values_list("kind", "address")) == sorted(
        [
            ("CREATED", tombstone),
            ("UPDATED", tombstone),
            ("ERASED", tombstone),
            ("CREATED", "keep@example.com"),
        ]
    )


@pytest.mark.postgres
def test_the_trigger_guards_again_after_a_redaction(event):
    consent_erase(type="EMAIL", address="proof@example.com", context=STAFF)

    with pytest.raises(DatabaseError, match="Cannot update or delete rows"):
        raw("UPDATE consents_consentevent SET address = 'x' WHERE id = %s", event.id)

    assert ConsentEvent.objects.get(id=event.id).address == erased_address("proof@example.com")
