"""On PostgreSQL, an erasure at the same moment as a write of the same address: whichever
commits first, the address ends as one tombstone, and each side answers what it answers when
the two run one after the other (docs/privacy.md, "Erasure and concurrent writes").

Each interleaving is forced: the first side runs in a transaction held open until the second
is either done or waiting for a lock, then commits."""

import threading
import time
from collections.abc import Callable
from datetime import timedelta

import pytest
from django.db import connection, transaction
from django.test.utils import CaptureQueriesContext
from django.utils import timezone

from consents import ledger
from consents.addresses import erased_address, is_erased
from consents.exceptions import ConsentAlreadyExists
from consents.ledger import BatchItem, ChangeContext, ConfirmationActivity, ConsentChange
from consents.models import ConsentEvent, MarketingConsent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

CONTEXT = ChangeContext(door="CONSENT_API", actor="crm")
ERASURE = ChangeContext(door="ADMIN", actor="dpo", note="Erasure request #1")


def opt_in() -> ConsentChange:
    """An opt-in dated before the erasure (a late import, a retried sign-up): an erased address
    stays opted out."""
    return ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(
            source="FORM", updated_date=timezone.now() - timedelta(hours=1)
        ),
    )


def upsert(address: str) -> tuple:
    result = ledger.consent_upsert(type="EMAIL", address=address, change=opt_in(), context=CONTEXT)
    return result.kind, result.consent.state, result.consent.address


def python_path(address: str) -> tuple:
    result = ledger.locking.upsert_with_lock("EMAIL", address, opt_in(), CONTEXT, None)
    return result.kind, result.consent.state, result.consent.address


def create(address: str) -> tuple:
    try:
        result = ledger.consent_create(
            type="EMAIL", address=address, confirmation=opt_in().confirmation, context=CONTEXT
        )
    except ConsentAlreadyExists:
        return ("ALREADY_EXISTS",)
    return result.kind, result.consent.state, result.consent.address


def batch(address: str) -> tuple:
    [result] = ledger.consent_upsert_batch(
        items=[BatchItem("EMAIL", address, opt_in())], context=CONTEXT
    )
    return result.kind, result.consent.state, result.consent.address


def many(address: str) -> tuple:
    [outcome] = ledger.consent_upsert_many(
        items=[BatchItem("EMAIL", address, opt_in())], context=CONTEXT
    )
    return outcome.kind, outcome.state, outcome.address


WRITES: dict[str, Callable[[str], tuple]] = {
    "upsert": upsert,
    "python path": python_path,
    "create": create,
    "batch": batch,
    "many": many,
}


def erase(address: str) -> tuple:
    result = ledger.consent_erase(type="EMAIL", address=address, context=ERASURE)
    return result.kind, result.event.previous_state, result.consent.state


def ledger_of(address: str) -> tuple[list[tuple], list[tuple]]:
    """The address's rows (stored in clear or as its tombstone) and its events, without the
    spellings, so that two addresses' ledgers compare."""
    tombstone = erased_address(address)
    rows = [
        ("tombstone" if is_erased(row.address) else "in clear", row.state, row.revision)
        for row in MarketingConsent.objects.filter(address__in=[address, tombstone])
    ]
    events = list(
        ConsentEvent.objects.filter(address__in=[address, tombstone])
        .order_by("id")
        .values_list("kind", "previous_state", "state", "revision")
    )
    return rows, events


def lock_waiters() -> int:
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT count(*) FROM pg_stat_activity WHERE datname = current_database()"
            " AND wait_event_type = 'Lock' AND pid <> pg_backend_pid()"
        )
        return cursor.fetchone()[0]


def interleaved(first: Callable[[], tuple], second: Callable[[], tuple]) -> tuple[tuple, tuple]:
    """Run `first` in a transaction held open until `second`, started meanwhile on another
    connection, has finished or waits for a lock; then commit `first`, and let `second` end."""
    answers: dict[str, tuple] = {}
    errors: list[BaseException] = []
    first_done, release, second_done = threading.Event(), threading.Event(), threading.Event()

    def run(name: str, call: Callable[[], tuple], done: threading.Event, hold: bool) -> None:
        try:
            with transaction.atomic():
                answers[name] = call()
                done.set()
                if hold:
                    release.wait(timeout=30)
        except BaseException as exc:  # reported below
            errors.append(exc)
        finally:
            done.set()
            connection.close()

    threads = [
        threading.Thread(target=run, args=("first", first, first_done, True)),
        threading.Thread(target=run, args=("second", second, second_done, False)),
    ]
    threads[0].start()
    assert first_done.wait(timeout=30)
    threads[1].start()
    deadline = time.monotonic() + 30
    while not second_done.is_set() and not lock_waiters() and time.monotonic() < deadline:
        time.sleep(0.01)
    release.set()
    for thread in threads:
        thread.join()
    assert errors == []
    return answers["first"], answers["second"]


def sequential(first: Callable[[], tuple], second: Callable[[], tuple]) -> tuple[tuple, tuple]:
    return first(), second()


