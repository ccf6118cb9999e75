"""Model instances from rows that our own SQL read, for the hot reads that build no query.

A selector that reads with a constant statement (prepared on PostgreSQL) selects a model's
`columns(model)` in order and turns each row into an instance with `from_row`, which converts
every value as a queryset would (the database backend's converters, then the field's own)."""

from __future__ import annotations

import weakref
from collections.abc import Sequence
from typing import Any, TypeVar

from django.db import DEFAULT_DB_ALIAS, connections, models

ModelT = TypeVar("ModelT", bound=models.Model)

# Per database connection (each thread has its own), per model: which columns need a conversion
# from what the driver returns (SQLite's dates and UUIDs, JSON fields everywhere).
_converters: weakref.WeakKeyDictionary = weakref.WeakKeyDictionary()


def columns(model: type[models.Model], alias: str | None = None) -> list[str]:
    """The model's concrete columns in `from_row`'s order, qualified by `alias` if given."""
    prefix = f"{alias}." if alias else ""
    return [prefix + field.column for field in model._meta.concrete_fields]


def from_row(model: type[ModelT], values: Sequence[Any], using: str = DEFAULT_DB_ALIAS) -> ModelT:
    """An instance of `model` from a row of its `columns(model)`, in that order."""
    wrapper = connections[using]
    per_model = _converters.setdefault(wrapper, {})
    known = per_model.get(model)
    if known is None:
        known = per_model[model] = _reading_of(model, wrapper)
    attnames, converters = known
    values = list(values)
    for index, column, functions in converters:
        for function in functions:
            values[index] = function(values[index], column, wrapper)
    return model.from_db(using, attnames, values)


def _reading_of(model: type[models.Model], wrapper: Any) -> tuple[list[str], list]:
    fields = model._meta.concrete_fields
    converters = []
    for index, field in enumerate(fields):
        column = field.get_col(model._meta.db_table)
        functions = [*wrapper.ops.get_db_converters(column), *column.get_db_converters(wrapper)]
        if functions:
            converters.append((index, column, functions))
    return [field.attname for field in fields], converters
