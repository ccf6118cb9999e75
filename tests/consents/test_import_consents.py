"""manage.py import_consents: CSV through the ledger, dry run by default, bad rows reported."""

import csv
import gc
import io
import os
import subprocess
import sys
from datetime import UTC, datetime
from pathlib import Path
from unittest import mock

import pytest
from django.core.management.base import CommandError
from django.db import connection

from consents.exports import CSV_HEADER
from consents.ledger import (
    ChangeContext,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
    consent_upsert_many,
)
from consents.management.batch import BULK_GC_THRESHOLD
from consents.models import ConsentEvent, MarketingConsent

pytestmark = pytest.mark.django_db

HEADER = ",".join(CSV_HEADER)
API = ChangeContext(door="CONSENT_API", actor="crm")


def write_csv(path: Path, *rows: str, header: str = HEADER) -> str:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def stored() -> list[tuple]:
    return list(
        MarketingConsent.objects.order_by("type", "address").values_list(
            "type", "address", "state", "revision"
        )
    )


def day(number: int) -> datetime:
    return datetime(2025, 1, number, 12, 0, tzinfo=UTC)


def revoke_through_api(address: str, on: int) -> None:
    change = ConsentChange(
        state="REVOKED", revoke=RevokeActivity(source="FORM", updated_date=day(on))
    )
    consent_upsert(type="EMAIL", address=address, change=change, context=API)


GOOD_ROWS = (
    "EMAIL,Alice@Example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,Signed up,2025-01-02T12:00:00.000Z",
    "EMAIL,bob@example.com,REVOKED,OTHER,,Complaint,2025-01-03T12:00:00Z",
    "PHONE,+1 415 555 0100,PENDING,IN_PERSON,DOUBLE_CONFIRMATION,Paper form,2025-01-04T12:00:00Z",
    "PHONE,+14155550101,NEVER_CONFIRMED,,,,",
)


def test_dry_run_reports_what_would_change_and_writes_nothing(tmp_path, run_command):
    path = write_csv(tmp_path / "in.csv", *GOOD_ROWS)

    output = run_command("import_consents", path)

    assert output.stdout == (
        "DRY RUN — rows read: 4, created: 4, updated: 0, unchanged: 0, superseded: 0, "
        "failed: 0\n"
        "Nothing was written. Run again with --apply to write these changes.\n"
    )
    assert output.stderr == ""
    assert MarketingConsent.objects.count() == 0
    assert ConsentEvent.objects.count() == 0


def test_apply_writes_each_row_through_the_ledger_with_its_event(tmp_path, run_command):
    path = write_csv(tmp_path / "in.csv", *GOOD_ROWS)

    output = run_command("import_consents", path, "--apply")

    assert output.stdout == (
        "rows read: 4, created: 4, updated: 0, unchanged: 0, superseded: 0, failed: 0\n"
    )
    assert stored() == [
        ("EMAIL", "alice@example.com", "CONFIRMED", 1),
        ("EMAIL", "bob@example.com", "REVOKED", 1),
        ("PHONE", "+14155550100", "PENDING", 1),
        ("PHONE", "+14155550101", "NEVER_CONFIRMED", 1),
    ]
    alice = MarketingConsent.objects.get(address="alice@example.com")
    assert (
        alice.confirmation_source,
        alice.confirmation_opt_in_level,
        alice.confirmation_description,
        alice.confirmation_date,
        alice.revoke_date,
    ) == ("FORM", "SINGLE_CONFIRMATION", "Signed up", day(2), None)
    bob = MarketingConsent.objects.get(address="bob@example.com")
    assert (bob.revoke_source, bob.revoke_description, bob.revoke_date) == (
        "OTHER",
        "Complaint",
        day(3),
    )
    events = ConsentEvent.objects.order_by("id")
    assert {(e.door, e.actor) for e in events} == {("COMMAND", "import_consents")}
    assert [
        (
            e.address,
            e.kind,
            e.revision,
            e.previous_state,
            e.state,
            e.activity_source,
            e.activity_date,
        )
        for e in events
    ] == [
        ("alice@example.com", "CREATED", 1, "", "CONFIRMED", "FORM", day(2)),
        ("bob@example.com", "CREATED", 1, "", "REVOKED", "OTHER", day(3)),
        ("+14155550100", "CREATED", 1, "", "PENDING", "IN_PERSON", day(4)),
        ("+14155550101", "CREATED", 1, "", "NEVER_CONFIRMED", "", None),
    ]


