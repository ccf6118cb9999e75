"""Dates as every door writes and reads them: the consent API, the member API, the CSV files of
the commands and the admin's export, change events, privacy exports and receipts.

Written as ISO-8601 in UTC with milliseconds and `Z` (`2025-04-11T17:30:52.123Z`); read as
ISO-8601 with or without fractional seconds, a date without offset being UTC. Activity dates are
kept to the millisecond, the precision they are written back with."""

from __future__ import annotations

from datetime import UTC, datetime

from django.utils import timezone
from django.utils.dateparse import parse_datetime


def format_date(value: datetime | None) -> str:
    """ISO-8601 UTC with milliseconds and Z; "" for no date."""
    if value is None:
        return ""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def parse_date(value: object) -> datetime | None:
    """An ISO-8601 date and time (without offset: UTC), or None when `value` is not one."""
    try:
        moment = parse_datetime(value) if isinstance(value, str) else None
    except ValueError:  # shaped like a date, but none (February 30th, hour 25, offset +99:00)
        return None
    if moment is None:
        return None
    return moment if timezone.is_aware(moment) else moment.replace(tzinfo=UTC)


def to_millisecond(value: datetime | None) -> datetime | None:
    """A date to the millisecond: the precision every door and export writes dates back with.
    Activity dates are kept at it, so a consent read and written back is a no-op, never an
    older activity that would be superseded."""
    if value is None or not value.microsecond % 1000:  # most are already (a copy costs)
        return value
    return value.replace(microsecond=value.microsecond // 1000 * 1000)
