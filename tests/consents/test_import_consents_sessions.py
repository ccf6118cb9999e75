"""import_consents --sessions N on PostgreSQL: each batch merged by N database sessions at once,
an address always in the same one. It must give exactly what one session gives, and a run that
stops half way must be finished by running it again."""

import threading
from io import StringIO
from pathlib import Path
from unittest import mock

import pytest
from django.core.management import call_command

from consents.ledger import consent_upsert_many
from consents.models import ConsentEvent, MarketingConsent
from tests.consents.test_import_consents import write_csv
from tests.consents.test_ledger_pg import CONSENT_FIELDS, EVENT_FIELDS

pytestmark = [pytest.mark.postgres, pytest.mark.django_db(transaction=True)]

# What a run writes, but for the times it ran at.
FIELDS = [name for name in CONSENT_FIELDS if name not in ("created_date", "updated_date")]

STATES = [
    ("CONFIRMED", "FORM", "SINGLE_CONFIRMATION"),
    ("REVOKED", "OTHER", ""),
    ("PENDING", "IN_PERSON", "DOUBLE_CONFIRMATION"),
    ("CONFIRMED", "LINK_CONFIRMATION", "DOUBLE_CONFIRMATION"),
]


def rows(prefix: str) -> list[str]:
    """Rows on a few addresses each sent many times, across batches and within one: newer and
    older activities (superseded), the same row again (unchanged), other spellings of an
    address (normalised to one consent), NEVER_CONFIRMED rows and a bad row."""
    lines = []
    for step in range(40):
        slot = step * 7 % 11
        state, source, level = STATES[step % len(STATES)]
        # Mostly newer than the last; every fifth older (superseded). No two dates alike.
        date = f"2025-01-{1 if step % 5 == 4 else 2 + step // 2:02d}T12:{step:02d}:00Z"
        spelling = f"{prefix}{slot}@example.com"
        if step % 3 == 0:
            spelling = spelling.upper()
        lines.append(f"EMAIL,{spelling},{state},{source},{level},step {step},{date}")
        if step % 9 == 0:
            lines.append(lines[-1])
        if step % 13 == 0:
            lines.append(f"EMAIL,{prefix}never{slot}@example.com,NEVER_CONFIRMED,,,,")
    lines.insert(17, "EMAIL,not an address,CONFIRMED,FORM,,,2025-01-02T12:00:00Z")
    return lines


def history(prefix: str) -> list:
    """Every consent of the prefix's addresses and its events in order, with the addresses
    written without the prefix, and without what differs by construction (ids, times)."""
    found = []
    consents = MarketingConsent.objects.filter(address__contains=prefix).order_by("address")
    for consent in consents.values("address", *FIELDS):
        events = ConsentEvent.objects.filter(address=consent["address"]).order_by("id")
        found.append(
            (
                {**consent, "address": consent["address"].replace(prefix, "")},
                list(events.values(*EVENT_FIELDS)),
            )
        )
    return found


def import_file(path: str, *options: str) -> tuple[str, str]:
    stdout, stderr = StringIO(), StringIO()
    call_command(
        "import_consents",
        path,
        "--apply",
        "--batch-size",
        "6",
        *options,
        stdout=stdout,
        stderr=stderr,
    )
    return stdout.getvalue(), stderr.getvalue()


def test_sessions_give_exactly_the_consents_and_events_of_one_session(tmp_path: Path):
    one = import_file(write_csv(tmp_path / "one.csv", *rows("one-")), "--sessions", "1")
    three = import_file(write_csv(tmp_path / "three.csv", *rows("three-")), "--sessions", "3")

    assert one == three
    assert one[0] == (
        "rows read: 50, created: 15, updated: 23, unchanged: 5, superseded: 6, failed: 1\n"
    )
    assert one[1] == "line 19: address: 'not an address' is not a valid email address.\n"
    assert history("three-") == history("one-")
    assert len(history("one-")) == 15


def test_an_import_stopped_by_a_failing_session_finishes_when_run_again(tmp_path: Path):
    import_file(write_csv(tmp_path / "clean.csv", *rows("clean-")), "--sessions", "1")
    path = write_csv(tmp_path / "again.csv", *rows("again-"))
    calls = 0

    def fails_on_the_fifth_part(**kwargs):
        nonlocal calls
        calls += 1
        if calls == 5:
            raise RuntimeError("the database went away")
        return consent_upsert_many(**kwargs)

    threads = threading.active_count()
    with (
        mock.patch("consents.ledger.sessions.consent_upsert_many", fails_on_the_fifth_part),
        pytest.raises(RuntimeError, match="the database went away"),
    ):
        import_file(path, "--sessions", "2")
    assert threading.active_count() == threads, threading.enumerate()  # every session closed
    stopped = [consent for consent, _ in history("again-")]
    assert 0 < len(stopped) < 15

    stdout, _ = import_file(path, "--sessions", "2")

    assert stdout.startswith("rows read: 50, created: ")
    assert [consent for consent, _ in history("again-")] == [
        consent for consent, _ in history("clean-")
    ]


def test_by_default_an_import_merges_batches_of_5000_rows_in_two_sessions(tmp_path: Path):
    lines = [
        f"EMAIL,person{n}@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-02T12:00:00Z"
        for n in range(5001)
    ]
    path = write_csv(tmp_path / "in.csv", *lines)
    merged = []

    def recorded(*, items, **kwargs):
        merged.append((threading.current_thread().name, len(items.accepted)))
        return consent_upsert_many(items=items, **kwargs)

    stdout = StringIO()
    with mock.patch("consents.ledger.sessions.consent_upsert_many", recorded):
        call_command("import_consents", path, "--apply", stdout=stdout)

    assert stdout.getvalue() == (
        "rows read: 5001, created: 5001, updated: 0, unchanged: 0, superseded: 0, failed: 0\n"
    )
    # Each session merges its part of every batch, in order: the parts of a batch add up to it.
    parts = {}
    for session, size in merged:
        parts.setdefault(session, []).append(size)
    assert sorted(parts) == ["merge-session-0", "merge-session-1"]
    assert [sum(sizes) for sizes in zip(*parts.values(), strict=True)] == [5000, 1]
    assert all(sizes[0] > 0 for sizes in parts.values())  # addresses spread over both
    assert MarketingConsent.objects.count() == ConsentEvent.objects.count() == 5001
