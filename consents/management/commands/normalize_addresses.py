"""Re-normalise stored addresses: rows that came in by raw SQL or under older rules."""

from __future__ import annotations

from contextlib import nullcontext
from typing import Any

from django.db import transaction

from consents.addresses import normalize_address
from consents.batches import keyset_batches
from consents.exceptions import ConsentError
from consents.ledger import consent_renormalize
from consents.management.batch import BulkCommand, Report, ledger_reason
from consents.selectors import consents_not_erased


class Command(BulkCommand):
    help = (
        "Find every consent whose stored address is not in normalised form and move it there "
        "through the ledger. Where two consents collapse into one address, the one with the "
        "newest activity is kept and the other deleted; both get an event, the deleted one's "
        "naming the consent it merged into. Addresses that cannot be normalised are reported "
        "and left alone. The dry run makes the same changes in a transaction it rolls back, so "
        "it reports exactly what --apply would do."
    )

    def handle(self, *args: object, **options: Any) -> None:
        report = self.report(
            options,
            counts=("consents read", "moved", "merged"),
            locator="consent",
            columns=("type", "address"),
            total=consents_not_erased().count(),
            unit=" consents",
        )
        # A dry run is the real run rolled back: a merge depends on the moves before it.
        with nullcontext() if report.apply else transaction.atomic():
            self.normalize_all(report, options["batch_size"])
            if not report.apply:
                transaction.set_rollback(True)
        report.finish()

    def normalize_all(self, report: Report, batch_size: int) -> None:
        context = self.ledger_context()
        for batch in keyset_batches(consents_not_erased(), batch_size, "type", "address"):
            report.read(len(batch))
            with transaction.atomic():
                for consent_id, type_, address in batch:
                    try:
                        if normalize_address(type_, address) == address:
                            continue
                        kept, *deleted = consent_renormalize(consent_id=consent_id, context=context)
                    except ConsentError as exc:
                        report.fail(consent_id, ledger_reason(exc), [type_, address])
                        continue
                    if not deleted:
                        report.add("moved")
                        outcome = "moved"
                    elif kept.consent.id == consent_id:
                        report.add("merged")
                        outcome = f"kept, {deleted[0].event.consent_id} merged into it"
                    else:
                        report.add("merged")
                        outcome = f"merged into {kept.consent.id}"
                    report.detail(
                        f"consent {consent_id}: {type_} {address!r} → {kept.consent.address}: "
                        f"{outcome}"
                    )
            report.progress.update(len(batch))
