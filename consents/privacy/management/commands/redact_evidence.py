"""manage.py redact_evidence: remove IP addresses and user agents from old proof events."""

from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandError, CommandParser
from django.utils import timezone

from consents.ledger import evidence_redact
from consents.management.batch import DEFAULT_BATCH_SIZE, positive_int
from consents.privacy.retention import before


class Command(BaseCommand):
    help = (
        "Remove the IP address and user agent of events recorded longer ago than --older-than "
        "(default EVIDENCE_RETENTION), keeping everything else, in batches of one transaction "
        "each. Dry run unless --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--older-than",
            default=None,
            help="An age such as 3y, 18m, 90d or 2w (default: the EVIDENCE_RETENTION setting).",
        )
        parser.add_argument("--batch-size", type=positive_int, default=DEFAULT_BATCH_SIZE)
        parser.add_argument("--apply", action="store_true", help="Redact (default: dry run).")

    def handle(self, *args: object, **options: Any) -> None:
        age = options["older_than"] or settings.EVIDENCE_RETENTION
        try:
            cutoff = before(age, timezone.now())
        except ValueError as exc:
            raise CommandError(f"--older-than: {exc}") from exc
        count = evidence_redact(
            recorded_before=cutoff, batch_size=options["batch_size"], dry_run=not options["apply"]
        )
        when = cutoff.isoformat(timespec="seconds")
        if options["apply"]:
            self.stdout.write(f"Redacted {count} event(s) recorded before {when}.")
        else:
            self.stdout.write(
                f"DRY RUN — {count} event(s) recorded before {when} have an IP address or user "
                "agent. Run again with --apply to remove them."
            )