def test_dry_run_counts_what_apply_then_does(tmp_path, run_command):
    revoke_through_api("bob@example.com", on=1)
    path = write_csv(
        tmp_path / "in.csv",
        *GOOD_ROWS,
        "EMAIL,bob@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2024-12-01T00:00:00Z",
        "EMAIL,nobody,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2024-12-01T00:00:00Z",
    )

    dry = run_command("import_consents", path)
    applied = run_command("import_consents", path, "--apply")

    counts = "rows read: 6, created: 3, updated: 1, unchanged: 0, superseded: 1, failed: 1"
    assert dry.stdout.splitlines()[0] == f"DRY RUN — {counts}"
    assert applied.stdout == f"{counts}\n"
    assert dry.stderr == applied.stderr


@pytest.mark.django_db(transaction=True)  # on PostgreSQL the sessions see what is committed
def test_sessions_change_nothing_in_what_is_imported_or_reported(tmp_path, run_command):
    """On SQLite (and in a dry run) one session merges every batch; on PostgreSQL three do
    (tested further in test_import_consents_sessions.py)."""
    revoke_through_api("bob@example.com", on=1)
    path = write_csv(tmp_path / "in.csv", *GOOD_ROWS, "EMAIL,nobody,CONFIRMED,FORM,,,")

    dry = run_command("import_consents", path, "--sessions", "3")
    applied = run_command(
        "import_consents", path, "--apply", "--sessions", "3", "--batch-size", "2"
    )

    counts = "rows read: 5, created: 3, updated: 1, unchanged: 0, superseded: 0, failed: 1"
    assert dry.stdout.splitlines()[0] == f"DRY RUN — {counts}"
    assert applied.stdout == f"{counts}\n"
    assert applied.stderr == dry.stderr == "line 6: date: The activity's date is required.\n"
    assert stored() == [
        ("EMAIL", "alice@example.com", "CONFIRMED", 1),
        ("EMAIL", "bob@example.com", "REVOKED", 2),
        ("PHONE", "+14155550100", "PENDING", 1),
        ("PHONE", "+14155550101", "NEVER_CONFIRMED", 1),
    ]


def test_importing_the_same_file_again_changes_nothing(tmp_path, run_command):
    path = write_csv(tmp_path / "in.csv", *GOOD_ROWS)
    run_command("import_consents", path, "--apply")
    before = list(MarketingConsent.objects.order_by("id").values())

    output = run_command("import_consents", path, "--apply")

    assert output.stdout == (
        "rows read: 4, created: 0, updated: 0, unchanged: 4, superseded: 0, failed: 0\n"
    )
    assert list(MarketingConsent.objects.order_by("id").values()) == before
    assert (
        list(ConsentEvent.objects.order_by("id").values_list("kind", flat=True))[4:]
        == ["UNCHANGED"] * 4
    )


