"""The ledger's upserts as one set-based PostgreSQL statement: the hot path of both APIs, and the
batch path of the bulk commands.

The statement applies the rules of `consents.ledger.rules` (latest consent wins, no-op writes,
UNKNOWN_STATE on an email keeps the state, one revision per real change, a tombstone's opt-out)
and writes each consent and its event. It is written once, as the database function
`consent_merge` that a migration installs, and called on two inputs: one item as the call's own
parameters (`consent_upsert`: one round trip instead of a transaction of seven), or a batch
COPY'd into a staging table (`consent_upsert_many`, and the consent API's bulk upsert through
`consent_upsert_batch`). Rows are locked as in the Python path. An item whose address a
concurrent writer created between our read and our insert is not merged: the caller then takes
the Python path for it. `tests/consents/test_ledger_pg.py` and
`tests/consents/test_ledger_pg_batch.py` prove both inputs give what the Python path gives.
"""

from __future__ import annotations

from collections.abc import Collection, Sequence
from datetime import datetime
from json.encoder import encode_basestring_ascii
from typing import TYPE_CHECKING, Any

from django.core.serializers.json import DjangoJSONEncoder
from django.db import connection, connections
from django.db.backends.base.schema import BaseDatabaseSchemaEditor
from psycopg._copy_base import format_row_text
from psycopg.adapt import Transformer

from consents.addresses import erased_address
from consents.ledger.changes import (
    CONFIRMATION,
    REVOKE,
    ChangeContext,
    ConsentChange,
    LedgerResult,
)
from consents.ledger.rules import as_asked, event_for
from consents.models import CONSENT_COLUMNS, ConsentEvent, MarketingConsent
from consentsite.rows import from_row

if TYPE_CHECKING:
    from django.db.migrations.state import StateApps

# One encoder for every statement: `json.dumps(cls=…)` would build a new one per call.
_ENCODER = DjangoJSONEncoder()
to_json = _ENCODER.encode


def _json_value(value: object) -> str:
    """A value of a change as `to_json` writes it."""
    if isinstance(value, str):
        return encode_basestring_ascii(value)
    if isinstance(value, datetime):
        return encode_basestring_ascii(_ENCODER.default(value))
    return to_json(value)


def change_json(change: ConsentChange) -> str:
    """`to_json(change.as_json())`, the change as its event records it, written out: it runs
    for every staged row, and the general encoder's set-up and its call back for each date
    cost more than the rest of the row (docs/performance.md). Tested to give the same text."""
    parts = [] if change.state is None else [f'"state": {_json_value(change.state)}']
    for name, activity in ((CONFIRMATION, change.confirmation), (REVOKE, change.revoke)):
        if activity is not None:
            fields = ", ".join(
                f'"{field}": {_json_value(value)}' for field, value in vars(activity).items()
            )
            parts.append(f'"{name}": {{{fields}}}')
    if change.extended_fields is not None:
        parts.append(f'"extended_fields": {to_json(change.extended_fields)}')
    return "{" + ", ".join(parts) + "}"


STAGING_COLUMNS = {
    "idx": "integer",
    "round": "integer",
    "type": "text",
    "address": "text",
    "erased": "text",
    "sent_state": "text",
    "keeps_state": "boolean",
    "conf": "boolean",
    "conf_source": "text",
    "conf_description": "text",
    "conf_date": "timestamptz",
    "conf_level": "text",
    "rev": "boolean",
    "rev_source": "text",
    "rev_description": "text",
    "rev_date": "timestamptz",
    "sent_extended_fields": "jsonb",
    "sent_date": "timestamptz",
    "activity": "text",
    "request": "jsonb",
}
_CONSENT_ROW = ", ".join(f"o.{column}" for column in CONSENT_COLUMNS)


