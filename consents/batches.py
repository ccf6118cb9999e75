"""Walking many rows in batches, so that memory does not grow with their number: what the ledger's
many-consent writes, the bulk commands and the admin's background jobs share."""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from itertools import islice
from typing import Any, TypeVar

from django.db.models import QuerySet

T = TypeVar("T")


def batched(items: Iterable[T], size: int) -> Iterator[list[T]]:
    """`items` in lists of `size` (the last one shorter)."""
    iterator = iter(items)
    while batch := list(islice(iterator, size)):
        yield batch


def keyset_batches(
    queryset: QuerySet, size: int, *fields: str, after: Any = None
) -> Iterator[list[tuple]]:
    """The rows of `queryset` as tuples of their id and `fields`, `size` at a time in id order,
    each batch read by its own query from where the last one ended (not by OFFSET, which reads
    every row before the page again). Rows changed between batches are seen as they are then.
    `after` starts past that id (a job resuming where it stopped)."""
    while True:
        page = queryset.order_by("id")
        if after is not None:
            page = page.filter(id__gt=after)
        batch = list(page.values_list("id", *fields)[:size])
        if not batch:
            return
        after = batch[-1][0]
        yield batch
