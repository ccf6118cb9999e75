"""What the bulk-fix commands share (docs/design.md): the `--apply`, `--batch-size` and `--errors`
flags, reading a file or stdin line by line, the progress bar, the per-row error report and the
summary line.

A command reads its input in batches of `--batch-size` rows and hands each batch to the ledger
(one transaction per batch), so its memory does not grow with the input.
"""

from __future__ import annotations

import argparse
import codecs
import csv
import gc
import os
import queue
import stat
import sys
import threading
from collections.abc import Iterable, Iterator, Sequence
from contextlib import contextmanager, nullcontext
from typing import IO, Any, NamedTuple, TypeVar

from django.core.management.base import BaseCommand, CommandError, CommandParser
from tqdm import tqdm

from consents.exceptions import ConsentError
from consents.ledger import ChangeContext, Outcome
from consents.models import Door

DEFAULT_BATCH_SIZE = 1000
LEDGER_COUNTS = ("created", "updated", "unchanged", "superseded")
# Container objects allocated (net of those freed) between two runs of Python's cyclic garbage
# collector while a bulk command runs; Python's default is 700.
BULK_GC_THRESHOLD = 100_000

T = TypeVar("T")


def positive_int(text: str) -> int:
    """An argparse type: a whole number of at least 1."""
    try:
        value = int(text)
    except ValueError:
        value = 0
    if value < 1:
        raise argparse.ArgumentTypeError(f"{text!r} is not a positive whole number")
    return value


def prefetched(items: Iterable[T], *, ahead: int = 1) -> Iterator[T]:
    """`items`, produced in a background thread up to `ahead` items before they are asked for.

    A command reads and prepares its next batch (pure Python) while the database writes the
    current one (the driver releases the GIL while it waits), so the two overlap. What the
    producer raises is raised here, in order. The producer must not use the database: its thread
    has no part in the consumer's transaction."""
    handoff: queue.Queue[tuple[str, Any]] = queue.Queue(maxsize=ahead)
    stopped = threading.Event()

    def offer(message: tuple[str, Any]) -> bool:
        while not stopped.is_set():
            try:
                handoff.put(message, timeout=0.1)
                return True
            except queue.Full:
                continue
        return False

    def produce() -> None:
        try:
            for item in items:
                if not offer(("item", item)):
                    return
        except BaseException as exc:
            offer(("error", exc))
        else:
            offer(("done", None))

    producer = threading.Thread(target=produce, name="prefetch", daemon=True)
    producer.start()
    try:
        while True:
            kind, value = handoff.get()
            if kind == "done":
                return
            if kind == "error":
                raise value
            yield value
    finally:
        stopped.set()
        producer.join()


@contextmanager
def rare_garbage_collection() -> Iterator[None]:
    """Python's cyclic garbage collector run rarely inside the block. A bulk command allocates
    millions of short-lived objects (rows, changes, staging rows, outcomes), which reference
    counting frees as they go; at the default threshold the collector ran thousands of times and
    walked the batches in flight each time, about a third of an import's Python time
    (docs/performance.md). What cycles there are still get collected, less often."""
    thresholds = gc.get_threshold()
    gc.set_threshold(BULK_GC_THRESHOLD, *thresholds[1:])
    try:
        yield
    finally:
        gc.set_threshold(*thresholds)


def progress_bar(*, total: int | None, unit: str, verbosity: int, unit_scale: bool = False) -> tqdm:
    """A progress bar on stderr, shown only when stderr is a terminal (never in logs or pipes)."""
    return tqdm(
        total=total,
        unit=unit,
        unit_scale=unit_scale,
        file=sys.stderr,
        disable=verbosity < 1 or not sys.stderr.isatty(),
        dynamic_ncols=True,
        leave=False,
    )