# Erasure and a concurrent write of the same address (docs/privacy.md): each claims the address
# before it reads, so that neither decides on a snapshot taken while the other is writing. Under
# READ COMMITTED an erasure that finds no row locks nothing; a write's statement cannot see a
# tombstone committed after it began (after waiting for the erasure's row lock, it no longer
# finds the address's row, moved under the hash), and its INSERT … ON CONFLICT on the address
# does not conflict with a tombstone, stored under another key. So writers take a
# transaction-scoped advisory lock on the address, shared (writers never wait for each other),
# an erasure takes it exclusive: whichever comes second waits for the first to commit, then
# reads afresh (each statement of the merge function has its own snapshot). Addresses share
# ADDRESS_LOCK_BUCKETS locks, so that a batch holds at most that many, however large: a
# collision only makes an erasure wait for an unrelated write.
ADDRESS_LOCK_CLASS = 0x636F6E73  # the first of the two advisory-lock keys: "cons"
ADDRESS_LOCK_BUCKETS = 256


def address_lock_key(type: str, address: str) -> str:
    """The second advisory-lock key of an address, as SQL over the expressions `type` and
    `address`."""
    return f"hashtext({type} || ' ' || {address}) & {ADDRESS_LOCK_BUCKETS - 1}"


def claimed(keys: str, *, exclusive: bool = False) -> str:
    """What a SELECT (or, in the function, a PERFORM) claims: the addresses of the query `keys`
    (columns `type`, `address`), in key order, so that claims of several cannot deadlock."""
    lock = "pg_advisory_xact_lock" if exclusive else "pg_advisory_xact_lock_shared"
    key = address_lock_key("type", "address")
    return (
        f"{lock}({ADDRESS_LOCK_CLASS}, key)"
        f" FROM (SELECT DISTINCT {key} AS key FROM ({keys}) k ORDER BY 1) keys"
    )


def claim_addresses(keys: Collection[tuple[str, str]], *, exclusive: bool = False) -> None:
    """Claim these addresses for the transaction: shared to write them, exclusive to erase one.
    Nothing on SQLite, where a transaction that writes holds the whole database."""
    if not keys or connection.vendor != "postgresql":
        return
    statement = "SELECT " + claimed(
        "SELECT * FROM unnest(%s::text[], %s::text[]) AS k(type, address)", exclusive=exclusive
    )
    with connection.cursor() as cursor:
        cursor.execute(statement, [[key[0] for key in keys], [key[1] for key in keys]])


