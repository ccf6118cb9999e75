"""Import consents from a file through the ledger: a migration from another system, or an export
read back."""

from __future__ import annotations

import json
from collections.abc import Iterator
from contextlib import closing
from itertools import chain
from typing import Any, NamedTuple

from django.core.management.base import CommandError, CommandParser

from consents.api.serializers import MarketingConsentInputSerializer, unwrapped
from consents.batches import batched
from consents.exceptions import ConsentError, InvalidChange
from consents.exports import CSV_COLUMNS_OF_FIELDS, CSV_HEADER, csv_row_change
from consents.ledger import BatchItem, Outcome, prepare_batch, upsert_batches
from consents.management.batch import (
    LEDGER_COUNTS,
    BulkCommand,
    InputFile,
    Report,
    csv_records,
    format_from,
    ledger_reason,
    positive_int,
    prefetched,
    require_header,
)
from consentsite.api_errors import field_violations

FORMATS = ("csv", "jsonl")
# Two sessions: on a 2-core machine the import's Python keeps one core busy and its database
# work is then the larger part; two backends merge it faster (docs/performance.md).
DEFAULT_SESSIONS = 2
# Larger than the other commands' batches: each batch's round trips, planning and commit are
# paid once per 5,000 rows (docs/performance.md); memory stays bounded by a few batches.
IMPORT_BATCH_SIZE = 5000


class Row(NamedTuple):
    """A row of the file: its line, its fields as read (for the error report), and the ledger
    item it stands for, or why it cannot be imported."""

    line: int
    values: list[str]
    item: BatchItem | None
    problem: str = ""


class Command(BulkCommand):
    default_batch_size = IMPORT_BATCH_SIZE
    help = (
        "Import consents from PATH (- for stdin) through the ledger, as the export writes them. "
        f"CSV: the header {','.join(CSV_HEADER)}; source, opt_in_level, description and date "
        "are the confirmation activity of a PENDING or CONFIRMED row, the revoke activity of a "
        "REVOKED one (opt_in_level empty), empty otherwise; the date is required. Every row "
        "follows the ledger's rules: a row older than the consent's newest activity is recorded "
        "as superseded and changes nothing, so an import never turns a newer opt-out into an "
        "opt-in, and importing the same file again changes nothing. Bad rows are reported with "
        "their line (the header is line 1) and do not stop the run. JSONL: one consent per "
        "line in the consent API's upsert body, as export_consents writes it; every activity "
        "needs its updatedDate. Dry run unless --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="The file to import; - reads stdin.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="The file's format (default: from its extension; csv for stdin).",
        )
        parser.add_argument(
            "--sessions",
            type=positive_int,
            default=DEFAULT_SESSIONS,
            metavar="N",
            help="PostgreSQL: merge each batch in N database sessions at once, an address "
            "always in the same one (each session's part of a batch is its own transaction; "
            f"default {DEFAULT_SESSIONS}).",
        )
        super().add_arguments(parser)

    def handle(self, *args: object, path: str, **options: Any) -> None:
        file_format = format_from(path, options["format"], FORMATS)
        with InputFile(path) as source:
            if file_format == "csv":
                rows, columns = self.csv_rows(source), CSV_HEADER
            else:
                rows, columns = self.jsonl_rows(source), ["record"]
            report = self.report(
                options,
                counts=("rows read", *LEDGER_COUNTS),
                columns=columns,
                total=source.size,
                unit="B",
                unit_scale=True,
            )
            dry_run = not options["apply"]
            prepared = (
                (batch, prepare_batch([row.item for row in batch if row.item], dry_run=dry_run))
                for batch in batched(rows, options["batch_size"])
            )
            with closing(prefetched(prepared)) as ready:
                merged = upsert_batches(
                    ready,
                    context=self.ledger_context(),
                    dry_run=dry_run,
                    sessions=options["sessions"],
                )
                for batch, outcomes in merged:
                    self.report_batch(batch, outcomes, report)
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

    def jsonl_rows(self, source: InputFile) -> Iterator[Row]:
        """Check the first line is a JSON object now; then the rows, each read by the consent
        API's upsert serializer."""
        lines = ((line, text) for line, text in source.lines() if text is None or text.strip())
        first = next(lines, None)
        if first is None or first[1] is None or not first[1].lstrip().startswith("{"):
            raise CommandError(
                f"{source.name}: expected JSON Lines, one consent object per line "
                f"(line {first[0] if first else 1} is not a JSON object)."
            )

        def rows() -> Iterator[Row]:
            for line, text in chain([first], lines):
                record = [text.rstrip("\r\n")] if text is not None else []
                problem, item = ("Not UTF-8 text.", None) if text is None else jsonl_item(text)
                yield Row(line, record, item, problem)

        return rows()

    def report_batch(
        self, batch: list[Row], outcomes: list[Outcome | ConsentError], report: Report
    ) -> None:
        """A batch's rows in line order, with the ledger's outcomes of its readable rows."""
        report.read(len(batch))
        accepted = [row for row in batch if row.item is not None]
        by_line = dict(zip((row.line for row in accepted), outcomes, strict=True))
        for row in batch:
            outcome = by_line.get(row.line)
            if outcome is None:
                report.fail(row.line, row.problem, row.values)
            elif isinstance(outcome, ConsentError):
                report.fail(row.line, ledger_reason(outcome, CSV_COLUMNS_OF_FIELDS), row.values)
            else:
                report.outcome(row.line, outcome)


def jsonl_item(text: str) -> tuple[str, BatchItem | None]:
    """A line of JSON Lines as a ledger item, or why it is not one."""
    try:
        data = json.loads(text.strip())
    except ValueError as exc:
        return f"Not JSON: {exc.msg} at column {exc.colno}.", None
    serializer = MarketingConsentInputSerializer(data=unwrapped(data))
    if not serializer.is_valid():
        violations = field_violations(serializer.errors)
        return "; ".join(
            ": ".join(filter(None, (v["field"], v["description"]))) for v in violations
        ), None
    consent = serializer.validated_data
    change = serializer.to_change(consent)
    for field, activity in (
        ("lastConfirmationActivity", change.confirmation),
        ("lastRevokeActivity", change.revoke),
    ):
        if activity is not None and activity.updated_date is None:
            # As in CSV: without its date an activity would count as now.
            return f"{field}.updatedDate: An imported activity needs its date.", None
    return "", BatchItem(consent["details"]["type"], consent["details"]["address"], change)
