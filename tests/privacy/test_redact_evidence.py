"""manage.py redact_evidence: old events lose their IP address and user agent, nothing else."""

from datetime import UTC, datetime, timedelta

import pytest
from django.core.management.base import CommandError
from django.utils import timezone

from consents.models import ConsentEvent
from consents.privacy.retention import before
from tests.factories import ConsentEventFactory

pytestmark = pytest.mark.django_db


@pytest.fixture
def events() -> dict[str, ConsentEvent]:
    now = timezone.now()
    evidence = {"ip_address": "203.0.113.9", "user_agent": "crm/1.0", "request_id": "r-1"}
    return {
        "old": ConsentEventFactory(recorded_at=now - timedelta(days=4 * 365), **evidence),
        "older": ConsentEventFactory(recorded_at=now - timedelta(days=5 * 365), **evidence),
        "recent": ConsentEventFactory(recorded_at=now - timedelta(days=365), **evidence),
    }


def evidence_of(event: ConsentEvent) -> tuple:
    event.refresh_from_db()
    return (event.ip_address, event.user_agent, event.request_id, event.address, event.kind)


def test_a_dry_run_counts_and_changes_nothing(events, run_command):
    output = run_command("redact_evidence", "--older-than", "3y")

    assert output.stdout.startswith("DRY RUN — 2 event(s) recorded before ")
    assert evidence_of(events["old"])[:2] == ("203.0.113.9", "crm/1.0")


def test_apply_removes_ip_and_user_agent_of_old_events_only_in_batches(events, run_command):
    output = run_command("redact_evidence", "--older-than", "3y", "--batch-size", "1", "--apply")

    assert output.stdout.startswith("Redacted 2 event(s) recorded before ")
    for name in ("old", "older"):
        address = events[name].address
        assert evidence_of(events[name]) == (None, "", "r-1", address, "CREATED")
    assert evidence_of(events["recent"])[:2] == ("203.0.113.9", "crm/1.0")
    again = run_command("redact_evidence", "--older-than", "3y", "--apply")
    assert again.stdout.startswith("Redacted 0 event(s)")


def test_the_setting_gives_the_default_age(events, run_command, settings):
    settings.EVIDENCE_RETENTION = "200d"

    run_command("redact_evidence", "--apply")

    assert evidence_of(events["recent"])[:2] == (None, "")


@pytest.mark.parametrize("age", ["3", "0y", "three years", "1.5y", "3h"])
def test_a_bad_age_is_refused(db, run_command, age):
    with pytest.raises(CommandError, match="is not an age such as 3y, 18m, 90d or 2w"):
        run_command("redact_evidence", "--older-than", age)


@pytest.mark.parametrize(
    ("age", "expected"),
    [
        ("3y", datetime(2021, 2, 28, 12, tzinfo=UTC)),
        ("12m", datetime(2023, 2, 28, 12, tzinfo=UTC)),
        ("1m", datetime(2024, 1, 29, 12, tzinfo=UTC)),
        ("2w", datetime(2024, 2, 15, 12, tzinfo=UTC)),
        ("90d", datetime(2023, 12, 1, 12, tzinfo=UTC)),
    ],
)
def test_ages_count_calendar_months_and_years(age, expected):
    assert before(age, datetime(2024, 2, 29, 12, tzinfo=UTC)) == expected