# The ledger's rules in SQL, written once: the function `consent_merge`, which migrations install
# (`install_merge_function`), so that what each caller sends is a short statement that psycopg
# keeps parsed and the server keeps planned. Its input is one row per item, of the type
# `consent_merge_item` (STAGING_COLUMNS), with what the Python rules already decided about it
# (normalised address, its tombstone spelling, whether the state is kept, the activity the event
# records, the change's JSON). Each CTE is one step of consents.ledger.rules.decide; `target`
# holds what set_fields would set. It returns one row per item merged: the event's kind and id,
# the state before, the address as sent and the consent after. An item whose address a
# concurrent writer created between our read and our insert gets no row. The statement reads the
# function's arguments by position ($2 the time, $3 to $8 the context's door, actor, request id,
# IP address, user agent and note), so that the same text runs as the function's own statement
# and through EXECUTE; `{input}` is where its items come from.
MERGE_STATEMENT = f"""
WITH input AS (
    {{input}}
),
stored AS (
    SELECT c.*, i.idx
    FROM consents_marketingconsent c JOIN input i ON c.type = i.type AND c.address = i.address
    FOR UPDATE OF c
),
tombstones AS (
    -- An address without a consent may have a tombstone (docs/privacy.md): that stands for it.
    SELECT c.*, i.idx
    FROM consents_marketingconsent c JOIN input i ON c.type = i.type AND c.address = i.erased
    WHERE NOT EXISTS (
        SELECT FROM consents_marketingconsent x WHERE x.type = i.type AND x.address = i.address
    )
    FOR UPDATE OF c
),
old AS (
    SELECT * FROM stored UNION ALL SELECT * FROM tombstones
),
inserted AS (
    INSERT INTO consents_marketingconsent AS c ({", ".join(CONSENT_COLUMNS)})
    SELECT gen_random_uuid(), i.type, i.address, i.sent_state, 1,
        CASE WHEN i.conf THEN i.conf_source ELSE '' END,
        CASE WHEN i.conf THEN i.conf_description ELSE '' END,
        CASE WHEN i.conf THEN COALESCE(i.conf_date, $2) END,
        CASE WHEN i.conf THEN i.conf_level ELSE '' END,
        CASE WHEN i.rev THEN i.rev_source ELSE '' END,
        CASE WHEN i.rev THEN i.rev_description ELSE '' END,
        CASE WHEN i.rev THEN COALESCE(i.rev_date, $2) END,
        COALESCE(i.sent_extended_fields, '{{}}'::jsonb), $2, $2
    FROM input i
    WHERE NOT EXISTS (SELECT FROM old o WHERE o.idx = i.idx)
    ON CONFLICT (type, address) DO NOTHING
    RETURNING c.*
),
decided AS (
    SELECT o.*, i.address AS sent_address, i.keeps_state, i.sent_state, i.sent_extended_fields,
        i.conf_source AS s_conf_source, i.conf_description AS s_conf_description,
        i.conf_date AS s_conf_date, i.conf_level AS s_conf_level,
        i.rev_source AS s_rev_source, i.rev_description AS s_rev_description,
        i.rev_date AS s_rev_date,
        COALESCE(CASE WHEN o.address = i.erased
            THEN i.sent_date <= GREATEST(o.confirmation_date, o.revoke_date)
            ELSE i.sent_date < GREATEST(o.confirmation_date, o.revoke_date)
        END, false) AS superseded,
        -- An activity sent again is a replay (its stored date kept when it was sent without
        -- one) only when the state stays as it is (rules.set_fields).
        i.conf AND NOT (
            (i.keeps_state OR i.sent_state = o.state)
            AND o.confirmation_date IS NOT NULL
            AND o.confirmation_source = i.conf_source
            AND o.confirmation_description = i.conf_description
            AND o.confirmation_opt_in_level = i.conf_level
            AND o.confirmation_date = COALESCE(i.conf_date, o.confirmation_date)
        ) AS sets_conf,
        i.rev AND NOT (
            (i.keeps_state OR i.sent_state = o.state)
            AND o.revoke_date IS NOT NULL
            AND o.revoke_source = i.rev_source
            AND o.revoke_description = i.rev_description
            AND o.revoke_date = COALESCE(i.rev_date, o.revoke_date)
        ) AS sets_rev
    FROM old o JOIN input i USING (idx)
),
target AS (
    SELECT d.id, d.superseded, d.sent_address,
        CASE WHEN d.keeps_state THEN d.state ELSE d.sent_state END AS n_state,
        CASE WHEN d.sets_conf THEN d.s_conf_source ELSE d.confirmation_source END
            AS n_conf_source,
        CASE WHEN d.sets_conf THEN d.s_conf_description ELSE d.confirmation_description END
            AS n_conf_description,
        CASE WHEN d.sets_conf THEN COALESCE(d.s_conf_date, $2)
            ELSE d.confirmation_date END AS n_conf_date,
        CASE WHEN d.sets_conf THEN d.s_conf_level ELSE d.confirmation_opt_in_level END
            AS n_conf_level,
        CASE WHEN d.sets_rev THEN d.s_rev_source ELSE d.revoke_source END AS n_rev_source,
        CASE WHEN d.sets_rev THEN d.s_rev_description ELSE d.revoke_description END
            AS n_rev_description,
        CASE WHEN d.sets_rev THEN COALESCE(d.s_rev_date, $2) ELSE d.revoke_date END
            AS n_rev_date,
        COALESCE(d.sent_extended_fields, d.extended_fields) AS n_extended_fields,
        d.state AS o_state, d.confirmation_source AS o_conf_source,
        d.confirmation_description AS o_conf_description, d.confirmation_date AS o_conf_date,
        d.confirmation_opt_in_level AS o_conf_level, d.revoke_source AS o_rev_source,
        d.revoke_description AS o_rev_description, d.revoke_date AS o_rev_date,
        d.extended_fields AS o_extended_fields
    FROM decided d
),
updated AS (
    UPDATE consents_marketingconsent c SET
        address = CASE WHEN t.n_state <> 'REVOKED' THEN t.sent_address ELSE c.address END,
        state = t.n_state,
        confirmation_source = t.n_conf_source,
        confirmation_description = t.n_conf_description,
        confirmation_date = t.n_conf_date,
        confirmation_opt_in_level = t.n_conf_level,
        revoke_source = t.n_rev_source,
        revoke_description = t.n_rev_description,
        revoke_date = t.n_rev_date,
        extended_fields = t.n_extended_fields,
        revision = c.revision + 1,
        updated_date = $2
    FROM target t
    -- Compared with the row as `old` locked it (this statement changes it nowhere else), so
    -- that only the rows that change are looked up again: a re-import updates none.
    WHERE c.id = t.id AND NOT t.superseded
        AND (t.n_state, t.n_conf_source, t.n_conf_description, t.n_conf_date, t.n_conf_level,
             t.n_rev_source, t.n_rev_description, t.n_rev_date, t.n_extended_fields)
            IS DISTINCT FROM
            (t.o_state, t.o_conf_source, t.o_conf_description, t.o_conf_date, t.o_conf_level,
             t.o_rev_source, t.o_rev_description, t.o_rev_date, t.o_extended_fields)
    RETURNING c.*
),
outcome AS (
    SELECT i.idx, 'CREATED' AS kind, '' AS previous_state, {_CONSENT_ROW}
    FROM inserted o JOIN input i ON i.type = o.type AND i.address = o.address
    UNION ALL
    SELECT d.idx, 'UPDATED', d.state, {_CONSENT_ROW}
    FROM updated o JOIN decided d ON d.id = o.id
    UNION ALL
    SELECT o.idx, CASE WHEN d.superseded THEN 'SUPERSEDED' ELSE 'UNCHANGED' END, o.state,
        {_CONSENT_ROW}
    FROM old o JOIN decided d ON d.id = o.id
    WHERE NOT EXISTS (SELECT FROM updated u WHERE u.id = o.id)
),
event AS (
    INSERT INTO consents_consentevent (
        consent_id, type, address, kind, revision, previous_state, state, requested_state,
        activity_source, activity_description, activity_opt_in_level, activity_date, request,
        door, actor, request_id, ip_address, user_agent, note, recorded_at)
    SELECT o.id, o.type, o.address, o.kind, o.revision, o.previous_state, o.state, i.sent_state,
        CASE i.activity WHEN 'confirmation' THEN i.conf_source
            WHEN 'revoke' THEN i.rev_source ELSE '' END,
        CASE i.activity WHEN 'confirmation' THEN i.conf_description
            WHEN 'revoke' THEN i.rev_description ELSE '' END,
        CASE i.activity WHEN 'confirmation' THEN i.conf_level ELSE '' END,
        CASE
            WHEN o.kind = 'SUPERSEDED' AND i.activity = 'confirmation' THEN i.conf_date
            WHEN o.kind = 'SUPERSEDED' AND i.activity = 'revoke' THEN i.rev_date
            WHEN i.activity = 'confirmation' THEN o.confirmation_date
            WHEN i.activity = 'revoke' THEN o.revoke_date
        END,
        i.request, $3, $4, $5, $6, $7, $8, $2
    FROM outcome o JOIN input i USING (idx)
    ORDER BY o.idx
    RETURNING id, consent_id
)
SELECT o.idx, o.kind, o.previous_state::text, i.address, event.id, {_CONSENT_ROW}
FROM outcome o JOIN input i USING (idx) JOIN event ON event.consent_id = o.id
"""


