"""Cube's ``dateRange`` / ``compareDateRange`` semantics, resolved to half-open intervals.

Every range comes back as ``(start, end)`` with ``start <= t < end``: naive datetimes in the
wall-clock of the query's timezone. Cube's inclusive ends (``...T23:59:59.999``) become the
next instant. Weeks start on Monday (ISO), as in Cube.
"""

from __future__ import annotations

import calendar
from collections.abc import Sequence
from datetime import datetime, timedelta
from zoneinfo import ZoneInfo

from aiser_jupyter.errors import AiserError

__all__ = [
    "GRANULARITIES",
    "DateRangeError",
    "check_granularity",
    "compare_ranges",
    "date_range",
    "instant",
]

GRANULARITIES: tuple[str, ...] = (
    "second",
    "minute",
    "hour",
    "day",
    "week",
    "month",
    "quarter",
    "year",
)
_FIXED = {unit: timedelta(**{unit + "s": 1}) for unit in GRANULARITIES[:5]}  # second .. week
_MONTHS = {"month": 1, "quarter": 3, "year": 12}
_SHIFT = {"this": 0, "last": -1, "next": 1}
_DAY_WORDS = {"today": "this", "yesterday": "last", "tomorrow": "next"}
_EXAMPLES = (
    '"2024-05-01", ["2024-01-01", "2024-03-31"], ["2024-01-01T10:00:00", "2024-01-02 18:30:00"], '
    '"today", "yesterday", "tomorrow", "this week", "last month", "next quarter", "last year", '
    '"last 7 days", "next 3 months", "from 7 days ago to now", "from 2024-01-01 to today"'
)


class DateRangeError(AiserError, ValueError):
    """A dateRange, compareDateRange or granularity that cannot be understood."""


def _fail(value: object, why: str = "unsupported dateRange") -> DateRangeError:
    return DateRangeError(f"{why}: {value!r}. Accepted forms include {_EXAMPLES}.")


def check_granularity(name: str) -> str:
    """Return ``name`` lower-cased if it is one of :data:`GRANULARITIES`, else raise."""
    key = name.strip().lower() if isinstance(name, str) else name
    if key not in GRANULARITIES:
        raise DateRangeError(f"unknown granularity {name!r}; valid: {', '.join(GRANULARITIES)}")
    return key


def _unit(word: str) -> str | None:
    """``days`` / ``day`` -> ``day``; None when it is no granularity."""
    word = word[:-1] if word.endswith("s") else word
    return word if word in GRANULARITIES else None


def _count(word: str) -> int | None:
    return int(word) if word.isdecimal() and int(word) > 0 else None


def _add(dt: datetime, n: int, unit: str) -> datetime:
    """Shift ``dt`` by ``n`` units; month arithmetic clamps the day (Jan 31 + 1 month = Feb 29)."""
    if unit in _FIXED:
        return dt + n * _FIXED[unit]
    year, month0 = divmod(dt.year * 12 + dt.month - 1 + n * _MONTHS[unit], 12)
    day = min(dt.day, calendar.monthrange(year, month0 + 1)[1])
    return dt.replace(year=year, month=month0 + 1, day=day)


