"""Reads of members and their sessions, as the member API's doors need them on every request."""

from __future__ import annotations

from django.db import connection
from django.utils import timezone

from consents.models import ClientApiKey
from consentsite.rows import columns, from_row
from members.models import Member, MemberSession

_SESSION_COLUMNS = columns(MemberSession, "s")

# Every member API call with a correlation id reads its session: a constant statement with bound
# parameters, so it builds no query and PostgreSQL runs it prepared.
_ACTIVE_SESSION_SQL = (
    f"SELECT {', '.join(_SESSION_COLUMNS + columns(Member, 'm'))} "
    f"FROM {MemberSession._meta.db_table} s JOIN {Member._meta.db_table} m ON m.id = s.member_id "
    "WHERE s.correlation_id = %s AND s.api_key_id = %s AND s.expires_at > %s"
)


def active_session(correlation_id: str, api_key: ClientApiKey) -> MemberSession | None:
    """The unexpired session of `correlation_id` started by the client of `api_key`, with its
    member; None for any other (unknown, expired, or another client's). One query."""
    now = connection.ops.adapt_datetimefield_value(timezone.now())
    with connection.cursor() as cursor:
        cursor.execute(_ACTIVE_SESSION_SQL, [correlation_id, api_key.pk, now])
        row = cursor.fetchone()
    if row is None:
        return None
    session = from_row(MemberSession, row[: len(_SESSION_COLUMNS)])
    session.member = from_row(Member, row[len(_SESSION_COLUMNS) :])
    return session