def merge_function_body() -> str:
    """The body of `consent_merge` as this code writes it (what a migration installs)."""
    # One item is the array's only element: a row the planner knows is one, so the plan cached
    # for the session looks each address up by index however the tables grow (read as
    # `unnest`, it was planned for ten rows, chose sequential scans while the table was small,
    # and kept them).
    one_item = MERGE_STATEMENT.replace("{input}", "SELECT ($1[1]).*")
    batch = MERGE_STATEMENT.replace("{input}", "SELECT * FROM consent_batch WHERE round = $9")
    # The address claimed first, by a statement of its own: the merge's snapshot is then taken
    # after an erasure of the address committed (one item: a simple expression, the cheapest).
    item_key = address_lock_key("(items[1]).type", "(items[1]).address")
    batch_keys = "SELECT type, address FROM consent_batch WHERE round = p_round"
    return (
        # The output columns are named as the table's: a name in the statement is a column.
        "#variable_conflict use_column\n"
        "BEGIN IF items IS NOT NULL THEN\n"
        f"PERFORM pg_advisory_xact_lock_shared({ADDRESS_LOCK_CLASS}, {item_key});\n"
        f"RETURN QUERY {one_item};\n"
        "ELSE PERFORM set_config('plan_cache_mode', 'force_custom_plan', true);\n"
        f"PERFORM {claimed(batch_keys)};\n"
        f"RETURN QUERY EXECUTE $statement${batch}$statement$ USING items, p_now, p_door,"
        " p_actor, p_request_id, p_ip_address, p_user_agent, p_note, p_round;\nEND IF; END\n"
    )


