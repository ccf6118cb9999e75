"""Ages such as `3y`, `18m`, `90d` or `2w`: how long evidence is kept (docs/privacy.md)."""

import re
from datetime import datetime, timedelta

AGE = re.compile(r"^\s*(\d+)\s*([dwmy])\s*$")


def before(age: str, now: datetime) -> datetime:
    """The moment `age` before `now`, in calendar months and years for `m` and `y` (the 29th
    of February falls back to the 28th). Raises ValueError on anything else."""
    match = AGE.match(age)
    if match is None or int(match[1]) == 0:
        raise ValueError(f"{age!r} is not an age such as 3y, 18m, 90d or 2w.")
    count, unit = int(match[1]), match[2]
    if unit in "dw":
        return now - timedelta(days=count * (7 if unit == "w" else 1))
    months = now.year * 12 + now.month - 1 - count * (12 if unit == "y" else 1)
    year, month = divmod(months, 12)
    for day in range(now.day, 27, -1) if now.day > 28 else [now.day]:
        try:
            return now.replace(year=year, month=month + 1, day=day)
        except ValueError:
            continue
    raise ValueError(f"{age!r} goes before the calendar.")
