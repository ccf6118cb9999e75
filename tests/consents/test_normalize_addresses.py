"""manage.py normalize_addresses: legacy spellings moved to their normalised address, or merged
with the consent already there, through the ledger."""

import csv
from datetime import UTC, datetime

import pytest

from consents.models import ConsentEvent, MarketingConsent
from tests.factories import MarketingConsentFactory

pytestmark = pytest.mark.django_db


def day(number: int) -> datetime:
    return datetime(2025, 1, number, tzinfo=UTC)


@pytest.fixture
def legacy_rows() -> dict[str, MarketingConsent]:
    """Rows as raw SQL or older rules left them."""
    return {
        "fine": MarketingConsentFactory(address="fine@example.com", confirmation_date=day(1)),
        "upper": MarketingConsentFactory(address="Upper@Example.com", confirmation_date=day(1)),
        # Two spellings of one new address: the second merges into the first once it moved.
        "spaced": MarketingConsentFactory(address=" twin@example.com", confirmation_date=day(2)),
        "shouted": MarketingConsentFactory(
            address="TWIN@EXAMPLE.COM",
            state="REVOKED",
            revoke_source="FORM",
            revoke_date=day(8),
            confirmation_date=day(1),
        ),
        # A legacy spelling older than the consent at its normalised address.
        "stale": MarketingConsentFactory(address="Kept@Example.com", confirmation_date=day(1)),
        "kept": MarketingConsentFactory(address="kept@example.com", confirmation_date=day(5)),
        "phone": MarketingConsentFactory(type="PHONE", address="(415) 555-0100"),
        "broken": MarketingConsentFactory(address="not an address"),
    }


def addresses() -> set[tuple[str, str]]:
    return set(MarketingConsent.objects.values_list("address", "state"))


def test_dry_run_reports_exactly_what_apply_does_and_writes_nothing(legacy_rows, run_command):
    before = list(MarketingConsent.objects.order_by("id").values())

    dry = run_command("normalize_addresses")

    assert dry.stdout.splitlines() == [
        "DRY RUN — consents read: 8, moved: 3, merged: 2, failed: 1",
        "Nothing was written. Run again with --apply to write these changes.",
    ]
    assert list(MarketingConsent.objects.order_by("id").values()) == before
    assert ConsentEvent.objects.count() == 0
    applied = run_command("normalize_addresses", "--apply")
    assert applied.stdout == "consents read: 8, moved: 3, merged: 2, failed: 1\n"
    assert applied.stderr == dry.stderr


def test_apply_moves_and_merges_keeping_the_newest_activity(legacy_rows, run_command):
    output = run_command("normalize_addresses", "--apply", "--batch-size", "3")

    broken = legacy_rows["broken"]
    assert output.stderr == (
        f"consent {broken.id}: address: 'not an address' is not a valid email address.\n"
    )
    assert addresses() == {
        ("fine@example.com", "CONFIRMED"),
        ("upper@example.com", "CONFIRMED"),
        ("twin@example.com", "REVOKED"),
        ("kept@example.com", "CONFIRMED"),
        ("+14155550100", "CONFIRMED"),
        ("not an address", "CONFIRMED"),
    }
    twin = MarketingConsent.objects.get(address="twin@example.com")
    assert twin.id == legacy_rows["shouted"].id
    assert MarketingConsent.objects.get(address="kept@example.com").id == legacy_rows["kept"].id
    kinds = {
        (event.consent_id, event.kind)
        for event in ConsentEvent.objects.filter(door="COMMAND", actor="normalize_addresses")
    }
    spaced, shouted = legacy_rows["spaced"].id, legacy_rows["shouted"].id
    # The twins are met in id order: the first moves, the second merges with it.
    twins = (
        {(spaced, "UPDATED"), (spaced, "DELETED"), (shouted, "UPDATED")}
        if spaced < shouted
        else {(shouted, "UPDATED"), (spaced, "DELETED"), (shouted, "UNCHANGED")}
    )
    assert kinds == {
        (legacy_rows["upper"].id, "UPDATED"),
        (legacy_rows["phone"].id, "UPDATED"),
        (legacy_rows["stale"].id, "DELETED"),
        (legacy_rows["kept"].id, "UNCHANGED"),
        *twins,
    }
    deleted = ConsentEvent.objects.get(consent_id=legacy_rows["spaced"].id, kind="DELETED")
    assert deleted.note == (
        f"Merged into {twin.id} at 'twin@example.com', kept for its newer activity."
    )


def test_verbosity_two_tells_what_happened_to_each_consent(legacy_rows, run_command):
    output = run_command("normalize_addresses", "-v", "2")

    upper, spaced, shouted = legacy_rows["upper"], legacy_rows["spaced"], legacy_rows["shouted"]
    stale, kept = legacy_rows["stale"], legacy_rows["kept"]
    assert sorted(output.stdout.splitlines()[:-2]) == sorted(
        [
            f"consent {upper.id}: EMAIL 'Upper@Example.com' → upper@example.com: moved",
            f"consent {legacy_rows['phone'].id}: PHONE '(415) 555-0100' → +14155550100: moved",
            f"consent {stale.id}: EMAIL 'Kept@Example.com' → kept@example.com: "
            f"merged into {kept.id}",
            # Which twin comes first depends on their ids.
            *(
                [
                    f"consent {spaced.id}: EMAIL ' twin@example.com' → twin@example.com: moved",
                    f"consent {shouted.id}: EMAIL 'TWIN@EXAMPLE.COM' → twin@example.com: "
                    f"kept, {spaced.id} merged into it",
                ]
                if spaced.id < shouted.id
                else [
                    f"consent {shouted.id}: EMAIL 'TWIN@EXAMPLE.COM' → twin@example.com: moved",
                    f"consent {spaced.id}: EMAIL ' twin@example.com' → twin@example.com: "
                    f"merged into {shouted.id}",
                ]
            ),
        ]
    )


def test_running_it_again_changes_nothing(legacy_rows, run_command):
    run_command("normalize_addresses", "--apply")
    before = list(MarketingConsent.objects.order_by("id").values())
    events = ConsentEvent.objects.count()

    output = run_command("normalize_addresses", "--apply")

    assert output.stdout == "consents read: 6, moved: 0, merged: 0, failed: 1\n"
    assert list(MarketingConsent.objects.order_by("id").values()) == before
    assert ConsentEvent.objects.count() == events


def test_unnormalisable_addresses_go_to_the_errors_file(legacy_rows, tmp_path, run_command):
    errors = tmp_path / "errors.csv"

    run_command("normalize_addresses", "--errors", str(errors))

    with errors.open(newline="", encoding="utf-8") as report:
        assert list(csv.reader(report)) == [
            ["consent", "reason", "type", "address"],
            [
                str(legacy_rows["broken"].id),
                "address: 'not an address' is not a valid email address.",
                "EMAIL",
                "not an address",
            ],
        ]
