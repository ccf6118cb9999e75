"""JSON bodies with a bounded depth, checked before they are parsed.

Python's JSON parser recurses once per level: a body nested about a thousand deep raises a
RecursionError (a 500), and a few hundred levels make every later walk of the value (a deep copy,
a serializer) slow or fail too. No contract nests deeper than a few levels.
"""

import io
import re
from typing import Any

from django.conf import settings
from django.http import HttpRequest
from rest_framework.exceptions import ParseError, UnsupportedMediaType
from rest_framework.parsers import JSONParser

_STRING = re.compile(rb'"(?:[^"\\]|\\.)*"', re.DOTALL)
_BRACKET = re.compile(rb"[\[\]{}]")


def nested_deeper_than(raw: bytes, limit: int) -> bool:
    """Whether the JSON text opens more than `limit` arrays or objects inside each other
    (brackets inside strings do not count)."""
    # No deeper than the brackets it opens, strings' included: most bodies need no walk at all.
    if raw.count(b"[") + raw.count(b"{") <= limit:
        return False
    depth = 0
    for bracket in _BRACKET.finditer(_STRING.sub(b'""', raw)):
        if bracket.group() in b"[{":
            depth += 1
            if depth > limit:
                return True
        else:
            depth -= 1
    return False


def refuse_content_encoding(request: HttpRequest) -> None:
    """A body compressed (or otherwise encoded) is not read as if it were plain JSON: 415."""
    encoding = request.headers.get("Content-Encoding", "identity").strip().lower()
    if encoding not in ("", "identity"):
        raise UnsupportedMediaType(
            encoding, detail=f"Content-Encoding {encoding!r} is not supported."
        )


def refuse_deep_json(raw: bytes) -> None:
    if nested_deeper_than(raw, settings.MAX_JSON_DEPTH):
        raise ParseError(f"The JSON is nested deeper than {settings.MAX_JSON_DEPTH} levels.")


class BoundedJSONParser(JSONParser):
    """DRF's JSON parser, refusing an encoded body (415) and a body nested deeper than
    MAX_JSON_DEPTH (400) before parsing it."""

    def parse(self, stream: Any, media_type: str | None = None, parser_context: Any = None) -> Any:
        refuse_content_encoding((parser_context or {})["request"])
        raw = stream.read() if stream is not None else b""
        refuse_deep_json(raw)
        return super().parse(io.BytesIO(raw), media_type, parser_context)
