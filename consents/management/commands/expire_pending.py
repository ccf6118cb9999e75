"""Expire double opt-ins whose confirmation never came: PENDING → NEVER_CONFIRMED."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser
from django.utils import timezone

from consents.batches import keyset_batches
from consents.exceptions import ConsentError
from consents.ledger import consent_expire_pending, stale_pending
from consents.management.batch import BulkCommand, ledger_reason, positive_int


class Command(BulkCommand):
    help = (
        "Set every PENDING consent whose newest activity is older than --older-than DAYS to "
        "NEVER_CONFIRMED, through the ledger: the confirmation activity stays as the proof of "
        "what was asked. A consent that received any activity since is left alone, also one "
        "written while the command runs (each batch is locked and checked again). Dry run "
        "unless --apply."
    )
    takes_errors_file = False

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            type=positive_int,
            required=True,
            metavar="DAYS",
            help="Expire double opt-ins requested more than DAYS days ago.",
        )
        super().add_arguments(parser)

    def handle(self, *args: object, older_than: int, **options: Any) -> None:
        cutoff = timezone.now() - timedelta(days=older_than)
        stale = stale_pending(cutoff)
        report = self.report(
            options,
            counts=("pending found", "expired"),
            locator="consent",
            total=stale.count(),
            unit=" consents",
        )
        context = self.ledger_context(f"No confirmation within {older_than} days.")
        for batch in keyset_batches(stale, options["batch_size"]):
            expired = consent_expire_pending(
                consent_ids=[consent_id for (consent_id,) in batch],
                cutoff=cutoff,
                context=context,
                dry_run=not report.apply,
            )
            report.read(len(expired))
            for consent, outcome in expired:
                if isinstance(outcome, ConsentError):
                    report.fail(consent.id, ledger_reason(outcome))
                    continue
                report.add("expired")
                report.detail(
                    f"consent {consent.id}: {consent.type} {consent.address}: expired "
                    f"(PENDING since {consent.confirmation_date:%Y-%m-%d} → NEVER_CONFIRMED)"
                )
            report.progress.update(len(batch))
        report.finish()
