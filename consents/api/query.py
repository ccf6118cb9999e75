"""The consent API's query (docs/consent-api.md): a filter document turned into a Django `Q`,
a sort, and keyset paging with signed cursors. The page itself is read by the selector
`consents.selectors.consents_page`.

A cursor carries its query (filter and sort) and the row it continues from, signed: a follow-up
request sends only the cursor, and a cursor cannot be replayed with another filter.
"""

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from django.core import signing
from django.db.models import Q
from rest_framework.exceptions import ErrorDetail, ValidationError

from consents.addresses import normalize_address
from consents.dates import parse_date
from consents.exceptions import InvalidAddress
from consents.models import ConsentState, ConsentType, MarketingConsent
from consents.selectors import SortKey, consents_page

DEFAULT_LIMIT = 50
MAX_LIMIT = 100
CURSOR_SALT = "consents.api.query.cursor"

EQUALITY = {"$eq", "$ne", "$in", "$exists"}
COMPARISON = {"$eq", "$ne", "$gt", "$lt", "$gte", "$lte"}
# API field → (column, operators, kind of value)
FIELDS: dict[str, tuple[str, set[str], str]] = {
    "id": ("id", EQUALITY, "id"),
    "createdDate": ("created_date", COMPARISON, "date"),
    "updatedDate": ("updated_date", COMPARISON, "date"),
    "details.email": ("address", EQUALITY | {"$startsWith"}, ConsentType.EMAIL),
    "details.phone": ("address", EQUALITY | {"$startsWith"}, ConsentType.PHONE),
    "state": ("state", {"$eq", "$ne", "$in"}, "state"),
}
SORTABLE = {"createdDate": "created_date", "updatedDate": "updated_date"}
LOOKUPS = {"$gt": "gt", "$lt": "lt", "$gte": "gte", "$lte": "lte", "$startsWith": "startswith"}


def refuse(path: str, message: str, rule: str = "FORMAT") -> ValidationError:
    return ValidationError({path: [ErrorDetail(message, code=rule)]})


def filter_to_q(document: Any, path: str = "query.filter") -> Q:
    """A filter document as a `Q`. Unsupported fields, operators or values → ValidationError."""
    if not isinstance(document, dict):
        raise refuse(path, "A filter must be an object.")
    q = Q()
    for key, condition in document.items():
        if key in ("$and", "$or"):
            if not isinstance(condition, list) or not condition:
                raise refuse(f"{path}.{key}", f"{key} takes a non-empty list of filters.")
            parts = [filter_to_q(item, f"{path}.{key}[{i}]") for i, item in enumerate(condition)]
            combined = parts[0]
            for part in parts[1:]:
                combined = combined & part if key == "$and" else combined | part
            q &= combined
        elif key == "$not":
            q &= ~filter_to_q(condition, f"{path}.$not")
        elif key in FIELDS:
            q &= _field_q(key, condition, f"{path}.{key}")
        else:
            raise refuse(
                f"{path}.{key}",
                f"Cannot filter on {key!r}. Filterable: {', '.join(FIELDS)}.",
                "INVALID_ENUM_VALUE",
            )
    return q


def _field_q(field: str, condition: Any, path: str) -> Q:
    column, operators, kind = FIELDS[field]
    if not isinstance(condition, dict):
        condition = {"$eq": condition}  # a bare value means $eq
    if not condition:
        raise refuse(path, "An empty condition.")
    q = Q()
    for operator, value in condition.items():
        if operator not in operators:
            raise refuse(
                f"{path}.{operator}",
                f"{field} supports {', '.join(sorted(operators))}.",
                "INVALID_ENUM_VALUE",
            )
        q &= _operator_q(column, kind, operator, value, f"{path}.{operator}")
    return q


def _operator_q(column: str, kind: str, operator: str, value: Any, path: str) -> Q:
    texts = value if isinstance(value, list) else [value]
    if any(isinstance(text, str) and "\x00" in text for text in texts):
        raise refuse(path, "Text may not contain NUL characters.")
    # An email or phone condition is about consents of that type only.
    of_type = Q(type=kind) if kind in ConsentType.values else Q()
    if operator == "$exists":
        if not isinstance(value, bool):
            raise refuse(path, "$exists takes true or false.")
        present = of_type if kind in ConsentType.values else Q(**{f"{column}__isnull": False})
        return present if value else ~present
    if operator == "$in":
        if not isinstance(value, list):
            raise refuse(path, "$in takes a list.")
        return of_type & Q(**{f"{column}__in": [_value(kind, item, path) for item in value]})
    if operator == "$startsWith":
        if not isinstance(value, str):
            raise refuse(path, "$startsWith takes a string.")
        prefix = value.strip().lower() if kind == ConsentType.EMAIL else value.strip()
        return of_type & Q(**{f"{column}__startswith": prefix})
    matched = of_type & Q(**{column: _value(kind, value, path)})
    if operator == "$eq":
        return matched
    if operator == "$ne":
        return ~matched
    return of_type & Q(**{f"{column}__{LOOKUPS[operator]}": _value(kind, value, path)})


def _value(kind: str, value: Any, path: str) -> Any:
    if kind == "id":
        try:
            return UUID(str(value)) if isinstance(value, str) else _bad(path, "an id")
        except ValueError:
            return _bad(path, "an id")
    if kind == "date":
        return query_date(value, path)
    if kind == "state":
        if value not in ConsentState.values:
            raise refuse(path, f"{value!r} is not a state.", "INVALID_ENUM_VALUE")
        return value
    if not isinstance(value, str):
        return _bad(path, f"an {kind.lower()} address")
    try:
        return normalize_address(kind, value)
    except InvalidAddress as exc:
        raise refuse(path, exc.message) from exc