@pytest.mark.django_db(transaction=True)  # on PostgreSQL the sessions see what is committed
def test_a_file_imported_again_with_changes_changes_only_those_rows(tmp_path, run_command):
    """One batch of rows already stored as they are (unchanged), changed rows, and rows that try
    to confirm a consent revoked meanwhile: only the changed consents move, each row has its one
    event, and the opt-out stands against the older opt-in. Unchanged rows keep their revision
    and their updated date."""
    first = [
        "EMAIL,same@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-02T12:00:00Z",
        "EMAIL,described@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-02T12:00:00Z",
        "EMAIL,kept-out@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-02T12:00:00Z",
        "PHONE,+14155550100,REVOKED,OTHER,,Complaint,2025-01-03T12:00:00Z",
        "EMAIL,back-in@example.com,REVOKED,FORM,,,2025-01-03T12:00:00Z",
    ]
    run_command("import_consents", write_csv(tmp_path / "first.csv", *first), "--apply")
    revoke_through_api("kept-out@example.com", on=10)  # revoked after the file was written
    before = {consent.address: consent for consent in MarketingConsent.objects.order_by("address")}
    last_event = ConsentEvent.objects.latest("id").id
    again = [
        first[0],
        first[1].replace(",,2025", ",Newsletter page,2025"),  # the description now given
        first[2],  # tries to confirm, dated before the opt-out
        first[3],
        "EMAIL,back-in@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-05T12:00:00Z",
    ]

    output = run_command(
        "import_consents", write_csv(tmp_path / "again.csv", *again), "--apply", "--sessions", "2"
    )

    assert output.stdout == (
        "rows read: 5, created: 0, updated: 2, unchanged: 2, superseded: 1, failed: 0\n"
    )
    assert stored() == [
        ("EMAIL", "back-in@example.com", "CONFIRMED", 2),
        ("EMAIL", "described@example.com", "CONFIRMED", 2),
        ("EMAIL", "kept-out@example.com", "REVOKED", 2),
        ("EMAIL", "same@example.com", "CONFIRMED", 1),
        ("PHONE", "+14155550100", "REVOKED", 1),
    ]
    after = {consent.address: consent for consent in MarketingConsent.objects.all()}
    for address in ("same@example.com", "kept-out@example.com", "+14155550100"):
        assert after[address].updated_date == before[address].updated_date
        assert after[address].revision == before[address].revision
    assert after["kept-out@example.com"].revoke_date == day(10)
    assert after["described@example.com"].confirmation_description == "Newsletter page"
    assert sorted(
        (e.address, e.kind, e.revision, e.previous_state, e.state, e.requested_state)
        for e in ConsentEvent.objects.filter(id__gt=last_event)
    ) == [
        ("+14155550100", "UNCHANGED", 1, "REVOKED", "REVOKED", "REVOKED"),
        ("back-in@example.com", "UPDATED", 2, "REVOKED", "CONFIRMED", "CONFIRMED"),
        ("described@example.com", "UPDATED", 2, "CONFIRMED", "CONFIRMED", "CONFIRMED"),
        ("kept-out@example.com", "SUPERSEDED", 2, "REVOKED", "REVOKED", "CONFIRMED"),
        ("same@example.com", "UNCHANGED", 1, "CONFIRMED", "CONFIRMED", "CONFIRMED"),
    ]


def test_the_garbage_collector_runs_rarely_during_an_import_and_as_before_after_it(
    tmp_path, run_command
):
    before = gc.get_threshold()
    during = []

    def merge(**kwargs):
        during.append(gc.get_threshold())
        return consent_upsert_many(**kwargs)

    with mock.patch("consents.ledger.sessions.consent_upsert_many", merge):
        output = run_command("import_consents", write_csv(tmp_path / "in.csv", *GOOD_ROWS))

    assert output.stdout.startswith("DRY RUN — rows read: 4, created: 4,")
    assert during == [(BULK_GC_THRESHOLD, *before[1:])]
    assert gc.get_threshold() == before != during[0]


def test_an_older_opt_in_never_undoes_a_newer_opt_out(tmp_path, run_command):
    revoke_through_api("carol@example.com", on=10)
    path = write_csv(
        tmp_path / "in.csv",
        "EMAIL,carol@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,Old list,2025-01-05T00:00:00Z",
    )

    output = run_command("import_consents", path, "--apply")

    assert output.stdout == (
        "rows read: 1, created: 0, updated: 0, unchanged: 0, superseded: 1, failed: 0\n"
    )
    assert stored() == [("EMAIL", "carol@example.com", "REVOKED", 1)]
    event = ConsentEvent.objects.latest("id")
    assert (
        event.kind,
        event.revision,
        event.previous_state,
        event.state,
        event.requested_state,
        event.activity_date,
        event.actor,
    ) == (
        "SUPERSEDED",
        1,
        "REVOKED",
        "REVOKED",
        "CONFIRMED",
        datetime(2025, 1, 5, tzinfo=UTC),
        "import_consents",
    )


