"""Bulk import benchmark: `import_consents --apply` into an empty PostgreSQL database, against a
COPY-and-merge floor.

    python bench/bulk_import.py [--rows 1000000] [--batch-size N] [--sessions N] [--keep FILE]

It writes N generated CSV rows (the export's format: emails and phone numbers in every state,
activities with millisecond dates), imports them into a fresh database and prints rows per second
and the command's peak memory for the first import and for a re-import of the same file (every
row then unchanged). Then the floor: the same file COPY'd into a staging table and merged by one
statement pair (the consents with INSERT … ON CONFLICT, plus one event row each), in a second
fresh database; and the ratio import ÷ floor.
"""

from __future__ import annotations

import argparse
import csv
import os
import random
import subprocess
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import psycopg
from common import PYTHON, ROOT, fresh_database

HEADER = ["type", "address", "state", "source", "opt_in_level", "description", "date"]
STATES = ["CONFIRMED"] * 6 + ["REVOKED"] * 2 + ["PENDING", "NEVER_CONFIRMED"]
CONFIRMATION_SOURCES = ["FORM", "IN_PERSON", "LINK_CONFIRMATION", "EMAIL_SERVICE"]
REVOKE_SOURCES = ["FORM", "REVOKE_LINK", "IN_PERSON", "OTHER"]
LEVELS = ["SINGLE_CONFIRMATION", "DOUBLE_CONFIRMATION"]
DOMAINS = ["example.com", "example.org", "mail.example.net", "shop.example.co.uk"]


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=1_000_000)
    parser.add_argument("--batch-size", type=int, help="import_consents --batch-size")
    parser.add_argument("--sessions", type=int, help="import_consents --sessions")
    parser.add_argument("--phone-share", type=float, default=0.1, help="share of phone rows")
    parser.add_argument("--database", default="consentsite_bulk")
    parser.add_argument("--keep", metavar="FILE", help="write the generated file here and keep it")
    args = parser.parse_args()

    path = Path(args.keep or tempfile.mkstemp(suffix=".csv")[1])
    try:
        started = time.perf_counter()
        generate(path, args.rows, args.phone_share)
        print(f"generated {args.rows:,} rows in {time.perf_counter() - started:.1f} s")

        database_url, env = fresh_database(args.database)
        options = {"--batch-size": args.batch_size, "--sessions": args.sessions}
        first = run_import(path, env, options)
        again = run_import(path, env, options)
        consents, events = counts(database_url)

        floor_url, _ = fresh_database(f"{args.database}_floor")
        floor_seconds = copy_and_merge(path, floor_url)
        floor_consents, floor_events = counts(floor_url)
    finally:
        if not args.keep:
            path.unlink(missing_ok=True)

    floor_rate = args.rows / floor_seconds
    print(f"{'run':<10} {'seconds':>8} {'rows/s':>9} {'peak RSS':>9}  summary")
    for name, (seconds, rss, summary) in (("import", first), ("re-import", again)):
        print(
            f"{name:<10} {seconds:>8.1f} {args.rows / seconds:>9,.0f} {rss / 1024:>6.0f} MB  "
            f"{summary}"
        )
    print(f"{'floor':<10} {floor_seconds:>8.1f} {floor_rate:>9,.0f}")
    print(
        f"import ÷ floor: {args.rows / first[0] / floor_rate:.2f}, "
        f"re-import ÷ floor: {args.rows / again[0] / floor_rate:.2f}; "
        f"load average {' '.join(f'{load:.1f}' for load in os.getloadavg())}"
    )
    print(f"import: {consents:,} consents, {events:,} events; "
          f"floor: {floor_consents:,} consents, {floor_events:,} events")  # fmt: skip


def generate(path: Path, rows: int, phone_share: float) -> None:
    """Unique addresses, so that every row of the first import creates a consent."""
    rng = random.Random(7)
    start = datetime(2024, 1, 1, tzinfo=UTC)
    with path.open("w", newline="") as file:
        writer = csv.writer(file)
        writer.writerow(HEADER)
        for n in range(rows):
            if rng.random() < phone_share:
                consent_type, address = "PHONE", f"+44207{n:07d}"
            else:
                consent_type, address = "EMAIL", f"person.{n}@{rng.choice(DOMAINS)}"
            state = rng.choice(STATES)
            date = start + timedelta(milliseconds=rng.randrange(600 * 86_400_000))
            date_text = date.strftime("%Y-%m-%dT%H:%M:%S.%f")[:-3] + "Z"
            if state == "REVOKED":
                activity = [rng.choice(REVOKE_SOURCES), "", "unsubscribed", date_text]
            elif state in ("CONFIRMED", "PENDING"):
                activity = [rng.choice(CONFIRMATION_SOURCES), rng.choice(LEVELS), "", date_text]
            else:
                activity = ["", "", "", ""]
            writer.writerow([consent_type, address, state, *activity])


