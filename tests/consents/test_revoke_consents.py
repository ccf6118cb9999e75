"""manage.py revoke_consents: mass revocation from a list or a domain, through the ledger."""

import csv
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    consent_upsert,
)
from consents.models import ConsentEvent, MarketingConsent
from tests.factories import MarketingConsentFactory

pytestmark = pytest.mark.django_db

API = ChangeContext(door="CONSENT_API", actor="crm")
REASON = "Complaint #123: partner suppression list"


def day(number: int) -> datetime:
    return datetime(2025, 1, number, 12, 0, tzinfo=UTC)


def confirm(type: str, address: str, on: int = 1) -> None:
    change = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(source="FORM", updated_date=day(on)),
    )
    consent_upsert(type=type, address=address, change=change, context=API)


def revoke(address: str, on: int = 1) -> None:
    change = ConsentChange(
        state="REVOKED", revoke=RevokeActivity(source="FORM", updated_date=day(on))
    )
    consent_upsert(type="EMAIL", address=address, change=change, context=API)


def states() -> dict[str, tuple[str, int]]:
    return {c.address: (c.state, c.revision) for c in MarketingConsent.objects.all()}


@pytest.fixture
def listed(tmp_path: Path) -> str:
    confirm("EMAIL", "alice@example.com")
    revoke("bob@example.com")
    path = tmp_path / "suppression.txt"
    path.write_text(
        "Alice@Example.com\n"
        "\n"
        "# from the partner\n"
        "bob@example.com\n"
        "new@example.com\n"
        "not an address\n"
        "NEW@example.com\n",
        encoding="utf-8",
    )
    return str(path)


def test_dry_run_reports_what_would_change_and_writes_nothing(listed, run_command):
    before = states()

    output = run_command("revoke_consents", "--emails-from", listed, "--reason", REASON)

    assert output.stdout == (
        "DRY RUN — rows read: 5, created: 1, updated: 1, unchanged: 1, superseded: 0, "
        "already revoked: 1, failed: 1\n"
        "Nothing was written. Run again with --apply to write these changes.\n"
    )
    assert states() == before
    assert ConsentEvent.objects.count() == 2


def test_apply_revokes_listed_addresses_and_records_unknown_ones_as_revoked(listed, run_command):
    started = timezone.now()

    output = run_command("revoke_consents", "--emails-from", listed, "--reason", REASON, "--apply")

    assert output.stdout == (
        "rows read: 5, created: 1, updated: 1, unchanged: 1, superseded: 0, "
        "already revoked: 1, failed: 1\n"
    )
    assert output.stderr == "line 6: address: 'not an address' is not a valid email address.\n"
    assert states() == {
        "alice@example.com": ("REVOKED", 2),
        "bob@example.com": ("REVOKED", 1),
        "new@example.com": ("REVOKED", 1),
    }
    alice = MarketingConsent.objects.get(address="alice@example.com")
    assert (alice.revoke_source, alice.revoke_description) == ("OTHER", REASON)
    assert started <= alice.revoke_date <= timezone.now()
    assert alice.confirmation_date == day(1)
    events = ConsentEvent.objects.filter(actor="revoke_consents").order_by("id")
    assert [
        (e.address, e.kind, e.revision, e.previous_state, e.state, e.activity_description)
        for e in events
    ] == [
        ("alice@example.com", "UPDATED", 2, "CONFIRMED", "REVOKED", REASON),
        ("new@example.com", "CREATED", 1, "", "REVOKED", REASON),
        ("new@example.com", "UNCHANGED", 1, "REVOKED", "REVOKED", REASON),
    ]
    assert {(e.door, e.note) for e in events} == {("COMMAND", f"Listed in {listed}.")}
    # The address already revoked keeps its own proof: no event, no new revoke activity.
    bob = MarketingConsent.objects.get(address="bob@example.com")
    assert (bob.revoke_source, bob.revoke_date) == ("FORM", day(1))


def test_running_it_again_changes_nothing(listed, run_command):
    run_command("revoke_consents", "--emails-from", listed, "--reason", REASON, "--apply")
    before = list(MarketingConsent.objects.order_by("id").values())
    events = ConsentEvent.objects.count()

    output = run_command("revoke_consents", "--emails-from", listed, "--reason", REASON, "--apply")

    assert output.stdout == (
        "rows read: 5, created: 0, updated: 0, unchanged: 0, superseded: 0, "
        "already revoked: 4, failed: 1\n"
    )
    assert list(MarketingConsent.objects.order_by("id").values()) == before
    assert ConsentEvent.objects.count() == events