def test_a_newer_opt_in_updates_an_older_opt_out(tmp_path, run_command):
    revoke_through_api("dan@example.com", on=1)
    path = write_csv(
        tmp_path / "in.csv",
        "EMAIL,dan@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-05T00:00:00Z",
    )

    run_command("import_consents", path, "--apply", "-v", "2")

    assert stored() == [("EMAIL", "dan@example.com", "CONFIRMED", 2)]
    event = ConsentEvent.objects.latest("id")
    assert (event.kind, event.revision, event.previous_state, event.state) == (
        "UPDATED",
        2,
        "REVOKED",
        "CONFIRMED",
    )


BAD_ROWS = [
    # (row, reason)
    ("EMAIL,not-an-address,CONFIRMED,FORM,,,2025-01-02T00:00:00Z",
     "address: 'not-an-address' is not a valid email address."),
    ("EMAIL,e@example.com,OPTED_IN,FORM,,,2025-01-02T00:00:00Z",
     "state: 'OPTED_IN' is not one of UNKNOWN_STATE, NEVER_CONFIRMED, PENDING, CONFIRMED, "
     "REVOKED."),
    ("FAX,e@example.com,CONFIRMED,FORM,,,2025-01-02T00:00:00Z",
     "type: 'FAX' is not one of EMAIL, PHONE."),
    ("EMAIL,e@example.com,PENDING,,,,",
     "A confirmation activity is required when the state is PENDING."),
    ("EMAIL,e@example.com,REVOKED,,,,",
     "A revoke activity is required when the state is REVOKED."),
    ("EMAIL,e@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,",
     "date: The activity's date is required."),
    ("EMAIL,e@example.com,CONFIRMED,FORM,,,yesterday",
     "date: 'yesterday' is not an ISO-8601 date."),
    ("EMAIL,e@example.com,CONFIRMED,FORM,,,2999-01-01T00:00:00Z",
     "date: The date is in the future."),
    ("EMAIL,e@example.com,CONFIRMED,POSTCARD,,,2025-01-02T00:00:00Z",
     "source: 'POSTCARD' is not one of UNKNOWN_SOURCE, IN_PERSON, FORM, LINK_CONFIRMATION, "
     "EMAIL_SERVICE, WIX_USERS, OTHER."),
    ("EMAIL,e@example.com,REVOKED,FORM,SINGLE_CONFIRMATION,,2025-01-02T00:00:00Z",
     "opt_in_level: Only a confirmation activity has an opt-in level: leave it empty for "
     "REVOKED."),
    ("EMAIL,e@example.com,NEVER_CONFIRMED,FORM,,,2025-01-02T00:00:00Z",
     "state: A NEVER_CONFIRMED row has no activity: leave source, opt_in_level, description and "
     "date empty."),
    ("EMAIL,e@example.com,CONFIRMED", "Expected 7 fields, found 3."),
]  # fmt: skip


def test_bad_rows_are_reported_with_their_line_and_reason_and_the_rest_is_imported(
    tmp_path, run_command
):
    rows = [GOOD_ROWS[0], *(row for row, _ in BAD_ROWS), GOOD_ROWS[1]]
    path = write_csv(tmp_path / "in.csv", *rows)
    errors = tmp_path / "errors.csv"

    output = run_command("import_consents", path, "--apply", "--errors", str(errors))

    assert output.stdout == (
        "rows read: 14, created: 2, updated: 0, unchanged: 0, superseded: 0, failed: 12\n"
    )
    # The header is line 1, the first good row line 2: the bad rows are lines 3 to 14.
    expected = [(line, reason) for line, (_, reason) in enumerate(BAD_ROWS, start=3)]
    assert output.stderr.splitlines() == [f"line {line}: {reason}" for line, reason in expected]
    with errors.open(newline="", encoding="utf-8") as report:
        written = list(csv.reader(report))
    assert written[0] == ["line", "reason", *CSV_HEADER]
    assert written[1:] == [
        [str(line), reason, *next(csv.reader([row]))]
        for (line, reason), (row, _) in zip(expected, BAD_ROWS, strict=True)
    ]
    assert stored() == [
        ("EMAIL", "alice@example.com", "CONFIRMED", 1),
        ("EMAIL", "bob@example.com", "REVOKED", 1),
    ]
    assert ConsentEvent.objects.count() == 2