def install_merge_function(schema_editor: BaseDatabaseSchemaEditor) -> None:
    """Create (or replace) `consent_merge` and its input type; a migration runs it, and runs it
    again whenever the statement or the consent table changes. Nothing on SQLite, which takes the
    Python path."""
    if schema_editor.connection.vendor != "postgresql":
        return
    connection = schema_editor.connection
    item = ", ".join(f"{name} {sql_type}" for name, sql_type in STAGING_COLUMNS.items())
    consent = ", ".join(
        f"{field.column} {field.db_type(connection)}"
        for field in MarketingConsent._meta.concrete_fields
    )
    event_id = ConsentEvent._meta.pk.db_type(connection)
    schema_editor.execute("DROP FUNCTION IF EXISTS consent_merge")
    schema_editor.execute("DROP TYPE IF EXISTS consent_merge_item")
    schema_editor.execute(f"CREATE TYPE consent_merge_item AS ({item})")
    schema_editor.execute(
        "CREATE FUNCTION consent_merge(items consent_merge_item[], p_now timestamptz,"
        " p_door text, p_actor text, p_request_id text, p_ip_address inet, p_user_agent text,"
        " p_note text, p_round integer) RETURNS TABLE (idx integer, kind text, previous_state text,"
        f" sent_address text, event_id {event_id}, {consent}) LANGUAGE plpgsql"
        # One item (`items`, an array of one) runs the statement's plan cached for the session.
        # A batch (`items` null) is read from the staging table of `upsert_many_in_sql`, round
        # `p_round`, and planned for its own size each time: a cached plan would assume a handful
        # of rows and join thousands pairwise. (A plan mode set inside the function ends with
        # it.)
        f" SET plan_cache_mode = force_generic_plan AS $merge${merge_function_body()}$merge$"
    )


def reinstall_merge_function_if_changed(*, using: str, **kwargs: object) -> None:
    """After every `migrate` (post_migrate): a database whose `consent_merge` differs from this
    code's gets this code's, so that a change to the statement cannot ship without reaching
    the database. Where no migration installed it yet (or one removed it), nothing."""
    database = connections[using]
    if database.vendor != "postgresql":
        return
    with database.cursor() as cursor:
        cursor.execute("SELECT prosrc FROM pg_proc WHERE proname = 'consent_merge'")
        installed = cursor.fetchone()
    if installed is not None and installed[0] != merge_function_body():
        with database.schema_editor() as schema_editor:
            install_merge_function(schema_editor)


