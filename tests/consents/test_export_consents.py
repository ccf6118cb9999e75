"""manage.py export_consents: the import's format, streamed; export → import changes nothing."""

import csv
import json
import os
from datetime import UTC, datetime
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from consents.dates import format_date
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_confirm_by_link,
    consent_revoke_by_link,
    consent_upsert,
)
from consents.models import ConsentEvent, MarketingConsent

pytestmark = pytest.mark.django_db

CONTEXT = ChangeContext(door="CONSENT_API", actor="crm")


def day(number: int) -> datetime:
    return datetime(2025, 1, number, 12, 0, tzinfo=UTC)


def upsert(type: str, address: str, **change: object) -> None:
    consent_upsert(type=type, address=address, change=ConsentChange(**change), context=CONTEXT)


@pytest.fixture
def consents() -> None:
    """A consent in every state, one of them revoked after an opt-in (both activities kept)."""
    confirmation = ConfirmationActivity(
        source="FORM",
        description='Said "yes", at the till',
        updated_date=day(2),
        opt_in_level="SINGLE_CONFIRMATION",
    )
    upsert("EMAIL", "zoe@example.com", state="CONFIRMED", confirmation=confirmation)
    upsert("EMAIL", "amy@example.com", state="CONFIRMED", confirmation=confirmation)
    upsert(
        "EMAIL",
        "amy@example.com",
        state="REVOKED",
        revoke=RevokeActivity(source="REVOKE_LINK", description="", updated_date=day(3)),
    )
    upsert(
        "PHONE",
        "+14155550100",
        state="PENDING",
        confirmation=ConfirmationActivity(
            source="IN_PERSON", updated_date=day(4), opt_in_level="DOUBLE_CONFIRMATION"
        ),
        extended_fields={"namespaces": {"shop": {"store": "12"}}},
    )
    upsert("PHONE", "+14155550101", state="NEVER_CONFIRMED")
    upsert("EMAIL", "unknown@example.com", state="UNKNOWN_STATE")


EXPECTED_CSV = [
    "type,address,state,source,opt_in_level,description,date",
    "EMAIL,amy@example.com,REVOKED,REVOKE_LINK,,,2025-01-03T12:00:00.000Z",
    "EMAIL,unknown@example.com,UNKNOWN_STATE,,,,",
    'EMAIL,zoe@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,"Said ""yes"", at the till",'
    "2025-01-02T12:00:00.000Z",
    "PHONE,'+14155550100,PENDING,IN_PERSON,DOUBLE_CONFIRMATION,,2025-01-04T12:00:00.000Z",
    "PHONE,'+14155550101,NEVER_CONFIRMED,,,,",
]


def test_exports_every_consent_as_csv_ordered_by_type_and_address(consents, tmp_path, run_command):
    path = tmp_path / "out.csv"

    output = run_command("export_consents", str(path))

    assert path.read_bytes().decode().split("\r\n") == [*EXPECTED_CSV, ""]
    assert output.stdout == f"Exported 5 consents to {path}.\n"
    assert not [name for name in os.listdir(tmp_path) if name != "out.csv"]


def test_filters_by_state_and_type(consents, tmp_path, run_command):
    path = tmp_path / "out.csv"

    run_command("export_consents", "--type", "EMAIL", "--state", "CONFIRMED", str(path))

    assert path.read_bytes().decode().split("\r\n") == [
        EXPECTED_CSV[0],
        EXPECTED_CSV[3],
        "",
    ]


def test_writes_to_stdout_for_a_dash_with_the_summary_on_stderr(consents, run_command):
    output = run_command("export_consents", "-", "--state", "REVOKED")

    assert output.stdout.split("\r\n") == [EXPECTED_CSV[0], EXPECTED_CSV[1], ""]
    assert output.stderr == "Exported 1 consents to stdout.\n"


def test_export_then_import_changes_nothing(consents, tmp_path, run_command):
    path = str(tmp_path / "out.csv")
    before = list(MarketingConsent.objects.order_by("id").values())
    events = ConsentEvent.objects.count()
    run_command("export_consents", path)

    output = run_command("import_consents", path, "--apply")

    assert output.stdout == (
        "rows read: 5, created: 0, updated: 0, unchanged: 5, superseded: 0, failed: 0\n"
    )
    assert list(MarketingConsent.objects.order_by("id").values()) == before
    assert (
        list(ConsentEvent.objects.order_by("id")[events:].values_list("kind", flat=True))
        == ["UNCHANGED"] * 5
    )


FORMULAS = [
    '=HYPERLINK("http://example.com","x")',
    "+1+cmd|' /C calc'!A0",
    "-2+3",
    "@SUM(A1:A2)",
    "\tindented",
    "\rreturned",
    "'already quoted",
    "'=quoted formula",
]


@pytest.fixture
def formulas() -> None:
    """Consents whose descriptions a spreadsheet would run as formulas (and two with an
    apostrophe first), at addresses a to h."""
    for letter, description in zip("abcdefgh", FORMULAS, strict=True):
        confirmation = ConfirmationActivity(
            source="FORM", description=description, updated_date=day(2)
        )
        upsert("EMAIL", f"{letter}@example.com", state="CONFIRMED", confirmation=confirmation)


def test_cells_a_spreadsheet_would_run_are_neutralised(formulas, tmp_path, run_command):
    path = tmp_path / "out.csv"

    run_command("export_consents", str(path))

    with path.open(newline="") as exported:
        descriptions = [row[5] for row in csv.reader(exported)][1:]
    assert descriptions == [f"'{description}" for description in FORMULAS]


