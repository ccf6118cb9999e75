"""Import consents from a file through the ledger: a migration from another system, or an export
read back."""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any, NamedTuple

from django.core.management.base import CommandParser

from consents.exceptions import ConsentError, InvalidChange
from consents.exports import CSV_COLUMNS_OF_FIELDS, CSV_HEADER, csv_row_change
from consents.ledger import BatchItem, consent_upsert_batch
from consents.management.batch import (
    LEDGER_COUNTS,
    BulkCommand,
    InputFile,
    Report,
    batched,
    csv_records,
    format_from,
    ledger_reason,
    require_header,
)

FORMATS = ("csv",)


class Row(NamedTuple):
    """A row of the file: its line, its fields as read (for the error report), and the ledger
    item it stands for, or why it cannot be imported."""

    line: int
    values: list[str]
    item: BatchItem | None
    problem: str = ""


class Command(BulkCommand):
    help = (
        "Import consents from PATH (- for stdin) through the ledger, as the export writes them. "
        f"CSV: the header {','.join(CSV_HEADER)}; source, opt_in_level, description and date "
        "are the confirmation activity of a PENDING or CONFIRMED row, the revoke activity of a "
        "REVOKED one (opt_in_level empty), empty otherwise; the date is required. Every row "
        "follows the ledger's rules: a row older than the consent's newest activity is recorded "
        "as superseded and changes nothing, so an import never turns a newer opt-out into an "
        "opt-in, and importing the same file again changes nothing. Bad rows are reported with "
        "their line (the header is line 1) and do not stop the run. Dry run unless --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="The file to import; - reads stdin.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="The file's format (default: from its extension; csv for stdin).",
        )
        super().add_arguments(parser)

    def handle(self, *args: object, path: str, **options: Any) -> None:
        format_from(path, options["format"], FORMATS)
        with InputFile(path) as source:
            rows = self.csv_rows(source)
            report = self.report(
                options,
                counts=("rows read", *LEDGER_COUNTS),
                columns=CSV_HEADER,
                total=source.size,
                unit="B",
                unit_scale=True,
            )
            for batch in batched(rows, options["batch_size"]):
                self.import_batch(batch, report)
                report.progress.update(source.bytes_read - report.progress.n)
        report.finish()

    def csv_rows(self, source: InputFile) -> Iterator[Row]:
        """Check the header now; then the rows, each with its ledger item or its problem."""
        records = csv_records(source)
        positions = require_header(source, next(records, None), CSV_HEADER)

        def rows() -> Iterator[Row]:
            for record in records:
                if record.problem:
                    yield Row(record.line, record.values, None, record.problem)
                    continue
                if len(record.values) != len(CSV_HEADER):
                    problem = f"Expected {len(CSV_HEADER)} fields, found {len(record.values)}."
                    yield Row(record.line, record.values, None, problem)
                    continue
                values = [record.values[position] for position in positions]
                try:
                    yield Row(record.line, values, csv_row_change(values))
                except InvalidChange as exc:
                    yield Row(record.line, values, None, ledger_reason(exc))

        return rows()

    def import_batch(self, batch: list[Row], report: Report) -> None:
        """One batch through the ledger (one transaction), reported in line order."""
        report.read(len(batch))
        accepted = [row for row in batch if row.item is not None]
        outcomes = consent_upsert_batch(
            items=[row.item for row in accepted],
            context=self.ledger_context(),
            dry_run=not report.apply,
        )
        by_line = dict(zip((row.line for row in accepted), outcomes, strict=True))
        for row in batch:
            outcome = by_line.get(row.line)
            if outcome is None:
                report.fail(row.line, row.problem, row.values)
            elif isinstance(outcome, ConsentError):
                report.fail(row.line, ledger_reason(outcome, CSV_COLUMNS_OF_FIELDS), row.values)
            else:
                report.outcome(row.line, outcome)
