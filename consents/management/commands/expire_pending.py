"""Expire double opt-ins whose confirmation never came: PENDING → NEVER_CONFIRMED."""

from __future__ import annotations

from datetime import timedelta
from typing import Any

from django.core.management.base import CommandParser
from django.db import transaction
from django.db.models import Q
from django.utils import timezone

from consents.exceptions import ConsentError
from consents.ledger import ChangeContext, ConsentChange, consent_update
from consents.management.batch import BulkCommand, Report, ledger_reason, positive_int
from consents.models import ConsentState, MarketingConsent

EXPIRE = ConsentChange(state=ConsentState.NEVER_CONFIRMED)


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
        # PENDING always has a confirmation activity; a newer revoke activity would also count.
        stale = MarketingConsent.objects.filter(
            Q(revoke_date__isnull=True) | Q(revoke_date__lt=cutoff),
            state=ConsentState.PENDING,
            confirmation_date__lt=cutoff,
        )
        report = self.report(
            options,
            counts=("pending found", "expired"),
            locator="consent",
            total=stale.count(),
            unit=" consents",
        )
        context = self.ledger_context(f"No confirmation within {older_than} days.")
        last_id = None
        while True:
            with transaction.atomic():
                page = stale.order_by("id")
                if last_id is not None:
                    page = page.filter(id__gt=last_id)
                if report.apply:
                    # Locked rows are checked against the filter again: one confirmed or revoked
                    # meanwhile drops out of the batch.
                    page = page.select_for_update()
                batch = list(page[: options["batch_size"]])
                if not batch:
                    break
                last_id = batch[-1].id
                report.read(len(batch))
                for consent in batch:
                    self.expire(consent, context, report)
            report.progress.update(len(batch))
        report.finish()

    def expire(self, consent: MarketingConsent, context: ChangeContext, report: Report) -> None:
        if report.apply:
            try:
                consent_update(
                    consent_id=consent.id,
                    change=EXPIRE,
                    context=context,
                    expected_revision=consent.revision,
                )
            except ConsentError as exc:
                report.fail(consent.id, ledger_reason(exc))
                return
        report.add("expired")
        report.detail(
            f"consent {consent.id}: {consent.type} {consent.address}: expired "
            f"(PENDING since {consent.confirmation_date:%Y-%m-%d} → NEVER_CONFIRMED)"
        )
