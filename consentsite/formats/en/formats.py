"""Dates as the admin shows them: one format, to the second, with the time zone (UTC), so that a
date read off a page is exact proof (Django's English default drops the seconds and the zone)."""

DATETIME_FORMAT = "Y-m-d H:i:s T"
SHORT_DATETIME_FORMAT = DATETIME_FORMAT
