"""Time in a question ("per month", "in March 2024", "last 90 days", "over time") as Cube's
granularity and ``dateRange``.

Relative ranges stay Cube's relative strings ("last 90 days"), so a saved query keeps its
meaning tomorrow; named periods become inclusive ``[start, end]`` date pairs.
"""

from __future__ import annotations

import calendar
import re
from dataclasses import dataclass, field
from datetime import date, timedelta
from typing import Any

MONTHS = {
    name: number
    for number in range(1, 13)
    for name in (calendar.month_name[number].lower(), calendar.month_abbr[number].lower())
} | {"sept": 9}
_NUMBERS = """zero one two three four five six seven eight nine ten eleven twelve thirteen
fourteen fifteen sixteen seventeen eighteen nineteen twenty"""
NUMBER_WORDS = {word: n for n, word in enumerate(_NUMBERS.split())}
UNITS = ("day", "week", "month", "quarter", "year")
_MONTH = "|".join(sorted(MONTHS, key=len, reverse=True))
_COUNT = r"\d+|" + "|".join(NUMBER_WORDS)
_UNIT = "|".join(UNITS)
DATE = (
    rf"(?:\d{{4}}-\d{{2}}-\d{{2}}|(?:{_MONTH})\.?\s+\d{{4}}|q[1-4]\s+\d{{4}}|\d{{4}}\s+q[1-4]"
    r"|(?:19|20)\d{2})"
)
ADJECTIVES = {
    "daily": "day",
    "weekly": "week",
    "monthly": "month",
    "quarterly": "quarter",
    "yearly": "year",
    "annually": "year",
    "annual": "year",
}


@dataclass
class TimeWords:
    """What the question says about time, and the question with those words blanked out."""

    masked: str
    date_range: Any = None
    range_label: str | None = None
    granularity: str | None = None
    over_time: bool = False
    unclear: list[str] = field(default_factory=list)


def period(text: str) -> tuple[date, date, str]:
    """A date, month, quarter or year as its first and last day, and its unit."""
    text = text.strip().rstrip(".")
    if re.fullmatch(r"\d{4}-\d{2}-\d{2}", text):
        day = date.fromisoformat(text)
        return day, day, "day"
    if re.fullmatch(r"\d{4}", text):
        year = int(text)
        return date(year, 1, 1), date(year, 12, 31), "year"
    quarter = re.fullmatch(r"q([1-4])\s+(\d{4})|(\d{4})\s+q([1-4])", text)
    if quarter:
        q, year = (
            (int(quarter[1]), int(quarter[2])) if quarter[1] else (int(quarter[4]), int(quarter[3]))
        )
        start = date(year, 3 * q - 2, 1)
        end = date(year, 3 * q, calendar.monthrange(year, 3 * q)[1])
        return start, end, "quarter"
    name, year_text = text.rsplit(maxsplit=1)
    month, year = MONTHS[name.rstrip(".")], int(year_text)
    return date(year, month, 1), date(year, month, calendar.monthrange(year, month)[1]), "month"


def _valid(match: re.Match[str], unclear: list[str]) -> bool:
    """Whether every date in a time phrase exists ("2024-02-30" does not; nor "last 0 days")."""
    for part in match.groups():
        if part is None:
            continue
        try:
            if re.fullmatch(DATE, part):
                period(part)
            elif (part.isdigit() or part in NUMBER_WORDS) and _count(part) == 0:
                raise ValueError(part)
        except ValueError:
            unclear.append(f"{match[0].strip()} (no such date or period)")
            return False
    return True


def _count(text: str) -> int:
    return int(text) if text.isdigit() else NUMBER_WORDS[text]


