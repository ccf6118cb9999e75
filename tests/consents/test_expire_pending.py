"""manage.py expire_pending: PENDING consents never confirmed → NEVER_CONFIRMED."""

from datetime import timedelta

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

pytestmark = pytest.mark.django_db

API = ChangeContext(door="CONSENT_API", actor="crm")


def days_ago(days: int):
    return timezone.now() - timedelta(days=days)


def pending(address: str, *, requested: int, revoked: int | None = None) -> MarketingConsent:
    change = ConsentChange(
        state="PENDING",
        confirmation=ConfirmationActivity(
            source="FORM", updated_date=days_ago(requested), opt_in_level="DOUBLE_CONFIRMATION"
        ),
        revoke=RevokeActivity(source="FORM", updated_date=days_ago(revoked))
        if revoked is not None
        else None,
    )
    return consent_upsert(type="EMAIL", address=address, change=change, context=API).consent


@pytest.fixture
def consents() -> None:
    pending("old@example.com", requested=40)
    pending("older@example.com", requested=90)
    pending("recent@example.com", requested=10)
    pending("revoked-before@example.com", requested=40, revoked=50)
    confirmed = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(source="FORM", updated_date=days_ago(60)),
    )
    consent_upsert(type="EMAIL", address="confirmed@example.com", change=confirmed, context=API)


def states() -> dict[str, tuple[str, int]]:
    return {c.address: (c.state, c.revision) for c in MarketingConsent.objects.all()}


def test_dry_run_lists_what_would_expire_and_writes_nothing(consents, run_command):
    before = states()

    output = run_command("expire_pending", "--older-than", "30", "-v", "2")

    lines = output.stdout.splitlines()
    assert sorted(line.split(": ", 1)[1] for line in lines[:3]) == [
        f"EMAIL old@example.com: expired (PENDING since {days_ago(40):%Y-%m-%d} → NEVER_CONFIRMED)",
        f"EMAIL older@example.com: expired (PENDING since {days_ago(90):%Y-%m-%d} → "
        "NEVER_CONFIRMED)",
        f"EMAIL revoked-before@example.com: expired (PENDING since {days_ago(40):%Y-%m-%d} → "
        "NEVER_CONFIRMED)",
    ]
    assert lines[3:] == [
        "DRY RUN — pending found: 3, expired: 3, failed: 0",
        "Nothing was written. Run again with --apply to write these changes.",
    ]
    assert states() == before


def test_apply_expires_stale_requests_through_the_ledger_and_keeps_their_proof(
    consents, run_command
):
    output = run_command("expire_pending", "--older-than", "30", "--apply", "--batch-size", "2")

    assert output.stdout == "pending found: 3, expired: 3, failed: 0\n"
    assert states() == {
        "old@example.com": ("NEVER_CONFIRMED", 2),
        "older@example.com": ("NEVER_CONFIRMED", 2),
        "revoked-before@example.com": ("NEVER_CONFIRMED", 2),
        "recent@example.com": ("PENDING", 1),
        "confirmed@example.com": ("CONFIRMED", 1),
    }
    old = MarketingConsent.objects.get(address="old@example.com")
    assert (old.confirmation_source, old.confirmation_opt_in_level) == (
        "FORM",
        "DOUBLE_CONFIRMATION",
    )
    events = ConsentEvent.objects.filter(actor="expire_pending").order_by("address")
    assert [
        (e.address, e.kind, e.revision, e.previous_state, e.state, e.door, e.note)
        for e in events
    ] == [
        (address, "UPDATED", 2, "PENDING", "NEVER_CONFIRMED", "COMMAND",
         "No confirmation within 30 days.")
        for address in ("old@example.com", "older@example.com", "revoked-before@example.com")
    ]  # fmt: skip


def test_a_pending_consent_with_a_newer_activity_is_not_expired(run_command):
    pending("a@example.com", requested=40, revoked=5)

    output = run_command("expire_pending", "--older-than", "30", "--apply")

    assert output.stdout == "pending found: 0, expired: 0, failed: 0\n"
    assert states() == {"a@example.com": ("PENDING", 1)}


def test_running_it_again_changes_nothing(consents, run_command):
    run_command("expire_pending", "--older-than", "30", "--apply")
    events = ConsentEvent.objects.count()

    output = run_command("expire_pending", "--older-than", "30", "--apply")

    assert output.stdout == "pending found: 0, expired: 0, failed: 0\n"
    assert ConsentEvent.objects.count() == events


def test_a_confirmation_arriving_after_expiry_still_counts(consents, run_command):
    run_command("expire_pending", "--older-than", "30", "--apply")
    late = ConsentChange(
        state="CONFIRMED",
        confirmation=ConfirmationActivity(source="LINK_CONFIRMATION", updated_date=days_ago(1)),
    )

    result = consent_upsert(type="EMAIL", address="old@example.com", change=late, context=API)

    assert (result.kind, result.consent.state) == ("UPDATED", "CONFIRMED")


@pytest.mark.parametrize(
    ("arguments", "message"),
    [
        ([], "Error: the following arguments are required: --older-than"),
        (["--older-than", "0"], "Error: argument --older-than: '0' is not a positive whole number"),
        (
            ["--older-than", "2.5"],
            "Error: argument --older-than: '2.5' is not a positive whole number",
        ),
    ],
)
def test_bad_arguments_fail_cleanly(run_command, arguments, message):
    with pytest.raises(CommandError) as raised:
        run_command("expire_pending", *arguments)

    assert str(raised.value) == message
