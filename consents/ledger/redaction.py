"""The one deliberate exception to the events' append-only rule: removing personal data from
them (erasure, evidence retention; docs/privacy.md)."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from datetime import datetime
from typing import Any

from django.db import connection, models, transaction
from django.db.models import Q

from consents.models import ConsentEvent

# What an event keeps of its request once its person is erased: the facts (kind, door, actor,
# states, activity source, level and dates, revision, request id, time), none of the free text.
ERASED_EVENT_FIELDS = {
    "activity_description": "",
    "request": {},
    "ip_address": None,
    "user_agent": "",
    "note": "",
}


@contextmanager
def append_only_trigger_lifted() -> Iterator[None]:
    """Let this transaction's next statements past the event table's trigger, by django-pgtrigger's
    own switch (the `pgtrigger.ignore` setting, local to the transaction), then close it again.
    (`pgtrigger.ignore()` sets it in front of every statement, which server-side binding
    refuses.)"""
    if connection.vendor != "postgresql":
        yield
        return
    [trigger] = ConsentEvent._meta.triggers
    with connection.cursor() as cursor:
        lifted = f"{{{trigger.get_pgid(ConsentEvent)}}}"
        cursor.execute("SELECT set_config('pgtrigger.ignore', %s, true)", [lifted])
        try:
            yield
        finally:
            cursor.execute("SELECT set_config('pgtrigger.ignore', '{}', true)")


def redact_events(events: models.QuerySet[ConsentEvent], **blanks: Any) -> int:
    """The only code that rewrites events, and only to remove personal data from them (erasure,
    evidence retention): the deliberate exception to their append-only rule. It bypasses
    ConsentEventQuerySet's guard and, for this statement only, the database's trigger; the
    caller's transaction holds both."""
    with append_only_trigger_lifted():
        return models.QuerySet.update(events, **blanks)


def evidence_redact(*, recorded_before: datetime, batch_size: int, dry_run: bool = True) -> int:
    """Remove the IP address and user agent of events recorded before a date, keeping the rest,
    in batches of one transaction each. Returns how many events had (dry run: have) some."""
    with_evidence = ConsentEvent.objects.filter(recorded_at__lt=recorded_before).filter(
        Q(ip_address__isnull=False) | ~Q(user_agent="")
    )
    if dry_run:
        return with_evidence.count()
    redacted = 0
    while True:
        with transaction.atomic():
            batch = list(with_evidence.order_by("id").values_list("id", flat=True)[:batch_size])
            if not batch:
                return redacted
            redacted += redact_events(
                ConsentEvent.objects.filter(id__in=batch), ip_address=None, user_agent=""
            )