def install_merge_function_in_migration(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    """`install_merge_function` as a migration's `RunPython` calls it."""
    install_merge_function(schema_editor)


def uninstall_merge_function_in_migration(
    apps: StateApps, schema_editor: BaseDatabaseSchemaEditor
) -> None:
    """Drop `consent_merge` and its input type, as a migration's `RunPython` calls it (the
    reverse of the migration that first installs them). Nothing on SQLite."""
    if schema_editor.connection.vendor == "postgresql":
        schema_editor.execute("DROP FUNCTION IF EXISTS consent_merge")
        schema_editor.execute("DROP TYPE IF EXISTS consent_merge_item")


def _merge_call(items: str, merge_round: str, answer: str) -> str:
    return (
        f"SELECT {answer} FROM consent_merge({items}, %(now)s, %(door)s, %(actor)s,"
        f" %(request_id)s, %(ip_address)s::inet, %(user_agent)s, %(note)s, {merge_round})"
    )


_MERGED_CONSENT = f"idx, kind, previous_state, event_id, {', '.join(CONSENT_COLUMNS)}"

# One item: its row is the statement's own parameters, so that the hot path of both APIs is one
# round trip (and, run often, a prepared statement), with no table to fill.
UPSERT_SQL = _merge_call(
    "ARRAY[ROW("
    + ", ".join(f"%({name})s::{sql_type}" for name, sql_type in STAGING_COLUMNS.items())
    + ")::consent_merge_item]",
    "NULL",
    _MERGED_CONSENT,
)

# A batch: `consent_upsert_many` COPYs it into a temporary staging table and merges it with one
# statement per round: round n holds the n-th appearance of each address in the batch, so that
# an address sent twice is merged twice, in order.
CREATE_STAGING_SQL = (
    "CREATE TEMPORARY TABLE IF NOT EXISTS consent_batch ("
    + ", ".join(f"{name} {sql_type}" for name, sql_type in STAGING_COLUMNS.items())
    + ") ON COMMIT DELETE ROWS"
)
COPY_STAGING_SQL = f"COPY consent_batch ({', '.join(STAGING_COLUMNS)}) FROM STDIN"
# What the bulk commands report: the outcome, the address as sent (a tombstone is reported under
# it, never under its hash); what the consent API answers: each consent as it is after its item.
MERGE_SQL = _merge_call("NULL", "%(round)s", "idx, kind, type, sent_address, previous_state, state")
MERGE_CONSENTS_SQL = _merge_call("NULL", "%(round)s", _MERGED_CONSENT)


def upsert_in_one_statement(
    *,
    type: str,
    address: str,
    change: ConsentChange,
    context: ChangeContext,
    now: datetime,
) -> LedgerResult | None:
    """Run the upsert of one item; return its result, or None when a concurrent writer created
    the address first."""
    row = staging_row(0, 0, (type, address), change)
    params = {**dict(zip(STAGING_COLUMNS, row, strict=True)), **_context_params(context, now)}
    with connection.cursor() as cursor:
        cursor.execute(UPSERT_SQL, params)
        answer = cursor.fetchone()
    if answer is None:
        return None
    return result_of(answer[1:], change, context, now, address)


def result_of(
    answer: Sequence[Any],
    change: ConsentChange,
    context: ChangeContext,
    now: datetime,
    address: str,
) -> LedgerResult:
    """The result of a merged item from its answer (_MERGED_CONSENT without the index): the
    consent after it, as the caller asked for it, and its event as recorded."""
    kind, previous_state, event_id, *values = answer
    consent = from_row(MarketingConsent, values)
    event = event_for(consent, kind, previous_state, change, context)
    event.id, event.recorded_at = event_id, now
    event._state.adding = False
    return LedgerResult(consent=as_asked(consent, address), event=event)


def _context_params(context: ChangeContext, now: datetime) -> dict[str, object]:
    return {
        "now": now,
        "door": context.door,
        "actor": context.actor,
        "request_id": context.request_id,
        "ip_address": context.ip_address,
        "user_agent": context.user_agent,
        "note": context.note,
    }


def staging_row(index: int, merge_round: int, key: tuple[str, str], change: ConsentChange) -> tuple:
    """One item (a change of the normalised address `key`) as a row of the statement's input
    (STAGING_COLUMNS)."""
    confirmation, revoke = change.confirmation, change.revoke
    return (
        index,
        merge_round,
        *key,
        erased_address(key[1]),
        change.state,
        change.keeps_state_of(key[0]),
        confirmation is not None,
        confirmation.source if confirmation else "",
        confirmation.description if confirmation else "",
        confirmation.updated_date if confirmation else None,
        confirmation.opt_in_level if confirmation else "",
        revoke is not None,
        revoke.source if revoke else "",
        revoke.description if revoke else "",
        revoke.updated_date if revoke else None,
        None if change.extended_fields is None else to_json(change.extended_fields),
        change.activity_date(),
        change.primary_activity_name(),
        change_json(change),
    )


def staging_copy_data(rows: list[tuple]) -> bytearray:
    """Staging rows as the data of `COPY_STAGING_SQL`: what psycopg's `Copy.write_row` sends for
    them (tested), formatted by the same function with psycopg's own dumpers (Django's
    connections change only loaders). A bulk command formats a batch in its preparing thread, so
    that the thread that waits for the database does not (docs/performance.md)."""
    data = bytearray()
    transformer = Transformer()
    for row in rows:
        format_row_text(row, transformer, data)
    return data


def upsert_many_in_sql(
    rows: list[tuple],
    *,
    context: ChangeContext,
    now: datetime,
    consents: bool = False,
    copy_data: bytes | bytearray | None = None,
) -> dict[int, tuple]:
    """Merge staging rows round by round; return, per item index, (kind, type, address,
    previous state, state), or with `consents` the answer `result_of` reads. `copy_data`, when
    given, is `staging_copy_data(rows)`, formatted beforehand. An item missing
    from the answer was not merged: a concurrent writer created its address first, and the
    address's later items were held back too, so that the caller can apply them in order."""
    params = _context_params(context, now)
    statement = MERGE_CONSENTS_SQL if consents else MERGE_SQL
    merged: dict[int, tuple] = {}
    rounds = 1 + max((row[1] for row in rows), default=-1)
    with connection.cursor() as cursor:
        # One round trip for both (and the transaction's BEGIN): a batch's statements each wait
        # for the database, so fewer of them is time saved. The table is emptied at each commit;
        # emptied here too for batches inside a longer transaction (DELETE: an empty temporary
        # table needs no TRUNCATE, which replaces its files).
        with connection.connection.pipeline():
            cursor.execute(CREATE_STAGING_SQL)
            cursor.execute("DELETE FROM consent_batch")
        with cursor.copy(COPY_STAGING_SQL) as copy:
            copy.write(staging_copy_data(rows) if copy_data is None else copy_data)
        for merge_round in range(rounds):
            cursor.execute(statement, {**params, "round": merge_round})
            answered = cursor.fetchall()
            merged.update((index, tuple(rest)) for index, *rest in answered)
            expected = [row for row in rows if row[1] == merge_round]
            lost = [row[2:4] for row in expected if row[0] not in merged]
            if lost and merge_round + 1 < rounds:
                cursor.execute(
                    "DELETE FROM consent_batch WHERE (type, address) IN "
                    "(SELECT * FROM unnest(%s::text[], %s::text[]))",
                    [[key[0] for key in lost], [key[1] for key in lost]],
                )
    return merged