def test_neutralised_cells_import_back_as_they_were(formulas, tmp_path, run_command):
    path = str(tmp_path / "out.csv")
    run_command("export_consents", path)
    before = list(MarketingConsent.objects.order_by("id").values())

    output = run_command("import_consents", path, "--apply")

    assert output.stdout == (
        "rows read: 8, created: 0, updated: 0, unchanged: 8, superseded: 0, failed: 0\n"
    )
    assert list(MarketingConsent.objects.order_by("id").values()) == before


def test_an_export_into_an_empty_database_recreates_each_state_and_its_activity(
    consents, tmp_path, run_command
):
    path = str(tmp_path / "out.csv")
    run_command("export_consents", path)
    fields = ["type", "address", "state", "confirmation_date", "revoke_date", "revision"]
    exported = list(MarketingConsent.objects.order_by("type", "address").values_list(*fields))
    MarketingConsent.objects.all().delete()

    run_command("import_consents", path, "--apply")

    imported = list(MarketingConsent.objects.order_by("type", "address").values_list(*fields))
    # One activity per row: a revoked consent comes back without its earlier opt-in.
    assert imported == [
        ("EMAIL", "amy@example.com", "REVOKED", None, day(3), 1),
        *((*row[:5], 1) for row in exported[1:]),
    ]


def test_streams_in_a_constant_number_of_queries(tmp_path, run_command, django_assert_num_queries):
    MarketingConsent.objects.bulk_create(
        MarketingConsent(type="EMAIL", address=f"p{number}@example.com", state="UNKNOWN_STATE")
        for number in range(5000)
    )

    # The count for the progress bar, then one streamed read (chunks of one cursor).
    with django_assert_num_queries(2):
        output = run_command("export_consents", str(tmp_path / "out.csv"))

    assert output.stdout.endswith("Exported 5000 consents to " + str(tmp_path / "out.csv") + ".\n")


def test_an_unwritable_path_fails_cleanly_and_leaves_no_file(tmp_path, run_command):
    missing_dir = tmp_path / "missing" / "out.csv"

    with pytest.raises(CommandError) as raised:
        run_command("export_consents", str(missing_dir))

    assert str(raised.value) == f"Cannot write {missing_dir}: No such file or directory."
    assert not Path(tmp_path / "missing").exists()


def test_a_failed_export_removes_its_partial_file(tmp_path, run_command, monkeypatch):
    upsert("EMAIL", "a@example.com", state="UNKNOWN_STATE")

    def broken(consent: MarketingConsent) -> list[str]:
        raise RuntimeError("disk trouble")

    monkeypatch.setattr("consents.management.commands.export_consents.consent_csv_row", broken)

    with pytest.raises(RuntimeError):
        run_command("export_consents", str(tmp_path / "out.csv"))

    assert os.listdir(tmp_path) == []


def test_exports_json_lines_in_the_consent_apis_shape(consents, tmp_path, run_command):
    path = tmp_path / "out.jsonl"

    run_command("export_consents", str(path), "--type", "PHONE", "--state", "PENDING")

    [line] = path.read_text(encoding="utf-8").splitlines()
    consent = MarketingConsent.objects.get(address="+14155550100")
    assert json.loads(line) == {
        "id": str(consent.id),
        "revision": "1",
        "details": {"type": "PHONE", "phone": "+14155550100"},
        "state": "PENDING",
        "lastConfirmationActivity": {
            "source": "IN_PERSON",
            "updatedDate": "2025-01-04T12:00:00.000Z",
            "optInLevel": "DOUBLE_CONFIRMATION",
        },
        "extendedFields": {"namespaces": {"shop": {"store": "12"}}},
        "createdDate": format_date(consent.created_date),
        "updatedDate": format_date(consent.updated_date),
    }


@pytest.mark.parametrize("extension", ["csv", "jsonl"])
def test_consents_dated_now_round_trip_to_no_change(consents, tmp_path, run_command, extension):
    # Dates set by the server's clock, not by a client.
    amy = MarketingConsent.objects.get(address="amy@example.com")
    consent_confirm_by_link(consent_id=amy.id, issued_at=timezone.now(), context=CONTEXT)
    zoe = MarketingConsent.objects.get(address="zoe@example.com")
    consent_revoke_by_link(consent_id=zoe.id, context=CONTEXT)
    path = str(tmp_path / f"out.{extension}")
    before = list(MarketingConsent.objects.order_by("id").values())
    run_command("export_consents", path)

    output = run_command("import_consents", path, "--apply")

    assert output.stdout == (
        "rows read: 5, created: 0, updated: 0, unchanged: 5, superseded: 0, failed: 0\n"
    )
    assert list(MarketingConsent.objects.order_by("id").values()) == before


def test_json_lines_into_an_empty_database_recreate_both_activities(
    consents, tmp_path, run_command
):
    path = str(tmp_path / "out.jsonl")
    run_command("export_consents", path)
    fields = [
        "type",
        "address",
        "state",
        "confirmation_source",
        "confirmation_description",
        "confirmation_date",
        "confirmation_opt_in_level",
        "revoke_source",
        "revoke_description",
        "revoke_date",
        "extended_fields",
    ]
    exported = list(MarketingConsent.objects.order_by("type", "address").values_list(*fields))
    MarketingConsent.objects.all().delete()

    run_command("import_consents", path, "--apply")

    assert list(MarketingConsent.objects.order_by("type", "address").values_list(*fields)) == (
        exported
    )