def test_line_numbers_count_physical_lines_of_multiline_fields_and_unreadable_lines(
    tmp_path, run_command
):
    path = tmp_path / "in.csv"
    path.write_bytes(
        (
            f"{HEADER}\r\n"
            'EMAIL,a@example.com,CONFIRMED,FORM,,"Two\r\nlines",2025-01-02T00:00:00Z\r\n'
            "\r\n"
            "EMAIL,b@example.com,CONFIRMED,FORM,,Caf"
        ).encode()
        + b"\xe9,2025-01-02T00:00:00Z\r\n"
        + b"EMAIL,bad,CONFIRMED,FORM,,,2025-01-02T00:00:00Z\r\n"
    )

    output = run_command("import_consents", str(path), "--apply")

    assert output.stderr.splitlines() == [
        "line 5: Not UTF-8 text.",
        "line 6: address: 'bad' is not a valid email address.",
    ]
    assert output.stdout == (
        "rows read: 3, created: 1, updated: 0, unchanged: 0, superseded: 0, failed: 2\n"
    )
    consent = MarketingConsent.objects.get()
    assert consent.confirmation_description == "Two\r\nlines"


def test_columns_may_come_in_any_order_and_a_byte_order_mark_is_ignored(tmp_path, run_command):
    path = tmp_path / "in.csv"
    path.write_bytes(
        "\ufeffdate,type,address,state,source,opt_in_level,description\n"
        "2025-01-02T12:00:00Z,EMAIL,e@example.com,CONFIRMED,FORM,,\n".encode()
    )

    run_command("import_consents", str(path), "--apply")

    consent = MarketingConsent.objects.get()
    assert (consent.address, consent.confirmation_date, consent.confirmation_opt_in_level) == (
        "e@example.com",
        day(2),
        "UNKNOWN_OPT_IN_LEVEL",
    )


def test_reads_stdin_for_a_dash(monkeypatch, run_command):
    data = f"{HEADER}\n{GOOD_ROWS[0]}\n".encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    output = run_command("import_consents", "-", "--apply")

    assert output.stdout.startswith("rows read: 1, created: 1,")
    assert stored() == [("EMAIL", "alice@example.com", "CONFIRMED", 1)]


def test_verbosity_two_lists_each_change_and_zero_keeps_only_the_summary(tmp_path, run_command):
    path = write_csv(tmp_path / "in.csv", GOOD_ROWS[0], GOOD_ROWS[0], "EMAIL,x,NEVER_CONFIRMED,,,,")

    verbose = run_command("import_consents", path, "-v", "2")
    quiet = run_command("import_consents", path, "-v", "0")

    assert verbose.stdout.splitlines()[:1] == [
        "line 2: EMAIL alice@example.com: created (new → CONFIRMED)"
    ]
    assert verbose.stderr == "line 4: address: 'x' is not a valid email address.\n"
    assert quiet.stderr == ""
    assert quiet.stdout.splitlines()[0] == (
        "DRY RUN — rows read: 3, created: 1, updated: 0, unchanged: 1, superseded: 0, failed: 1"
    )


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"", "in.csv: the CSV header must name the columns " + HEADER + " (found: nothing)."),
        (
            b"email,state\nx@example.com,CONFIRMED\n",
            "in.csv: the CSV header must name the columns " + HEADER + " (found: email,state).",
        ),
        (
            b"\x89PNG\r\n\x1a\n\x00\x00",
            "in.csv: Not UTF-8 text. Expected a CSV header.",
        ),
    ],
    ids=["empty", "wrong-header", "binary"],
)
def test_an_unusable_file_fails_cleanly_before_writing(
    tmp_path, run_command, monkeypatch, content, message
):
    monkeypatch.chdir(tmp_path)
    Path("in.csv").write_bytes(content)

    with pytest.raises(CommandError) as raised:
        run_command("import_consents", "in.csv", "--apply", "--errors", "errors.csv")

    assert str(raised.value) == message
    assert not Path("errors.csv").exists()
    assert MarketingConsent.objects.count() == 0