def run_import(
    path: Path, env: dict[str, str], options: dict[str, int | None]
) -> tuple[float, int, str]:
    """Seconds, peak RSS (KiB) and summary line of one `import_consents --apply`."""
    command = [PYTHON, str(ROOT / "manage.py"), "import_consents", str(path), "--apply"]
    for option, value in options.items():
        if value:
            command += [option, str(value)]
    started = time.perf_counter()
    process = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    output = process.stdout.read()
    _, status, usage = os.wait4(process.pid, 0)
    seconds = time.perf_counter() - started
    if os.waitstatus_to_exitcode(status) != 0:
        raise SystemExit(f"import_consents failed:\n{output}")
    return seconds, usage.ru_maxrss, output.strip().splitlines()[0]


# The floor: the file as it is into a staging table, then the consents merged by the newest
# activity and one event per row merged, in one statement. No normalisation, no validation.
FLOOR_STAGING = """
CREATE UNLOGGED TABLE floor_staging (
    type text, address text, state text, source text, opt_in_level text, description text,
    date timestamptz)
"""
FLOOR_MERGE = """
WITH merged AS (
    INSERT INTO consents_marketingconsent AS c (
        id, type, address, state, revision,
        confirmation_source, confirmation_description, confirmation_date,
        confirmation_opt_in_level, revoke_source, revoke_description, revoke_date,
        extended_fields, created_date, updated_date)
    SELECT gen_random_uuid(), s.type, s.address, s.state, 1,
        CASE WHEN s.state IN ('CONFIRMED', 'PENDING') THEN s.source ELSE '' END,
        CASE WHEN s.state IN ('CONFIRMED', 'PENDING') THEN s.description ELSE '' END,
        CASE WHEN s.state IN ('CONFIRMED', 'PENDING') THEN s.date END,
        CASE WHEN s.state IN ('CONFIRMED', 'PENDING') THEN s.opt_in_level ELSE '' END,
        CASE WHEN s.state = 'REVOKED' THEN s.source ELSE '' END,
        CASE WHEN s.state = 'REVOKED' THEN s.description ELSE '' END,
        CASE WHEN s.state = 'REVOKED' THEN s.date END,
        '{}'::jsonb, now(), now()
    FROM floor_staging s
    ON CONFLICT (type, address) DO UPDATE SET
        state = excluded.state,
        confirmation_date = COALESCE(excluded.confirmation_date, c.confirmation_date),
        revoke_date = COALESCE(excluded.revoke_date, c.revoke_date),
        revision = c.revision + 1,
        updated_date = now()
    WHERE GREATEST(excluded.confirmation_date, excluded.revoke_date)
        > GREATEST(c.confirmation_date, c.revoke_date)
    RETURNING c.*
)
INSERT INTO consents_consentevent (
    consent_id, type, address, kind, revision, previous_state, state, requested_state,
    activity_source, activity_description, activity_opt_in_level, activity_date, request,
    door, actor, request_id, user_agent, note, recorded_at)
SELECT m.id, m.type, m.address, 'CREATED', m.revision, '', m.state, m.state,
    m.confirmation_source || m.revoke_source, '', m.confirmation_opt_in_level,
    COALESCE(m.confirmation_date, m.revoke_date), '{}'::jsonb, 'COMMAND', 'floor', '', '', '',
    now()
FROM merged m
"""


def copy_and_merge(path: Path, database_url: str) -> float:
    """Seconds to COPY the file into staging and merge it."""
    with psycopg.connect(database_url) as connection:
        connection.execute(FLOOR_STAGING)
        connection.commit()
        started = time.perf_counter()
        with connection.cursor() as cursor:
            copy_sql = (
                f"COPY floor_staging ({', '.join(HEADER)}) FROM STDIN "
                "(FORMAT csv, HEADER, FORCE_NOT_NULL (source, opt_in_level, description))"
            )
            with cursor.copy(copy_sql) as copy, path.open("rb") as file:
                while chunk := file.read(1 << 20):
                    copy.write(chunk)
            cursor.execute(FLOOR_MERGE)
        connection.commit()
        return time.perf_counter() - started


def counts(database_url: str) -> tuple[int, int]:
    with psycopg.connect(database_url) as connection:
        consents = connection.execute("SELECT count(*) FROM consents_marketingconsent").fetchone()
        events = connection.execute("SELECT count(*) FROM consents_consentevent").fetchone()
    return consents[0], events[0]


if __name__ == "__main__":
    main()