def _bad(path: str, what: str) -> Any:
    raise refuse(path, f"Expected {what}.")


def query_date(value: Any, path: str) -> datetime:
    moment = parse_date(value)
    if moment is None:
        raise refuse(path, "Expected an ISO-8601 date and time.")
    return moment


@dataclass(frozen=True)
class Sort:
    """The sorted fields in order, then the id, which breaks ties in the last field's order."""

    keys: tuple[SortKey, ...]


def parse_sort(sort: Any) -> Sort:
    if sort in (None, []):
        return Sort(keys=(SortKey("id", descending=False),))
    if not isinstance(sort, list) or len(sort) > len(SORTABLE):
        raise refuse(
            "query.sort", f"Sort by up to {len(SORTABLE)} fields: [{{fieldName, order}}, ...]."
        )
    keys: list[SortKey] = []
    for index, item in enumerate(sort):
        path = f"query.sort[{index}]"
        if not isinstance(item, dict):
            raise refuse(path, "A sort is {fieldName, order}.")
        field, order = item.get("fieldName"), item.get("order", "ASC")
        if not isinstance(field, str) or field not in SORTABLE:
            raise refuse(
                f"{path}.fieldName", f"Sortable: {', '.join(SORTABLE)}.", "INVALID_ENUM_VALUE"
            )
        if any(key.column == SORTABLE[field] for key in keys):
            raise refuse(f"{path}.fieldName", f"{field} is sorted on already.", "INVALID_VALUE")
        if order not in ("ASC", "DESC"):
            raise refuse(f"{path}.order", "ASC or DESC.", "INVALID_ENUM_VALUE")
        keys.append(SortKey(SORTABLE[field], descending=order == "DESC"))
    return Sort(keys=(*keys, SortKey("id", descending=keys[-1].descending)))


@dataclass(frozen=True)
class Page:
    consents: list[MarketingConsent]
    next_cursor: str | None
    prev_cursor: str | None
    has_next: bool


def run_query(body: Any) -> Page:
    """Run a query request (`{"query": {...}}`) and return one page."""
    query = body.get("query", {}) if isinstance(body, dict) else None
    if not isinstance(query, dict):
        raise refuse("query", "A query must be an object.")
    paging = query.get("cursorPaging")
    paging = {} if paging is None else paging
    if not isinstance(paging, dict):
        raise refuse("query.cursorPaging", "cursorPaging must be an object.")
    limit = paging.get("limit", DEFAULT_LIMIT)
    if isinstance(limit, bool) or not isinstance(limit, int) or not 1 <= limit <= MAX_LIMIT:
        raise refuse("query.cursorPaging.limit", f"A whole number from 1 to {MAX_LIMIT}.")

    cursor = paging.get("cursor")
    if cursor is not None:
        position = read_cursor(cursor)
        for part in ("filter", "sort"):
            if part in query and query[part] != position[part]:
                raise refuse("query.cursorPaging.cursor", "The cursor belongs to another query.")
        document, sort_document = position["filter"], position["sort"]
    else:
        position = None
        document = query.get("filter")
        document, sort_document = {} if document is None else document, query.get("sort")

    where = filter_to_q(document)
    sort = parse_sort(sort_document)
    backwards = position is not None and position["direction"] == "prev"
    at = None if position is None else _cursor_values(sort, position["after"])
    if backwards:
        page = consents_page(where, sort.keys, limit, before=at)
    else:
        page = consents_page(where, sort.keys, limit, after=at)
    rows, more = page.consents, page.more

    def cursor_at(consent: MarketingConsent, direction: str) -> str:
        return make_cursor(document, sort_document, sort, consent, direction)

    has_next = more if not backwards else bool(rows)
    has_prev = (position is not None) if not backwards else more
    return Page(
        consents=rows,
        next_cursor=cursor_at(rows[-1], "next") if rows and has_next else None,
        prev_cursor=cursor_at(rows[0], "prev") if rows and has_prev else None,
        has_next=has_next,
    )


def _cursor_values(sort: Sort, after: list[Any]) -> list[Any]:
    """The keyset position a cursor holds: its row's value of each sort key."""
    # A cursor holds one value per key; one made by id alone may carry an unused leading None.
    values = after[-len(sort.keys) :]
    return [
        UUID(raw) if key.column == "id" else query_date(raw, "query.cursorPaging.cursor")
        for key, raw in zip(sort.keys, values, strict=True)
    ]


def make_cursor(
    document: Any, sort_document: Any, sort: Sort, consent: MarketingConsent, direction: str
) -> str:
    payload = {
        "filter": document,
        "sort": sort_document,
        "after": [
            str(consent.id) if key.column == "id" else getattr(consent, key.column).isoformat()
            for key in sort.keys
        ],
        "direction": direction,
    }
    return signing.dumps(payload, salt=CURSOR_SALT, compress=True)


def read_cursor(cursor: Any) -> dict[str, Any]:
    try:
        payload = signing.loads(cursor, salt=CURSOR_SALT)
        UUID(payload["after"][-1])
        if payload["direction"] not in ("next", "prev"):
            raise ValueError(payload["direction"])
    except (signing.BadSignature, TypeError, KeyError, IndexError, ValueError) as exc:
        raise refuse("query.cursorPaging.cursor", "Not a cursor of this API.") from exc
    return payload