def test_a_later_import_of_an_older_opt_in_cannot_subscribe_a_revoked_address(
    listed, tmp_path, run_command
):
    run_command("revoke_consents", "--emails-from", listed, "--reason", REASON, "--apply")
    old_opt_in = tmp_path / "old.csv"
    old_opt_in.write_text(
        "type,address,state,source,opt_in_level,description,date\n"
        "EMAIL,new@example.com,CONFIRMED,FORM,SINGLE_CONFIRMATION,,2025-01-05T00:00:00Z\n",
        encoding="utf-8",
    )

    output = run_command("import_consents", str(old_opt_in), "--apply")

    assert "superseded: 1" in output.stdout
    assert states()["new@example.com"] == ("REVOKED", 1)


def test_bad_lines_go_to_the_errors_file_with_their_line(listed, tmp_path, run_command):
    errors = tmp_path / "errors.csv"

    run_command(
        "revoke_consents", "--emails-from", listed, "--reason", REASON, "--errors", str(errors)
    )

    with errors.open(newline="", encoding="utf-8") as report:
        assert list(csv.reader(report)) == [
            ["line", "reason", "address"],
            ["6", "address: 'not an address' is not a valid email address.", "not an address"],
        ]


def test_phone_numbers_are_normalised_before_revoking(tmp_path, run_command):
    confirm("PHONE", "+14155550100")
    path = tmp_path / "phones.txt"
    path.write_text("(415) 555-0100\n+1 415 555 0101\n12\n", encoding="utf-8")

    output = run_command(
        "revoke_consents", "--phones-from", str(path), "--reason", REASON, "--apply"
    )

    assert output.stderr == "line 3: address: '12' is not a valid phone number.\n"
    assert {c.address: (c.type, c.state) for c in MarketingConsent.objects.all()} == {
        "+14155550100": ("PHONE", "REVOKED"),
        "+14155550101": ("PHONE", "REVOKED"),
    }


def test_domain_revokes_every_email_consent_at_exactly_that_domain(run_command):
    confirm("EMAIL", "a@breached.example")
    confirm("EMAIL", "b@breached.example")
    revoke("c@breached.example")
    confirm("EMAIL", "d@sub.breached.example")
    confirm("EMAIL", "e@other.example")
    confirm("PHONE", "+14155550100")

    output = run_command(
        "revoke_consents", "--domain", "Breached.Example", "--reason", REASON, "--apply"
    )

    assert output.stdout == (
        "consents found: 3, created: 0, updated: 2, unchanged: 0, superseded: 0, "
        "already revoked: 1, failed: 0\n"
    )
    assert {address: state for address, (state, _) in states().items()} == {
        "a@breached.example": "REVOKED",
        "b@breached.example": "REVOKED",
        "c@breached.example": "REVOKED",
        "d@sub.breached.example": "CONFIRMED",
        "e@other.example": "CONFIRMED",
        "+14155550100": "CONFIRMED",
    }
    assert set(
        ConsentEvent.objects.filter(actor="revoke_consents").values_list("note", flat=True)
    ) == {"Every email consent at breached.example."}


def test_domain_is_matched_in_its_ascii_form_and_across_batches(run_command):
    for number in range(5):
        confirm("EMAIL", f"p{number}@bücher.example")

    output = run_command(
        "revoke_consents",
        "--domain",
        "BÜCHER.example",
        "--reason",
        REASON,
        "--apply",
        "--batch-size",
        "2",
    )

    assert output.stdout.startswith("consents found: 5, created: 0, updated: 5,")
    assert set(MarketingConsent.objects.values_list("address", "state")) == {
        (f"p{number}@xn--bcher-kva.example", "REVOKED") for number in range(5)
    }


def test_domain_reports_rows_stored_in_a_legacy_spelling_and_leaves_them(run_command):
    legacy = MarketingConsentFactory(
        address="Legacy@Breached.Example", confirmation_date=timezone.now() - timedelta(days=1)
    )

    output = run_command("revoke_consents", "--domain", "breached.example", "--reason", REASON)

    assert output.stderr == (
        f"consent {legacy.id}: Stored in a legacy spelling: run normalize_addresses, "
        "then this again.\n"
    )
    assert MarketingConsent.objects.get().state == "CONFIRMED"


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        (
            ["--domain", "example.com", "--reason", "  "],
            "--reason must say why the consents are revoked.",
        ),
        (
            ["--domain", "not a domain", "--reason", "x"],
            "--domain: 'not a domain' is not a valid domain.",
        ),
        (
            ["--emails-from", "/no/such/file", "--reason", "x"],
            "Cannot read /no/such/file: No such file or directory.",
        ),
        (
            ["--reason", "x"],
            "Error: one of the arguments --emails-from --phones-from --domain is required",
        ),
        (
            ["--domain", "a.example", "--emails-from", "f", "--reason", "x"],
            "Error: argument --emails-from: not allowed with argument --domain",
        ),
    ],
    ids=["empty-reason", "bad-domain", "missing-file", "no-source", "two-sources"],
)
def test_unusable_arguments_fail_cleanly(run_command, arguments, message):
    with pytest.raises(CommandError) as raised:
        run_command("revoke_consents", *arguments)

    assert str(raised.value) == message