@pytest.fixture(params=["new address", "stored address"])
def stored_before(request) -> Callable[[str], None]:
    """The address had no consent yet, or a consent already (confirmed two hours ago)."""

    def store(address: str) -> None:
        if request.param == "stored address":
            change = ConsentChange(
                state="CONFIRMED",
                confirmation=ConfirmationActivity(updated_date=timezone.now() - timedelta(hours=2)),
            )
            ledger.consent_upsert(type="EMAIL", address=address, change=change, context=CONTEXT)

    return store


@pytest.mark.parametrize("write", WRITES.values(), ids=WRITES.keys())
@pytest.mark.parametrize("erasure_first", [True, False], ids=["erasure first", "write first"])
def test_erasure_and_a_concurrent_write_end_as_if_one_ran_after_the_other(
    write, erasure_first, stored_before
):
    def scenario(address: str, run: Callable) -> tuple:
        stored_before(address)
        sides = (lambda: erase(address), lambda: write(address))
        first, second = run(*(sides if erasure_first else sides[::-1]))
        return first, second, *ledger_of(address)

    expected = scenario("one-after-the-other@example.com", sequential)
    concurrent = scenario("at-once@example.com", interleaved)

    assert concurrent == as_sent(expected, "one-after-the-other@example.com", "at-once@example.com")
    rows = concurrent[2]
    assert [row[:2] for row in rows] == [("tombstone", "REVOKED")]


def as_sent(run: tuple, sequential_address: str, concurrent_address: str) -> tuple:
    """The sequential run's answers as the concurrent run gives them: under its own address."""
    return (
        tuple(
            tuple(concurrent_address if value == sequential_address else value for value in part)
            for part in run[:2]
        )
        + run[2:]
    )


def addresses_claimed_in_reverse_order() -> tuple[str, str]:
    """Two addresses whose claims a batch takes in the opposite order to the one given."""
    with connection.cursor() as cursor:
        cursor.execute(
            "SELECT address FROM (SELECT 'person-' || n || '@example.com' AS address"
            " FROM generate_series(1, 10) n) a ORDER BY hashtext('EMAIL ' || address) & 255"
        )
        low, *_, high = (row[0] for row in cursor.fetchall())
    return high, low


def test_a_persons_erasure_and_a_batch_of_their_addresses_do_not_deadlock(monkeypatch):
    """The erasure erases one address, then the next: a batch claiming both in between must not
    hold one it needs while waiting for the other."""
    first, second = addresses_claimed_in_reverse_order()
    erased_one, go_on = threading.Event(), threading.Event()
    erase_one = ledger.locking.erase_claimed

    def erase_then_pause(*args):
        result = erase_one(*args)
        if not erased_one.is_set():
            erased_one.set()
            go_on.wait(timeout=30)
        return result

    monkeypatch.setattr(ledger.locking, "erase_claimed", erase_then_pause)
    answers: dict[str, list] = {}
    errors: list[BaseException] = []

    def run(name: str, call: Callable[[], list]) -> None:
        try:
            answers[name] = call()
        except BaseException as exc:  # reported below
            errors.append(exc)
            erased_one.set()
        finally:
            connection.close()

    erasure = threading.Thread(
        target=run,
        args=(
            "erasure",
            lambda: ledger.consent_erase_all(
                addresses=[("EMAIL", first), ("EMAIL", second)], context=ERASURE
            ),
        ),
    )
    items = [BatchItem("EMAIL", address, opt_in()) for address in (first, second)]
    batch = threading.Thread(
        target=run,
        args=("batch", lambda: ledger.consent_upsert_many(items=items, context=CONTEXT)),
    )
    erasure.start()
    assert erased_one.wait(timeout=30)
    batch.start()
    deadline = time.monotonic() + 30
    while batch.is_alive() and not lock_waiters() and time.monotonic() < deadline:
        time.sleep(0.01)
    go_on.set()
    erasure.join()
    batch.join()

    assert errors == []
    assert [outcome.kind for outcome in answers["batch"]] == ["SUPERSEDED", "SUPERSEDED"]
    assert sorted(MarketingConsent.objects.values_list("address", "state")) == sorted(
        (erased_address(address), "REVOKED") for address in (first, second)
    )


def test_each_erasure_claims_its_addresses_once_before_it_reads_them():
    """A person's erasure claims all their addresses in one statement, and erases each without
    claiming it again; a single erasure claims its address. Each claim comes before the first
    read of the consents."""
    with CaptureQueriesContext(connection) as erase_all:
        ledger.consent_erase_all(
            addresses=[("EMAIL", "one@example.com"), ("EMAIL", "two@example.com")],
            context=ERASURE,
        )
    with CaptureQueriesContext(connection) as erase_one:
        ledger.consent_erase(type="EMAIL", address="three@example.com", context=ERASURE)

    for captured, addresses in (
        (erase_all, ["one@example.com", "two@example.com"]),
        (erase_one, ["three@example.com"]),
    ):
        statements = [query["sql"] for query in captured.captured_queries]
        claims = [n for n, sql in enumerate(statements) if "pg_advisory_xact_lock(" in sql]
        reads = [n for n, sql in enumerate(statements) if "consents_marketingconsent" in sql]
        assert len(claims) == 1
        assert claims[0] < reads[0]
        assert all(address in statements[claims[0]] for address in addresses)
