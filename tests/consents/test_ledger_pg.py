"""On PostgreSQL the upsert runs as one statement (consents/ledger/postgres.py). Whatever
sequence of writes an address receives, it must give exactly what the Python path gives."""

import uuid
from datetime import UTC, datetime, timedelta
from unittest import mock

import pytest
from django.core.management import call_command
from django.db import connection
from hypothesis import HealthCheck, assume, given, settings
from hypothesis import strategies as st

from consents import ledger
from consents.exceptions import InvalidChange
from consents.ledger import (
    ChangeContext,
    ConfirmationActivity,
    ConsentChange,
    RevokeActivity,
    locking,
    postgres,
)
from consents.models import ConsentEvent

pytestmark = [pytest.mark.postgres, pytest.mark.django_db]

CONTEXT = ChangeContext(
    door="CONSENT_API", actor="crm", request_id="r1", ip_address="10.0.0.1", user_agent="ua"
)
CLOCK = datetime(2024, 2, 1, tzinfo=UTC)

dates = st.one_of(
    st.none(), st.integers(0, 3).map(lambda day: datetime(2024, 1, 1 + day, tzinfo=UTC))
)
confirmations = st.one_of(
    st.none(),
    st.builds(
        ConfirmationActivity,
        source=st.sampled_from(["FORM", "IN_PERSON"]),
        description=st.sampled_from(["", "signed"]),
        updated_date=dates,
        opt_in_level=st.sampled_from(["SINGLE_CONFIRMATION", "DOUBLE_CONFIRMATION"]),
    ),
)
revokes = st.one_of(
    st.none(),
    st.builds(
        RevokeActivity,
        source=st.sampled_from(["FORM", "REVOKE_LINK"]),
        description=st.sampled_from(["", "stop"]),
        updated_date=dates,
    ),
)
changes = st.builds(
    ConsentChange,
    state=st.sampled_from(["UNKNOWN_STATE", "NEVER_CONFIRMED", "PENDING", "CONFIRMED", "REVOKED"]),
    confirmation=confirmations,
    revoke=revokes,
    extended_fields=st.sampled_from([None, {}, {"namespaces": {"_user_fields": {"a": "1"}}}]),
)

CONSENT_FIELDS = [
    "type",
    "state",
    "revision",
    "confirmation_source",
    "confirmation_description",
    "confirmation_date",
    "confirmation_opt_in_level",
    "revoke_source",
    "revoke_description",
    "revoke_date",
    "extended_fields",
    "created_date",
    "updated_date",
]
EVENT_FIELDS = [
    "type",
    "kind",
    "revision",
    "previous_state",
    "state",
    "requested_state",
    "activity_source",
    "activity_description",
    "activity_opt_in_level",
    "activity_date",
    "request",
    "door",
    "actor",
    "request_id",
    "ip_address",
    "user_agent",
    "note",
]


def is_valid(change: ConsentChange) -> bool:
    try:
        change.validate(state_required=True)
    except InvalidChange:
        return False
    return True


def outcome(result, address: str) -> dict:
    stored = ConsentEvent.objects.get(pk=result.event.pk)
    consent = {name: getattr(result.consent, name) for name in CONSENT_FIELDS}
    event = {name: getattr(stored, name) for name in EVENT_FIELDS}
    returned_event = {name: getattr(result.event, name) for name in EVENT_FIELDS}
    return {"consent": consent, "event": event, "returned_event": returned_event}


@settings(
    max_examples=120,
    deadline=None,
    suppress_health_check=[HealthCheck.function_scoped_fixture, HealthCheck.too_slow],
)
@given(consent_type=st.sampled_from(["EMAIL", "PHONE"]), sequence=st.lists(changes, max_size=6))
def test_one_statement_upsert_gives_what_the_python_path_gives(consent_type, sequence):
    assume(all(is_valid(change) for change in sequence))
    # A fresh address pair per example (the examples share one database transaction); phone
    # numbers whose exchange starts with 2-9 are valid.
    token = 2_000_000 + uuid.uuid4().int % 8_000_000
    addresses = (
        (f"fast{token}@example.com", f"slow{token}@example.com")
        if consent_type == "EMAIL"
        else (f"+1415{token}", f"+1628{token}")
    )
    for step, change in enumerate(sequence):
        with mock.patch("django.utils.timezone.now", return_value=CLOCK + timedelta(seconds=step)):
            fast = ledger.consent_upsert(
                type=consent_type, address=addresses[0], change=change, context=CONTEXT
            )
            slow = locking.upsert_with_lock(consent_type, addresses[1], change, CONTEXT, None)
        assert outcome(fast, addresses[0]) == outcome(slow, addresses[1]), (step, change)


def installed_merge_function() -> str:
    with connection.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'consent_merge'")
        return cursor.fetchone()[0]


def test_migrate_brings_the_merge_function_in_line_with_the_code():
    # A database left with an older consent_merge (a statement changed, its migration forgotten).
    with mock.patch.object(postgres, "merge_function_body", return_value="BEGIN RETURN; END"):
        call_command("migrate", verbosity=0)
    assert installed_merge_function() == "BEGIN RETURN; END"

    call_command("migrate", verbosity=0)

    assert installed_merge_function() == postgres.merge_function_body()
    result = ledger.consent_upsert(
        type="EMAIL",
        address="after-migrate@example.com",
        change=ConsentChange(state="REVOKED", revoke=RevokeActivity(source="OTHER")),
        context=CONTEXT,
    )
    assert (result.kind, result.consent.state) == ("CREATED", "REVOKED")
