"""Import loyalty members from CSV: each is created, or updated by its loyalty id, else its
external id."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.core.management.base import CommandParser
from django.db import transaction
from django.utils import timezone

from consents.addresses import normalize_email, normalize_phone
from consents.batches import batched
from consents.exceptions import InvalidAddress
from consents.management.batch import (
    BulkCommand,
    InputFile,
    Record,
    Report,
    csv_records,
    require_header,
)
from members.models import Member
from members.selectors import members_with_loyalty_or_external_id

MEMBER_HEADER = ["loyalty_id", "external_id", "email", "phone", "first_name", "last_name"]
IDENTIFIERS = ("loyalty_id", "external_id")
DETAILS = ("email", "phone", "first_name", "last_name")
NORMALIZERS = {"email": normalize_email, "phone": normalize_phone}
MAX_LENGTHS = {name: Member._meta.get_field(name).max_length for name in MEMBER_HEADER}


class BadRow(Exception):
    pass


@dataclass
class MemberRow:
    line: int
    values: list[str]
    fields: dict[str, str] | None
    problem: str = ""


class Command(BulkCommand):
    help = (
        f"Create or update loyalty members from a CSV file (- for stdin) with the header "
        f"{','.join(MEMBER_HEADER)}. A row updates the member with its loyalty id, else the "
        "one with its external id, else creates one. An empty field leaves the stored value as "
        "it is; an identifier already set to another value, or held by another member, is a "
        "bad row. Emails and phones are normalised. Members point at addresses: no consent is "
        "changed. Bad rows are reported with their line (the header is line 1) and do not stop "
        "the run. Dry run unless --apply."
    )

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("path", metavar="PATH", help="The CSV file; - reads stdin.")
        super().add_arguments(parser)

    def handle(self, *args: object, path: str, **options: Any) -> None:
        with InputFile(path) as source:
            records = csv_records(source)
            positions = require_header(source, next(records, None), MEMBER_HEADER)
            report = self.report(
                options,
                counts=("rows read", "created", "updated", "unchanged"),
                columns=MEMBER_HEADER,
                total=source.size,
                unit="B",
                unit_scale=True,
            )
            rows = (self.parse(record, positions) for record in records)
            for batch in batched(rows, options["batch_size"]):
                report.read(len(batch))
                with transaction.atomic():
                    self.upsert(batch, report)
                report.progress.update(source.bytes_read - report.progress.n)
        report.finish()

    def parse(self, record: Record, positions: list[int]) -> MemberRow:
        if record.problem:
            return MemberRow(record.line, record.values, None, record.problem)
        if len(record.values) != len(MEMBER_HEADER):
            problem = f"Expected {len(MEMBER_HEADER)} fields, found {len(record.values)}."
            return MemberRow(record.line, record.values, None, problem)
        values = [record.values[position] for position in positions]
        fields = {name: value.strip() for name, value in zip(MEMBER_HEADER, values, strict=True)}
        try:
            for name, value in fields.items():
                if len(value) > MAX_LENGTHS[name]:
                    raise BadRow(f"{name}: longer than {MAX_LENGTHS[name]} characters.")
                if value and name in NORMALIZERS:
                    try:
                        fields[name] = NORMALIZERS[name](value)
                    except InvalidAddress as exc:
                        raise BadRow(f"{name}: {exc.message}") from exc
            if not (fields["loyalty_id"] or fields["external_id"]):
                raise BadRow("A loyalty_id or an external_id is required.")
        except BadRow as exc:
            return MemberRow(record.line, values, None, str(exc))
        return MemberRow(record.line, values, fields)

    def upsert(self, batch: list[MemberRow], report: Report) -> None:
        """Decide every row against the stored members and the rows before it, then write the
        batch (unless it is a dry run)."""
        wanted = {name: {row.fields[name] for row in batch if row.fields} for name in IDENTIFIERS}
        stored = members_with_loyalty_or_external_id(wanted["loyalty_id"], wanted["external_id"])
        if report.apply:
            stored = stored.select_for_update()
        known = Members(stored)
        for row in batch:
            if row.fields is None:
                report.fail(row.line, row.problem, row.values)
                continue
            try:
                member, outcome = known.apply(row.fields)
            except BadRow as exc:
                report.fail(row.line, str(exc), row.values)
                continue
            report.add(outcome)
            report.detail(
                f"line {row.line}: member {member.loyalty_id or member.external_id}: {outcome}",
                verbosity=3 if outcome == "unchanged" else 2,
            )
        if report.apply:
            Member.objects.bulk_create(known.created)
            now = timezone.now()
            for member in known.updated.values():
                member.updated_at = now
            Member.objects.bulk_update(
                known.updated.values(), fields=[*IDENTIFIERS, *DETAILS, "updated_at"]
            )


class Members:
    """The members a batch may touch, by both identifiers, with the rows' changes applied in
    memory: `created` and `updated` are what the batch has to write."""

    def __init__(self, members: Iterable[Member]) -> None:
        self.by: dict[str, dict[str, Member]] = {name: {} for name in IDENTIFIERS}
        self.created: list[Member] = []
        self.updated: dict[int, Member] = {}
        for member in members:
            self.index(member)

    def index(self, member: Member) -> None:
        for name in IDENTIFIERS:
            if getattr(member, name):
                self.by[name][getattr(member, name)] = member

    def apply(self, fields: dict[str, str]) -> tuple[Member, str]:
        """Apply a row to the member it names; return that member and whether it was created,
        updated or unchanged. Raises BadRow when the row's identifiers contradict the stored
        ones."""
        found = [
            (name, self.by[name][fields[name]])
            for name in IDENTIFIERS
            if fields[name] in self.by[name]
        ]
        if not found:
            member = Member(**{name: fields[name] or None for name in IDENTIFIERS})
            for name in DETAILS:
                setattr(member, name, fields[name])
            self.index(member)
            self.created.append(member)
            return member, "created"
        found_by, member = found[0]
        changed = False
        for name in IDENTIFIERS:
            value, current = fields[name], getattr(member, name)
            if not value or value == current:
                continue
            if current:
                raise BadRow(
                    f"{name}: the member with {found_by} {fields[found_by]!r} has {current!r}, "
                    f"not {value!r}."
                )
            if value in self.by[name]:
                raise BadRow(f"{name}: {value!r} belongs to another member.")
            setattr(member, name, value)
            changed = True
        for name in DETAILS:
            if fields[name] and fields[name] != getattr(member, name):
                setattr(member, name, fields[name])
                changed = True
        if not changed:
            return member, "unchanged"
        self.index(member)
        if member.pk is not None:
            self.updated[member.pk] = member
        return member, "updated"