class InputFile:
    """A text file, or stdin for `-`, read line by line as UTF-8.

    Lines are decoded one at a time, so a line that is not UTF-8 is one bad row rather than the
    end of the run. Counts the bytes read, for the progress bar."""

    def __init__(self, path: str) -> None:
        self.name = "stdin" if path == "-" else path
        self.size: int | None = None
        self.bytes_read = 0
        if path == "-":
            self._file: IO[bytes] = sys.stdin.buffer
            self._owned = False
            return
        try:
            self._file = open(path, "rb")  # noqa: SIM115 (closed by close())
        except OSError as exc:
            raise CommandError(f"Cannot read {path}: {exc.strerror}.") from exc
        self._owned = True
        status = os.fstat(self._file.fileno())
        if stat.S_ISREG(status.st_mode):
            self.size = status.st_size

    def lines(self) -> Iterator[tuple[int, str | None]]:
        """Each line's number (from 1) and text with its line ending; None if not UTF-8."""
        for number, raw in enumerate(self._file, start=1):
            self.bytes_read += len(raw)
            if number == 1 and raw.startswith(codecs.BOM_UTF8):
                raw = raw[len(codecs.BOM_UTF8) :]
            try:
                yield number, raw.decode("utf-8")
            except UnicodeDecodeError:
                yield number, None

    def close(self) -> None:
        if self._owned:
            self._file.close()

    def __enter__(self) -> InputFile:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()


class Record(NamedTuple):
    """One row of an input file: the line it starts on, its fields, and why it cannot be read
    (None when it can)."""

    line: int
    values: list[str]
    problem: str | None = None


def csv_records(source: InputFile) -> Iterator[Record]:
    """The records of a CSV file, header included. A quoted field may span lines; a record is
    numbered by the line it starts on. Blank lines are skipped."""
    unreadable: set[int] = set()

    def texts() -> Iterator[str]:
        for number, text in source.lines():
            if text is None:
                unreadable.add(number)
                text = "\n"
            yield text

    reader = csv.reader(texts())
    first = 1
    while True:
        try:
            values = next(reader)
            problem = None
        except StopIteration:
            return
        except csv.Error as exc:
            values, problem = [], f"Not readable as CSV: {exc}."
        last = reader.line_num
        if unreadable and any(first <= number <= last for number in unreadable):
            unreadable.difference_update(range(first, last + 1))
            problem = "Not UTF-8 text."
        if values or problem:
            yield Record(first, values, problem)
        first = last + 1


def require_header(source: InputFile, record: Record | None, expected: Sequence[str]) -> list[int]:
    """Check a CSV header names exactly the expected columns (in any order); return, for each
    expected column, its position in the file's rows."""
    found = [] if record is None else record.values
    if record is not None and record.problem:
        raise CommandError(f"{source.name}: {record.problem} Expected a CSV header.")
    if sorted(found) != sorted(expected) or len(set(found)) != len(found):
        raise CommandError(
            f"{source.name}: the CSV header must name the columns {','.join(expected)} "
            f"(found: {','.join(found) or 'nothing'})."
        )
    return [found.index(column) for column in expected]


def format_from(path: str, given: str | None, formats: Sequence[str]) -> str:
    """The format named by --format, else by the file's extension (csv, jsonl); stdin and
    stdout default to csv."""
    if given:
        return given
    if path == "-":
        return formats[0]
    extension = os.path.splitext(path)[1].lower().lstrip(".")
    extension = {"ndjson": "jsonl"}.get(extension, extension)
    if extension not in formats:
        raise CommandError(
            f"Cannot tell the format of {path} from its extension: "
            f"pass --format {'|'.join(formats)}."
        )
    return extension