def test_a_missing_file_or_unknown_extension_fails_cleanly(tmp_path, run_command):
    with pytest.raises(CommandError) as missing:
        run_command("import_consents", str(tmp_path / "nope.csv"))
    with pytest.raises(CommandError) as unknown:
        run_command("import_consents", str(tmp_path / "consents.xlsx"))

    assert str(missing.value) == f"Cannot read {tmp_path / 'nope.csv'}: No such file or directory."
    assert str(unknown.value) == (
        f"Cannot tell the format of {tmp_path / 'consents.xlsx'} from its extension: "
        "pass --format csv|jsonl."
    )


def test_an_unusable_file_exits_non_zero_without_a_traceback(tmp_path):
    manage = Path(__file__).resolve().parents[2] / "manage.py"
    env = {**os.environ, "DJANGO_SETTINGS_MODULE": "consentsite.test_settings"}

    finished = subprocess.run(
        [sys.executable, str(manage), "import_consents", str(tmp_path / "nope.csv")],
        capture_output=True,
        text=True,
        env=env,
        check=False,
    )

    assert finished.returncode == 1
    assert finished.stderr == (
        f"CommandError: Cannot read {tmp_path / 'nope.csv'}: No such file or directory.\n"
    )


def large_file(path: Path, rows: int) -> str:
    with path.open("w", encoding="utf-8") as output:
        output.write(HEADER + "\n")
        for number in range(rows):
            output.write(
                f"EMAIL,bulk{number}@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,"
                "2025-01-02T00:00:00Z\n"
            )
    return str(path)


def test_a_large_file_imports_in_a_bounded_number_of_queries_per_batch(
    tmp_path, run_command, django_assert_num_queries
):
    path = large_file(tmp_path / "large.csv", 20_000)
    # Per batch on PostgreSQL: savepoint, staging table, emptying it, COPY, merge, release. On
    # SQLite, the Python path: savepoint, read, inserts, check inserted, event inserts, release,
    # the inserts of 1000 rows split by SQLite's limit of 999 query parameters (16 statements
    # for the consents, 21 for the events).
    per_batch = 6 if connection.vendor == "postgresql" else 41

    with django_assert_num_queries(20 * per_batch):
        output = run_command("import_consents", path, "--apply", "--batch-size", "1000")

    assert output.stdout.startswith("rows read: 20000, created: 20000,")
    assert MarketingConsent.objects.count() == 20_000
    assert ConsentEvent.objects.count() == 20_000


# --- JSON Lines ---------------------------------------------------------------------------------

JSONL_GOOD = [
    # As export_consents writes it (the consent API's consent, extra fields ignored).
    '{"id": "x", "revision": "3", "details": {"type": "EMAIL", "email": "Ann@Example.com"}, '
    '"state": "CONFIRMED", "lastConfirmationActivity": {"source": "FORM", "description": "", '
    '"updatedDate": "2025-01-02T12:00:00.000Z", "optInLevel": "SINGLE_CONFIRMATION"}, '
    '"extendedFields": {"namespaces": {"shop": {"store": "12"}}}}',
    # Wrapped, snake_case, both activities.
    '{"marketingConsent": {"details": {"type": "PHONE", "phone": "+1 415 555 0100"}, '
    '"state": "REVOKED", "last_confirmation_activity": {"source": "IN_PERSON", '
    '"updated_date": "2025-01-01T00:00:00Z"}, "lastRevokeActivity": {"source": "FORM", '
    '"updatedDate": "2025-01-03T12:00:00Z"}}}',
]


