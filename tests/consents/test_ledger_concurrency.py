"""On PostgreSQL, many writers on one new address at once (ledger rule 5 in docs/design.md)."""

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
)
from consents.models import ConsentEvent, MarketingConsent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

WRITERS = 24
START = datetime(2024, 1, 1, tzinfo=UTC)


def change_for(n: int) -> ConsentChange:
    date = START + timedelta(hours=n)
    if n % 2:
        return ConsentChange(state="REVOKED", revoke=RevokeActivity(updated_date=date))
    return ConsentChange(state="CONFIRMED", confirmation=ConfirmationActivity(updated_date=date))


def test_parallel_writers_on_one_new_address_make_one_consent_and_a_gapless_history():
    barrier = threading.Barrier(WRITERS)
    errors: list[BaseException] = []
    # Shuffled arrival: the newest activity is not the last to start.
    order = [(n * 7) % WRITERS for n in range(WRITERS)]

    def write(n: int) -> None:
        try:
            barrier.wait()
            consent_upsert(
                type="EMAIL",
                address="race@example.com",
                change=change_for(n),
                context=ChangeContext(door="CONSENT_API", actor=f"writer-{n}"),
            )
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            connection.close()

    threads = [threading.Thread(target=write, args=(n,)) for n in order]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()

    assert errors == []
    consent = MarketingConsent.objects.get(address="race@example.com")
    newest = change_for(WRITERS - 1)
    assert consent.state == newest.state
    assert consent.newest_activity_date == START + timedelta(hours=WRITERS - 1)
    events = list(ConsentEvent.objects.filter(address="race@example.com"))
    assert len(events) == WRITERS
    changes = sorted(e.revision for e in events if e.kind in ("CREATED", "UPDATED"))
    assert changes == list(range(1, consent.revision + 1))
    assert sum(e.kind == "CREATED" for e in events) == 1