class Report:
    """One run's counts (the first one counts what was read), its per-row lines and error
    report, its progress bar and summary.

    Errors go to stderr (`<locator> <n>: <reason>`) and, with `--errors FILE`, to FILE as CSV
    (`<locator>,reason` and the row's fields). The summary line goes to stdout."""

    def __init__(
        self,
        command: BaseCommand,
        *,
        counts: Sequence[str],
        apply: bool,
        verbosity: int,
        errors_path: str | None = None,
        locator: str = "line",
        columns: Sequence[str] = (),
        total: int | None = None,
        unit: str = " rows",
        unit_scale: bool = False,
    ) -> None:
        self.command = command
        self.apply = apply
        self.verbosity = verbosity
        self.locator = locator
        self.counts = dict.fromkeys([*counts, "failed"], 0)
        self._errors_file: IO[str] | None = None
        if errors_path:
            try:
                self._errors_file = open(errors_path, "w", newline="", encoding="utf-8")  # noqa: SIM115
            except OSError as exc:
                raise CommandError(f"Cannot write {errors_path}: {exc.strerror}.") from exc
            self._errors = csv.writer(self._errors_file)
            self._errors.writerow([locator, "reason", *columns])
        self.progress = progress_bar(
            total=total, unit=unit, verbosity=verbosity, unit_scale=unit_scale
        )

    def add(self, count: str, number: int = 1) -> None:
        self.counts[count] += number

    def read(self, number: int) -> None:
        """Count rows read: the first count of the summary."""
        self.counts[next(iter(self.counts))] += number

    def fail(self, where: object, reason: str, values: Sequence[Any] = ()) -> None:
        self.counts["failed"] += 1
        if self.verbosity >= 1:
            self._write(self.command.stderr, f"{self.locator} {where}: {reason}")
        if self._errors_file is not None:
            self._errors.writerow([where, reason, *values])

    def detail(self, text: str, *, verbosity: int = 2) -> None:
        """A line on stdout about one row, shown from the given verbosity on."""
        if self.verbosity >= verbosity:
            self._write(self.command.stdout, text)

    def outcome(self, where: object, outcome: Outcome) -> None:
        """Count a ledger outcome; at verbosity 2 show each change, at 3 every row."""
        kind = outcome.kind.lower()
        self.add(kind)
        shown_from = 2 if kind in ("created", "updated") else 3
        if self.verbosity >= shown_from:  # a line per row is built only when it is shown
            self.detail(
                f"{self.locator} {where}: {outcome.type} {outcome.address}: {kind} "
                f"({outcome.previous_state or 'new'} → {outcome.state})",
                verbosity=shown_from,
            )

    def summary(self) -> str:
        counts = ", ".join(f"{name}: {number}" for name, number in self.counts.items())
        return counts if self.apply else f"DRY RUN — {counts}"

    def finish(self) -> None:
        self.progress.close()
        if self._errors_file is not None:
            self._errors_file.close()
        self.command.stdout.write(self.summary())
        if not self.apply:
            self.command.stdout.write(
                "Nothing was written. Run again with --apply to write these changes."
            )

    def _write(self, stream: Any, text: str) -> None:
        clear_bar = (
            nullcontext() if self.progress.disable else tqdm.external_write_mode(file=sys.stderr)
        )
        with clear_bar:
            stream.write(text)


class BulkCommand(BaseCommand):
    """Base of the commands that change consents in bulk: dry run unless `--apply`, batches of
    `--batch-size` rows (one transaction each), `--errors FILE`, writes through the ledger with
    door COMMAND and the command's name as actor."""

    takes_errors_file = True
    default_batch_size = DEFAULT_BATCH_SIZE

    def execute(self, *args: Any, **options: Any) -> str | None:
        with rare_garbage_collection():
            return super().execute(*args, **options)

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument(
            "--apply",
            action="store_true",
            help="Write the changes. Without it the command is a dry run: it reports what "
            "would change and writes nothing.",
        )
        parser.add_argument(
            "--batch-size",
            type=positive_int,
            default=self.default_batch_size,
            metavar="N",
            help="Rows per batch; each batch is one transaction "
            f"(default {self.default_batch_size}).",
        )
        if self.takes_errors_file:
            parser.add_argument(
                "--errors",
                metavar="FILE",
                help="Also write each failed row to FILE as CSV: its line, the reason and the "
                "row's fields.",
            )

    @property
    def actor(self) -> str:
        """The command's name, recorded as the actor of its writes."""
        return self.__module__.rsplit(".", 1)[-1]

    def ledger_context(self, note: str = "") -> ChangeContext:
        return ChangeContext(door=Door.COMMAND, actor=self.actor, note=note)

    def report(self, options: dict[str, Any], **kwargs: Any) -> Report:
        return Report(
            self,
            apply=options["apply"],
            verbosity=options["verbosity"],
            errors_path=options.get("errors"),
            **kwargs,
        )


def ledger_reason(error: ConsentError, columns: dict[str, str] | None = None) -> str:
    """A ledger refusal as a reason: `<field>: <message>`, the field in the input's own terms
    (`columns` maps the ledger's field names to them; unmapped ones are kept)."""
    field = getattr(error, "field", "address" if error.code == "INVALID_ADDRESS" else "")
    if columns is not None:
        field = columns.get(field, field)
    return f"{field}: {error.message}" if field else error.message