def _floor(dt: datetime, unit: str) -> datetime:
    """Start of the ``unit`` containing ``dt`` (ISO weeks, calendar quarters)."""
    if unit == "second":
        return dt.replace(microsecond=0)
    if unit == "minute":
        return dt.replace(second=0, microsecond=0)
    if unit == "hour":
        return dt.replace(minute=0, second=0, microsecond=0)
    day = dt.replace(hour=0, minute=0, second=0, microsecond=0)
    if unit == "day":
        return day
    if unit == "week":
        return day - timedelta(days=day.weekday())
    if unit == "month":
        return day.replace(day=1)
    if unit == "quarter":
        return day.replace(month=(day.month - 1) // 3 * 3 + 1, day=1)
    return day.replace(month=1, day=1)


def _zone(timezone: str) -> ZoneInfo:
    try:
        return ZoneInfo(timezone)
    except (KeyError, ValueError, TypeError) as exc:  # ZoneInfoNotFoundError is a KeyError
        raise DateRangeError(f"unknown timezone {timezone!r}") from exc


def _instant(text: str, tz: ZoneInfo) -> tuple[datetime, bool] | None:
    """Parse ``YYYY-MM-DD[(T| )HH:MM[:SS[.fff]]][Z|±HH:MM]``; return (wall-clock, has_time)."""
    s = text.strip()
    digits = s[:4] + s[5:7] + s[8:10]
    if (
        s[4:5] != "-"
        or s[7:8] != "-"
        or not (len(digits) == 8 and digits.isascii() and digits.isdigit())
    ):
        return None
    if len(s) > 10 and s[10] not in "Tt ":
        return None
    if s[-1:] in ("Z", "z"):
        s = s[:-1] + "+00:00"
    try:
        dt = datetime.fromisoformat(s)
    except ValueError:
        return None
    if dt.tzinfo is not None:
        dt = dt.astimezone(tz).replace(tzinfo=None)
    # Cube keeps milliseconds (moment.js): a microsecond part is cut, not rounded.
    return dt.replace(microsecond=dt.microsecond // 1000 * 1000), len(s) > 10


def instant(value: str, *, timezone: str = "UTC") -> datetime | None:
    """An absolute date or timestamp as Cube's filters read one value: a date is its
    midnight, a timestamp that instant (offsets converted into `timezone`, milliseconds
    kept); None for anything else (a relative form such as ``last week``)."""
    parsed = _instant(value, _zone(timezone)) if isinstance(value, str) else None
    return parsed[0] if parsed else None


def _endpoint(words: list[str], now: datetime, tz: ZoneInfo) -> datetime | None:
    """One side of ``from X to Y``: a date, now/today/yesterday/tomorrow, N units ago/from now."""
    low = [w.lower() for w in words]
    if low in (["now"], ["today"]):
        return now
    if len(low) == 1 and low[0] in _DAY_WORDS:
        return _add(now, _SHIFT[_DAY_WORDS[low[0]]], "day")
    n, unit = (_count(low[0]), _unit(low[1])) if len(low) >= 3 else (None, None)
    if n and unit and low[2:] == ["ago"]:
        return _add(now, -n, unit)
    if n and unit and low[2:] == ["from", "now"]:
        return _add(now, n, unit)
    parsed = _instant(" ".join(words), tz)
    return parsed[0] if parsed else None


def _relative(value: str, now: datetime, tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """Resolve one dateRange string, or None when the form is not recognised."""
    words = value.split()
    low = [w.lower() for w in words]
    if len(low) == 1 and low[0] in _DAY_WORDS:
        low = [_DAY_WORDS[low[0]], "day"]
    if len(low) == 2 and low[0] in _SHIFT and (unit := _unit(low[1])):
        start = _add(_floor(now, unit), _SHIFT[low[0]], unit)
        return start, _add(start, 1, unit)
    if len(low) == 3 and low[0] in ("last", "next"):
        n, unit = _count(low[1]), _unit(low[2])
        if not (n and unit):
            return None
        base = _floor(now, unit)
        if low[0] == "last":
            return _add(base, -n, unit), base
        return _add(base, 1, unit), _add(base, n + 1, unit)
    if low[:1] == ["from"] and "to" in low:
        cut = low.index("to")
        start, end = _endpoint(words[1:cut], now, tz), _endpoint(words[cut + 1 :], now, tz)
        if start is None or end is None:
            return None
        # Like Cube: both ends snap to the day, or to the finest of hour/minute/second mentioned.
        unit = next((u for u in ("second", "minute", "hour") if u in value.lower()), "day")
        return _floor(start, unit), _add(_floor(end, unit), 1, unit)
    parsed = _instant(value, tz)
    if parsed:  # a single date (or timestamp) means that whole day
        start = _floor(parsed[0], "day")
        return start, _add(start, 1, "day")
    return None


def _pair(value: Sequence[str], tz: ZoneInfo) -> tuple[datetime, datetime] | None:
    """``[start, end]``: the end date is inclusive (a whole day, or the instant plus 1 ms)."""
    first, second = _instant(value[0], tz), _instant(value[1], tz)
    if first is None or second is None:
        return None
    end, has_time = second
    return first[0], end + (timedelta(milliseconds=1) if has_time else timedelta(days=1))


def date_range(
    value: str | Sequence[str], *, now: datetime | None = None, timezone: str = "UTC"
) -> tuple[datetime, datetime]:
    """Resolve a Cube ``dateRange`` to a half-open ``[start, end)`` in ``timezone`` wall-clock.

    ``now`` defaults to the current time in ``timezone``; a naive ``now`` is read as wall-clock
    in ``timezone``, an aware one is converted into it.
    """
    tz = _zone(timezone)
    if now is None:
        now = datetime.now(tz).replace(tzinfo=None)
    elif now.tzinfo is not None:
        now = now.astimezone(tz).replace(tzinfo=None)
    pair = isinstance(value, Sequence) and not isinstance(value, str) and len(value) == 2
    if not isinstance(value, str) and not (pair and all(isinstance(v, str) for v in value)):
        raise _fail(value, "dateRange must be a string or a [start, end] pair of strings")
    try:
        result = _relative(value, now, tz) if isinstance(value, str) else _pair(value, tz)
    except (OverflowError, ValueError) as exc:  # beyond datetime's years 1..9999
        raise _fail(value, "dateRange outside the supported calendar") from exc
    if result is None:
        raise _fail(value)
    if result[0] >= result[1]:
        raise _fail(value, "dateRange ends before it starts")
    return result


def compare_ranges(
    values: Sequence[str | Sequence[str]], *, now: datetime | None = None, timezone: str = "UTC"
) -> list[tuple[datetime, datetime]]:
    """Resolve a Cube ``compareDateRange``: a list of dateRanges, each a string or a pair."""
    if isinstance(values, str) or not isinstance(values, Sequence) or not values:
        raise _fail(values, "compareDateRange must be a non-empty list of dateRanges")
    return [date_range(v, now=now, timezone=timezone) for v in values]
