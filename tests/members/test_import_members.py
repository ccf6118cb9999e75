"""manage.py import_members: upsert by loyalty id, else external id; dry run by default."""

import csv
from pathlib import Path

import pytest
from django.core.management.base import CommandError

from consents.models import ConsentEvent, MarketingConsent
from members.models import Member
from tests.factories import MemberFactory

pytestmark = pytest.mark.django_db

HEADER = "loyalty_id,external_id,email,phone,first_name,last_name"


def write_csv(path: Path, *rows: str, header: str = HEADER) -> str:
    path.write_text("\n".join([header, *rows]) + "\n", encoding="utf-8")
    return str(path)


def members() -> list[tuple]:
    return list(
        Member.objects.order_by("id").values_list(
            "loyalty_id", "external_id", "email", "phone", "first_name", "last_name"
        )
    )


@pytest.fixture
def stored() -> None:
    MemberFactory(
        loyalty_id="LOY-1",
        external_id=None,
        email="ada@example.com",
        phone="+14155550100",
        first_name="Ada",
        last_name="Lovelace",
    )
    MemberFactory(
        loyalty_id=None,
        external_id="EXT-2",
        email="bo@example.com",
        phone="",
        first_name="Bo",
        last_name="Diddley",
    )


ROWS = (
    # Updates LOY-1: a new phone and an external id; the blank fields keep their values.
    "LOY-1,EXT-1,,+1 415 555 0199,,",
    # Finds EXT-2 by its external id and gives it its loyalty id.
    "LOY-2,EXT-2,,,,Diddley",
    # A new member.
    "LOY-3,,Cy@Example.COM,(415) 555-0103,Cy,Young",
)


def test_dry_run_reports_what_would_change_and_writes_nothing(stored, tmp_path, run_command):
    before = members()

    output = run_command("import_members", write_csv(tmp_path / "m.csv", *ROWS))

    assert output.stdout == (
        "DRY RUN — rows read: 3, created: 1, updated: 2, unchanged: 0, failed: 0\n"
        "Nothing was written. Run again with --apply to write these changes.\n"
    )
    assert members() == before


def test_apply_creates_and_updates_by_loyalty_id_else_external_id(stored, tmp_path, run_command):
    output = run_command("import_members", write_csv(tmp_path / "m.csv", *ROWS), "--apply")

    assert output.stdout == "rows read: 3, created: 1, updated: 2, unchanged: 0, failed: 0\n"
    assert members() == [
        ("LOY-1", "EXT-1", "ada@example.com", "+14155550199", "Ada", "Lovelace"),
        ("LOY-2", "EXT-2", "bo@example.com", "", "Bo", "Diddley"),
        ("LOY-3", None, "cy@example.com", "+14155550103", "Cy", "Young"),
    ]
    # Members point at addresses: no consent is made or changed.
    assert MarketingConsent.objects.count() == ConsentEvent.objects.count() == 0


def test_importing_the_same_file_again_changes_nothing(stored, tmp_path, run_command):
    path = write_csv(tmp_path / "m.csv", *ROWS)
    run_command("import_members", path, "--apply")
    before = list(Member.objects.order_by("id").values())

    output = run_command("import_members", path, "--apply")

    assert output.stdout == "rows read: 3, created: 0, updated: 0, unchanged: 3, failed: 0\n"
    assert list(Member.objects.order_by("id").values()) == before


def test_rows_for_one_member_in_a_batch_apply_in_order(tmp_path, run_command):
    path = write_csv(tmp_path / "m.csv", "LOY-9,,,,Ann,", ",,,,,", "LOY-9,EXT-9,,,,Lee")

    output = run_command("import_members", path, "--apply", "-v", "2")

    assert output.stdout.splitlines() == [
        "line 2: member LOY-9: created",
        "line 4: member LOY-9: updated",
        "rows read: 3, created: 1, updated: 1, unchanged: 0, failed: 1",
    ]
    assert members() == [("LOY-9", "EXT-9", "", "", "Ann", "Lee")]


BAD_ROWS = [
    ("LOY-4,,not an email,,,", "email: 'not an email' is not a valid email address."),
    ("LOY-4,,,12,,", "phone: '12' is not a valid phone number."),
    (",,x@example.com,,,", "A loyalty_id or an external_id is required."),
    ("L" * 65 + ",,,,,", "loyalty_id: longer than 64 characters."),
    ("LOY-8,EXT-2,,,,", "external_id: 'EXT-2' belongs to another member."),
    ("LOY-5,EXT-1,,,,",
     "loyalty_id: the member with external_id 'EXT-1' has 'LOY-1', not 'LOY-5'."),
    ("LOY-1,EXT-7,,,,",
     "external_id: the member with loyalty_id 'LOY-1' has 'EXT-1', not 'EXT-7'."),
    ("LOY-4,EXT-4", "Expected 6 fields, found 2."),
]  # fmt: skip


def test_bad_rows_are_reported_with_their_line_and_do_not_stop_the_run(
    stored, tmp_path, run_command
):
    Member.objects.filter(loyalty_id="LOY-1").update(external_id="EXT-1")
    MemberFactory(loyalty_id="LOY-8", external_id=None)
    errors = tmp_path / "errors.csv"
    path = write_csv(tmp_path / "m.csv", *(row for row, _ in BAD_ROWS), ROWS[2])

    output = run_command("import_members", path, "--apply", "--errors", str(errors))

    assert output.stdout == "rows read: 9, created: 1, updated: 0, unchanged: 0, failed: 8\n"
    assert output.stderr.splitlines() == [
        f"line {line}: {reason}" for line, (_, reason) in enumerate(BAD_ROWS, start=2)
    ]
    with errors.open(newline="", encoding="utf-8") as report:
        written = list(csv.reader(report))
    assert written[0] == ["line", "reason", *HEADER.split(",")]
    assert [row[:2] for row in written[1:]] == [
        [str(line), reason] for line, (_, reason) in enumerate(BAD_ROWS, start=2)
    ]
    assert Member.objects.filter(loyalty_id="LOY-4").count() == 0


def test_a_file_with_the_wrong_header_fails_cleanly(tmp_path, run_command):
    path = write_csv(tmp_path / "m.csv", "LOY-1,ada@example.com", header="loyalty_id,email")

    with pytest.raises(CommandError) as raised:
        run_command("import_members", path, "--apply")

    assert str(raised.value) == (
        f"{path}: the CSV header must name the columns {HEADER} (found: loyalty_id,email)."
    )
    assert Member.objects.count() == 0