def read_time(question: str) -> TimeWords:
    """Find the time phrases of `question` (any case); blank them out of ``masked``."""
    text = question.lower()
    found = TimeWords(masked=question)
    ranges: list[tuple[Any, str]] = []
    periods: list[tuple[date, date, str]] = []

    def blank(match: re.Match[str]) -> None:
        nonlocal text
        start, end = match.span()
        text = text[:start] + " " * (end - start) + text[end:]
        found.masked = found.masked[:start] + " " * (end - start) + found.masked[end:]

    def each(pattern: str) -> list[re.Match[str]]:
        matches = list(re.finditer(pattern, text))
        for match in matches:
            blank(match)
        return [m for m in matches if _valid(m, found.unclear)]

    for m in each(rf"\b(?:between|from)\s+({DATE})\s+(?:and|to|until|through|-)\s+({DATE})\b"):
        ranges.append(([period(m[1])[0].isoformat(), period(m[2])[1].isoformat()], m[0]))
    for m in each(rf"\b(since|starting|from|after)\s+({DATE})\b"):
        first, last, _ = period(m[2])
        start = last + timedelta(days=1) if m[1] == "after" else first
        ranges.append((f"from {start.isoformat()} to today", m[0]))
    for m in each(rf"\b(?:last|past|previous)\s+({_COUNT})\s+({_UNIT})s?\b"):
        n = _count(m[1])
        ranges.append((f"last {n} {m[2]}{'s' if n != 1 else ''}", m[0]))
    for m in each(rf"\b(this|current|last|previous|past)\s+({_UNIT})\b"):
        ranges.append((f"{'this' if m[1] in ('this', 'current') else 'last'} {m[2]}", m[0]))
    for m in each(r"\b(year|month|quarter)[\s-]+to[\s-]+date\b|\b(y|q|m)td\b"):
        unit = m[1] or {"y": "year", "q": "quarter", "m": "month"}[m[2]]
        ranges.append((f"this {unit}", m[0]))
    for m in each(r"\b(today|yesterday)\b"):
        ranges.append((m[1], m[0]))
    for m in each(rf"\b(?:(?:in|during|for|on|of)\s+)?(?:the\s+)?(?:year\s+)?({DATE})\b"):
        periods.append(period(m[1]))
    if periods:
        start, end = min(p[0] for p in periods), max(p[1] for p in periods)
        label = " to ".join(dict.fromkeys(_label(p) for p in sorted(periods)))
        ranges.append(([start.isoformat(), end.isoformat()], label))
        if len(periods) > 1:  # "2023 vs 2024": one row per period
            found.granularity = periods[0][2]
    for m in each(rf"\b({_UNIT})[\s-]+(?:over|on|by)[\s-]+\1\b"):
        found.granularity = m[1]
    for m in each(r"\b(" + "|".join(ADJECTIVES) + r")\b"):
        found.granularity = ADJECTIVES[m[1]]
    for m in each(rf"\b(?:per|by|each|every|a|an|for each|in each)\s+({_UNIT})s?\b"):
        found.granularity = m[1]
    over = r"\bover\s+(?:time|the\s+(?:years|months))\b|\btrends?\b|\bhistor(?:y|ical)\b"
    if each(over + r"|\bevolution\b|\btimeline\b"):
        found.over_time = True
    if ranges:
        found.date_range, found.range_label = ranges[0]
        found.unclear += [f"{label} (one date range at a time)" for _, label in ranges[1:]]
    return found


def _label(p: tuple[date, date, str]) -> str:
    start, _, unit = p
    if unit == "year":
        return str(start.year)
    if unit == "quarter":
        return f"Q{(start.month + 2) // 3} {start.year}"
    if unit == "month":
        return f"{calendar.month_name[start.month]} {start.year}"
    return start.isoformat()


def over_time_granularity(start: date | None, end: date | None) -> str:
    """A granularity that gives a readable line over a span: days for two months, months for
    up to three years, then quarters, then years; months when the span is unknown."""
    if start is None or end is None:
        return "month"
    days = (end - start).days
    if days <= 62:
        return "day"
    if days <= 3 * 366:
        return "month"
    return "quarter" if days <= 10 * 366 else "year"
