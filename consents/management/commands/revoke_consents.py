"""Revoke the consents of many addresses at once: the incident tool (a complaint, a breach, a
partner's suppression list)."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from django.core.management.base import CommandError, CommandParser

from consents.addresses import normalize_address, normalize_email
from consents.batches import batched, keyset_batches
from consents.exceptions import ConsentError, InvalidAddress
from consents.ledger import ALREADY_REVOKED, RevokeActivity, consent_revoke_addresses
from consents.management.batch import (
    LEDGER_COUNTS,
    BulkCommand,
    InputFile,
    Report,
    ledger_reason,
)
from consents.models import ConsentType, RevokeSource
from consents.selectors import email_consents_at_domain


class Target(NamedTuple):
    """An address to revoke: where it comes from (a line, a consent id), its spelling there, and
    its normalised form, or why it has none."""

    where: object
    spelled: str
    address: str | None
    problem: str = ""


class Command(BulkCommand):
    help = (
        "Revoke the consents of the addresses listed in a file (one per line; blank lines and "
        "lines starting with # are skipped) or of every stored email consent at a domain. Each "
        "is revoked through the ledger with a revoke activity of source OTHER, described by "
        "--reason, dated now. An address without a consent gets one in REVOKED, so that a later "
        "import cannot opt it in with an older date. Addresses already REVOKED are left as they "
        "are (their own proof stands) and counted as already revoked. Dry run unless --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        source = parser.add_mutually_exclusive_group(required=True)
        source.add_argument(
            "--emails-from", metavar="FILE", help="Email addresses, one per line; - for stdin."
        )
        source.add_argument(
            "--phones-from",
            metavar="FILE",
            help="Phone numbers, one per line (DEFAULT_PHONE_REGION for national numbers).",
        )
        source.add_argument(
            "--domain",
            help="Every stored email consent at this domain (exactly this domain, not its "
            "subdomains).",
        )
        parser.add_argument(
            "--reason",
            required=True,
            help="Why they are revoked; the description of each revoke activity.",
        )
        super().add_arguments(parser)

    def handle(self, *args: object, **options: Any) -> None:
        reason = options["reason"].strip()
        if not reason:
            raise CommandError("--reason must say why the consents are revoked.")
        self.revoke_activity = RevokeActivity(source=RevokeSource.OTHER, description=reason)
        if options["domain"]:
            self.revoke_domain(options["domain"], options)
            return
        path = options["emails_from"] or options["phones_from"]
        self.note = f"Listed in {'stdin' if path == '-' else path}."
        type_ = ConsentType.EMAIL if options["emails_from"] else ConsentType.PHONE
        with InputFile(path) as source:
            report = self.report(
                options,
                counts=("rows read", *LEDGER_COUNTS, "already revoked"),
                columns=("address",),
                total=source.size,
                unit="B",
                unit_scale=True,
            )
            for batch in batched(self.listed(source, type_), options["batch_size"]):
                self.revoke(type_, batch, report)
                report.progress.update(source.bytes_read - report.progress.n)
        report.finish()

    def listed(self, source: InputFile, type_: str) -> Iterator[Target]:
        for line, text in source.lines():
            if text is None:
                yield Target(line, "", None, "Not UTF-8 text.")
                continue
            spelled = text.strip()
            if not spelled or spelled.startswith("#"):
                continue
            try:
                yield Target(line, spelled, normalize_address(type_, spelled))
            except InvalidAddress as exc:
                yield Target(line, spelled, None, f"address: {exc.message}")

    def revoke_domain(self, domain: str, options: dict[str, Any]) -> None:
        try:
            domain = normalize_email(f"postmaster@{domain}").partition("@")[2]
        except InvalidAddress as exc:
            raise CommandError(f"--domain: {domain!r} is not a valid domain.") from exc
        self.note = f"Every email consent at {domain}."
        matched = email_consents_at_domain(domain)
        report = self.report(
            options,
            counts=("consents found", *LEDGER_COUNTS, "already revoked"),
            locator="consent",
            columns=("address",),
            total=matched.count(),
            unit=" consents",
        )
        for batch in keyset_batches(matched, options["batch_size"], "address"):
            self.revoke(ConsentType.EMAIL, [self.stored(*row) for row in batch], report)
            report.progress.update(len(batch))
        report.finish()

    def stored(self, consent_id: object, address: str) -> Target:
        try:
            normalized = normalize_address(ConsentType.EMAIL, address)
        except InvalidAddress as exc:
            return Target(consent_id, address, None, f"address: {exc.message}")
        if normalized != address:
            return Target(
                consent_id,
                address,
                None,
                "Stored in a legacy spelling: run normalize_addresses, then this again.",
            )
        return Target(consent_id, address, normalized)

    def revoke(self, type_: str, batch: list[Target], report: Report) -> None:
        """One batch in one transaction, through the ledger; the already revoked ones are left
        alone."""
        report.read(len(batch))
        to_revoke = [position for position, target in enumerate(batch) if target.address]
        outcomes = consent_revoke_addresses(
            type=type_,
            addresses=[batch[position].address for position in to_revoke],
            revoke=self.revoke_activity,
            context=self.ledger_context(self.note),
            dry_run=not report.apply,
        )
        outcome_at = dict(zip(to_revoke, outcomes, strict=True))
        for position, target in enumerate(batch):
            outcome = outcome_at.get(position)
            if outcome is None:
                report.fail(target.where, target.problem, [target.spelled])
            elif isinstance(outcome, ConsentError):
                report.fail(target.where, ledger_reason(outcome), [target.spelled])
            elif outcome.kind == ALREADY_REVOKED:
                report.add("already revoked")
                report.detail(
                    f"{report.locator} {target.where}: {type_} {target.address}: already revoked",
                    verbosity=3,
                )
            else:
                report.outcome(target.where, outcome)