def test_jsonl_lines_are_read_by_the_consent_apis_serializer(tmp_path, run_command):
    path = tmp_path / "in.jsonl"
    path.write_text("\n".join(JSONL_GOOD) + "\n", encoding="utf-8")

    output = run_command("import_consents", str(path), "--apply")

    assert output.stdout == (
        "rows read: 2, created: 2, updated: 0, unchanged: 0, superseded: 0, failed: 0\n"
    )
    ann = MarketingConsent.objects.get(type="EMAIL")
    assert (ann.address, ann.state, ann.confirmation_date, ann.extended_fields) == (
        "ann@example.com",
        "CONFIRMED",
        day(2),
        {"namespaces": {"shop": {"store": "12"}}},
    )
    phone = MarketingConsent.objects.get(type="PHONE")
    assert (phone.address, phone.state, phone.confirmation_source, phone.revoke_date) == (
        "+14155550100",
        "REVOKED",
        "IN_PERSON",
        day(3),
    )
    assert set(ConsentEvent.objects.values_list("door", "actor")) == {
        ("COMMAND", "import_consents")
    }


JSONL_BAD = [
    ('{"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "CONFIRMED"',
     "Not JSON: Expecting ',' delimiter at column 78."),
    ('{"details": {"type": "EMAIL", "email": "nope"}, "state": "CONFIRMED", '
     '"lastConfirmationActivity": {"updatedDate": "2025-01-02T00:00:00Z"}}',
     "details.email: 'nope' is not a valid email address."),
    ('{"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "PENDING"}',
     "lastConfirmationActivity: Required when the state is PENDING."),
    ('{"details": {"type": "EMAIL", "email": "a@example.com"}, "state": "REVOKED", '
     '"lastRevokeActivity": {"source": "FORM"}}',
     "lastRevokeActivity.updatedDate: An imported activity needs its date."),
    ("[1, 2]", "Invalid data. Expected a dictionary, but got list."),
]  # fmt: skip


def test_bad_jsonl_lines_are_reported_with_their_line(tmp_path, run_command):
    path = tmp_path / "in.jsonl"
    lines = [JSONL_GOOD[0], "", *(line for line, _ in JSONL_BAD)]
    path.write_bytes("\n".join(lines).encode() + b"\n\xff\xfe\n")
    errors = tmp_path / "errors.csv"

    output = run_command("import_consents", str(path), "--apply", "--errors", str(errors))

    expected = [(line, reason) for line, (_, reason) in enumerate(JSONL_BAD, start=3)]
    expected.append((8, "Not UTF-8 text."))
    assert output.stderr.splitlines() == [f"line {line}: {reason}" for line, reason in expected]
    assert output.stdout == (
        "rows read: 7, created: 1, updated: 0, unchanged: 0, superseded: 0, failed: 6\n"
    )
    with errors.open(newline="", encoding="utf-8") as report:
        written = list(csv.reader(report))
    assert written[0] == ["line", "reason", "record"]
    assert written[1] == ["3", JSONL_BAD[0][1], JSONL_BAD[0][0]]
    assert written[-1] == ["8", "Not UTF-8 text."]


def test_a_file_that_is_not_json_lines_fails_cleanly(tmp_path, run_command):
    path = write_csv(tmp_path / "consents.jsonl", GOOD_ROWS[0])

    with pytest.raises(CommandError) as raised:
        run_command("import_consents", path, "--apply")

    assert str(raised.value) == (
        f"{path}: expected JSON Lines, one consent object per line (line 1 is not a JSON object)."
    )
    assert MarketingConsent.objects.count() == 0


def test_jsonl_is_read_from_stdin_with_format(monkeypatch, run_command):
    data = (JSONL_GOOD[0] + "\n").encode()
    monkeypatch.setattr(sys, "stdin", io.TextIOWrapper(io.BytesIO(data)))

    output = run_command("import_consents", "-", "--format", "jsonl", "--apply")

    assert output.stdout.startswith("rows read: 1, created: 1,")
