"""Export consents in the formats import_consents reads, streamed in constant memory."""

from __future__ import annotations

import csv
import json
import os
import tempfile
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from typing import IO, Any

from django.core.management.base import BaseCommand, CommandError, CommandParser

from consents.api.serializers import MarketingConsentSerializer
from consents.exports import CSV_HEADER, consent_csv_row
from consents.management.batch import format_from, progress_bar
from consents.models import ConsentState, ConsentType, MarketingConsent
from consents.selectors import consents_not_erased

FORMATS = ("csv", "jsonl")
CHUNK_SIZE = 2000


class Command(BaseCommand):
    help = (
        "Write every consent (or those of --state / --type) to PATH (- for stdout), ordered by "
        "type and address, in a format import_consents reads: CSV (one activity per row) or JSON "
        "Lines (each consent as the consent API shows it, both activities included). Importing "
        "the file back changes nothing. A file is written under a temporary name and renamed "
        "when complete."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="Where to write; - writes to stdout.")
        parser.add_argument("--state", choices=ConsentState.values, help="Only this state.")
        parser.add_argument("--type", choices=ConsentType.values, help="Only this type.")
        parser.add_argument(
            "--format",
            choices=FORMATS,
            help="The file's format (default: from its extension; csv for stdout).",
        )

    def handle(self, *args: object, path: str, **options: Any) -> None:
        file_format = format_from(path, options["format"], FORMATS)
        consents = consents_not_erased(state=options["state"], type=options["type"])
        bar = progress_bar(total=consents.count(), unit=" consents", verbosity=options["verbosity"])
        exported = 0
        with bar, self.output(path) as output:
            write = WRITERS[file_format](output)
            for consent in consents.iterator(chunk_size=CHUNK_SIZE):
                write(consent)
                exported += 1
                bar.update()
        summary = f"Exported {exported} consents to {'stdout' if path == '-' else path}."
        # On stdout only when stdout is not the export itself.
        (self.stderr if path == "-" else self.stdout).write(summary)

    @contextmanager
    def output(self, path: str) -> Iterator[IO[str]]:
        """stdout, or a temporary file beside PATH renamed to PATH once complete, so that a
        failed export never leaves a file that looks whole."""
        if path == "-":
            yield self.stdout
            return
        directory = os.path.dirname(os.path.abspath(path))
        try:
            handle, partial = tempfile.mkstemp(
                dir=directory, prefix=f".{os.path.basename(path)}.", suffix=".partial"
            )
        except OSError as exc:
            raise CommandError(f"Cannot write {path}: {exc.strerror}.") from exc
        try:
            with open(handle, "w", newline="", encoding="utf-8") as output:
                yield output
            os.replace(partial, path)
        except BaseException as exc:
            os.unlink(partial)
            if isinstance(exc, OSError):
                raise CommandError(f"Cannot write {path}: {exc.strerror}.") from exc
            raise


def csv_writer(output: IO[str]) -> Callable[[MarketingConsent], None]:
    writer = csv.writer(output)
    writer.writerow(CSV_HEADER)
    return lambda consent: writer.writerow(consent_csv_row(consent))


def jsonl_writer(output: IO[str]) -> Callable[[MarketingConsent], None]:
    serializer = MarketingConsentSerializer()
    return lambda consent: output.write(
        json.dumps(serializer.to_representation(consent), ensure_ascii=False) + "\n"
    )


WRITERS: dict[str, Callable[[IO[str]], Callable[[MarketingConsent], None]]] = {
    "csv": csv_writer,
    "jsonl": jsonl_writer,
}
