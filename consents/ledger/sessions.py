"""Batches of `consent_upsert_many` merged in several database sessions at once: the bulk import's
way to use more than one PostgreSQL backend.

Each batch is split by a hash of the normalised address, so that an address always goes to the
same session, and each session merges its parts in batch order: an address's items are applied
in the order they were read, across batches as within one, by the rules of `consent_upsert`.
Sessions never touch the same consent, so they never wait for each other's row locks. Each part
is one transaction in its session: a batch is committed part by part, and a run that stops half
way (an error, a kill) is finished by running it again, since rows already applied come back
unchanged.
"""

from __future__ import annotations

import queue
import threading
import zlib
from collections import deque
from collections.abc import Iterable, Iterator
from typing import Any, TypeVar

from django.db import connection, connections

from consents.exceptions import ConsentError
from consents.ledger.batch import PreparedBatch, consent_upsert_many
from consents.ledger.changes import ChangeContext, Outcome

T = TypeVar("T")
Outcomes = list[Outcome | ConsentError]

# Batches handed to the sessions before the oldest one's outcomes are read: enough to keep every
# session busy while the caller reports, few enough that memory does not grow with the input.
AHEAD = 2


def upsert_batches(
    batches: Iterable[tuple[T, PreparedBatch]],
    *,
    context: ChangeContext,
    dry_run: bool = False,
    sessions: int = 1,
) -> Iterator[tuple[T, Outcomes]]:
    """Each batch through `consent_upsert_many`, in order, yielded with its tag and its
    outcomes. With `sessions` > 1 on PostgreSQL (not a dry run), each batch is merged by that
    many database sessions at once, an address always in the same one; the outcomes are the
    same as one session's. Inside a transaction the caller's own session merges them all:
    other sessions would not see its uncommitted writes."""
    serial = sessions == 1 or dry_run or connection.in_atomic_block
    if serial or connection.vendor != "postgresql":
        for tag, batch in batches:
            yield tag, consent_upsert_many(items=batch, context=context, dry_run=dry_run)
        return
    yield from _in_sessions(batches, context=context, sessions=sessions)


def split_batch(batch: PreparedBatch, parts: int) -> list[PreparedBatch]:
    """The batch's accepted items as `parts` batches, by a hash of the normalised address (stable
    across runs and processes); each keeps its items' places in the whole batch."""
    accepted: list[list] = [[] for _ in range(parts)]
    staging: list[list] = [[] for _ in range(parts)]
    copied: list[list] = [[] for _ in range(parts)]
    rows = batch.staging_rows or [None] * len(batch.accepted)
    # A staged row's COPY data is one line: its text escapes line breaks.
    lines = batch.copy_data.split(b"\n")[:-1] if batch.copy_data is not None else rows
    for item, row, line in zip(batch.accepted, rows, lines, strict=True):
        part = zlib.crc32(item[1][1].encode()) % parts
        accepted[part].append(item)
        staging[part].append(row)
        copied[part].append(line)
    return [
        PreparedBatch(
            [None] * len(batch.outcomes),
            accepted[part],
            staging[part] if batch.staging_rows is not None else None,
            bytearray(b"".join(line + b"\n" for line in copied[part]))
            if batch.copy_data is not None
            else None,
        )
        for part in range(parts)
    ]


def _in_sessions(
    batches: Iterable[tuple[T, PreparedBatch]], *, context: ChangeContext, sessions: int
) -> Iterator[tuple[T, Outcomes]]:
    stop = threading.Event()
    inboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(sessions)]
    outboxes: list[queue.SimpleQueue] = [queue.SimpleQueue() for _ in range(sessions)]

    def session(inbox: queue.SimpleQueue, outbox: queue.SimpleQueue) -> None:
        """One database session (this thread's own connection) merging its parts in order."""
        try:
            while (part := inbox.get()) is not None and not stop.is_set():
                try:
                    outbox.put(("done", consent_upsert_many(items=part, context=context)))
                except BaseException as exc:
                    outbox.put(("error", exc))
                    return
        finally:
            connections.close_all()

    threads = [
        threading.Thread(target=session, args=boxes, name=f"merge-session-{number}", daemon=True)
        for number, boxes in enumerate(zip(inboxes, outboxes, strict=True))
    ]
    for thread in threads:
        thread.start()
    pending: deque[tuple[T, PreparedBatch, list[PreparedBatch]]] = deque()
    try:
        for tag, batch in batches:
            parts = split_batch(batch, sessions)
            for inbox, part in zip(inboxes, parts, strict=True):
                inbox.put(part)
            pending.append((tag, batch, parts))
            if len(pending) > AHEAD:
                yield _collect(*pending.popleft(), outboxes)
        while pending:
            yield _collect(*pending.popleft(), outboxes)
    finally:
        stop.set()
        for inbox in inboxes:
            inbox.put(None)
        for thread in threads:
            thread.join()


def _collect(
    tag: T, batch: PreparedBatch, parts: list[PreparedBatch], outboxes: list[queue.SimpleQueue]
) -> tuple[T, Outcomes]:
    """The batch's outcomes, once every session has merged its part: the refused items' errors
    where they were, each session's outcomes at its items' places."""
    outcomes: list[Any] = list(batch.outcomes)
    for outbox, part in zip(outboxes, parts, strict=True):
        kind, answer = outbox.get()
        if kind == "error":
            raise answer
        for index, _, _ in part.accepted:
            outcomes[index] = answer[index]
    return tag, outcomes
