"""Dates given on the command line (`backfill --since/--until`, `articles --since`): ISO 8601
dates, weeks, months, years and times as the moments they start and end at. Pure."""

from __future__ import annotations

import re
from calendar import monthrange
from datetime import MAXYEAR, UTC, date, datetime, timedelta
from typing import Final

_LAST: Final = datetime.max.replace(tzinfo=UTC)
"""The end of an --until that runs to the end of the calendar (`--until 9999-12-31`)."""
_WEEK: Final = re.compile(r"(\d{4})-?W(\d{2})", re.ASCII)
_MONTH: Final = re.compile(r"(\d{4})-(\d{2})", re.ASCII)
_YEAR: Final = re.compile(r"\d{4}", re.ASCII)
_ORDINAL: Final = re.compile(r"(\d{4})-?(\d{3})", re.ASCII)


def _period(text: str) -> tuple[date, date | None] | None:
    """A date given at a coarser precision than the day (ISO 8601 §4.1.2.3, §4.1.4.3): a week
    (`2024-W22`, `2024W22`), a month (`2024-05`; `202405` is no ISO form) or a year, as its
    first day and the day after its last (None past the calendar's end); None for any other
    text. Raises ValueError for a week, month or year outside the calendar."""
    if match := _WEEK.fullmatch(text):
        first = date.fromisocalendar(int(match[1]), int(match[2]), 1)
        days = 7
    elif match := _MONTH.fullmatch(text):
        first = date(int(match[1]), int(match[2]), 1)
        days = monthrange(first.year, first.month)[1]
    elif _YEAR.fullmatch(text):
        first = date(int(text), 1, 1)
        days = (date(first.year, 12, 31) - first).days + 1
    else:
        return None
    try:
        return first, first + timedelta(days=days)
    except OverflowError:
        return first, None


def _ordinal_day(text: str) -> date | None:
    """An ISO 8601 ordinal date (§4.1.2.4: `2024-153`, `2024153`, the year's 153rd day, 1 June
    2024), as the day it names; None for any other text. Raises ValueError for a day its year
    does not have (`2023-366`, `2024-000`)."""
    if (match := _ORDINAL.fullmatch(text)) is None:
        return None
    year, number = int(match[1]), int(match[2])
    first = date(year, 1, 1)
    if not 1 <= number <= (date(year, 12, 31) - first).days + 1:
        raise ValueError(f"{year} has no day {number}")
    return first + timedelta(days=number - 1)


def parse_date_bound(text: str, *, end: bool = False) -> datetime:
    """`--since` / `--until` as an aware UTC datetime: an ISO 8601 date (YYYY-MM-DD, YYYYMMDD,
    YYYY-Www-D, YYYY-DDD), week (YYYY-Www), month (YYYY-MM) or year (YYYY), or datetime (UTC when
    naive). With `end` the bound is returned exclusive: a date means the whole day
    (`--until 2024-05-31` ends at 2024-06-01T00:00Z), a week, a month or a year the whole of
    it (`--until 2024-W22` ends at 2024-06-03T00:00Z, `--until 2024-05` at 2024-06-01T00:00Z),
    a datetime includes that instant; an end past the calendar's last instant is that instant.
    Raises ValueError (a bound outside the calendar included)."""
    text = text.strip()
    period = _period(text)
    if period is None:
        try:
            day = _ordinal_day(text) or date.fromisoformat(text)
        except ValueError:
            if _ORDINAL.fullmatch(text):
                raise
        else:
            after = None if day == date.max else day + timedelta(days=1)
            period = day, after
    if period is not None:
        first, after = period
        if not end:
            return datetime(first.year, first.month, first.day, tzinfo=UTC)
        return _LAST if after is None else datetime(after.year, after.month, after.day, tzinfo=UTC)
    moment = datetime.fromisoformat(text)
    try:
        moment = moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)
        return moment + timedelta(microseconds=1) if end else moment
    except OverflowError:
        if end and moment.year == MAXYEAR:
            return _LAST
        raise ValueError(f"{text!r} is outside the calendar in UTC") from None
