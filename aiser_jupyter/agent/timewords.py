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
    periods: list[tuple[date, date, str]] = field(default_factory=list)
    """Two or more periods set side by side ("2024 vs 2023", "this quarter vs last")."""
    change: bool = False
    """The change between consecutive periods is asked for ("month over month", "growth")."""
    event: str | None = None
    """The word that says which date groups: "cancellation" in "by year of cancellation"."""
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


def _day(year: int, month: str, day: str) -> date | None:
    try:
        return date(year, MONTHS[month.rstrip(".")], int(day))
    except ValueError:
        return None


def _count(text: str) -> int:
    return int(text) if text.isdigit() else NUMBER_WORDS[text]


COMPARED = r"(?:vs\.?|versus|compared\s+(?:to|with)|against|and)"
_SHORT_CHANGE = {"mom": "month", "qoq": "quarter", "yoy": "year", "wow": "week"}


def read_time(
    question: str, today: date | None = None, values: frozenset[str] = frozenset()
) -> TimeWords:
    """Find the time phrases of `question` (any case); blank them out of ``masked``.
    `today` resolves "this quarter vs last" into two periods (default: the real today);
    `values` are words of the data, never read as time ("annual" plans)."""
    text = question.lower()
    found = TimeWords(masked=question)
    ranges: list[tuple[Any, str]] = []
    periods: list[tuple[date, date, str]] = []
    relative_pair = None

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

    for m in each(
        rf"\b(?:this|current)\s+({_UNIT})\s+{COMPARED}\s+(?:the\s+)?(?:last|previous|prior)"
        rf"(?:\s+\1|\s+one)?\b"
    ):
        current = calendar_period(today or date.today(), m[1])
        periods += [calendar_period(current[0] - timedelta(days=1), m[1]), current]
        relative_pair = m[0].strip()
    for m in each(
        rf"\b(?:between|from)\s+({_MONTH})\.?\s+(?:and|to|until|through|-)\s+({_MONTH})\.?\s+(\d{{4}})\b"
    ):
        first, last = period(f"{m[1]} {m[3]}"), period(f"{m[2]} {m[3]}")
        ranges.append(([first[0].isoformat(), last[1].isoformat()], m[0]))
    for m in each(
        rf"\b(?:from|between)\s+({_MONTH})\.?\s+(\d{{1,2}})(?:st|nd|rd|th)?\s+(?:to|and|until|-)\s+"
        rf"(?:({_MONTH})\.?\s+)?(\d{{1,2}})(?:st|nd|rd|th)?,?\s+(\d{{4}})\b"
    ):  # "from March 1 to March 7, 2025"
        year = int(m[5])
        first = _day(year, m[1], m[2])
        last = _day(year, m[3] or m[1], m[4])
        if first is None or last is None:
            found.unclear.append(f"{m[0].strip()} (no such date)")
        else:
            ranges.append(([first.isoformat(), last.isoformat()], m[0]))
    for m in each(r"\b(?:(first|second)\s+half\s+of|h([12]))\s+(\d{4})\b"):
        second = m[1] == "second" or m[2] == "2"
        year = int(m[3])
        start, end = (
            (date(year, 7, 1), date(year, 12, 31))
            if second
            else (date(year, 1, 1), date(year, 6, 30))
        )
        ranges.append(([start.isoformat(), end.isoformat()], m[0]))
    spans = (  # "2023 to 2025" is one range; "2023 and 2025" two periods to compare
        rf"\b(?:between|from)\s+({DATE})\s+(?:and|to|until|through|-)\s+({DATE})\b",
        rf"\b({DATE})\s+(?:to|until|through)\s+({DATE})\b",
    )
    for m in (m for pattern in spans for m in each(pattern)):
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
        label = relative_pair or " to ".join(
            dict.fromkeys(period_label(p) for p in sorted(periods))
        )
        ranges.append(([start.isoformat(), end.isoformat()], label))
        if len(periods) > 1:  # "2023 vs 2024": one row per period
            found.granularity = periods[0][2]
            found.periods = sorted(set(periods))
    for m in each(rf"\b(?:per|by|each|every)\s+({_UNIT})s?\s+of\s+(?:the\s+)?([a-z]+)\b"):
        found.granularity, found.event = m[1], m[2]  # "by year of cancellation"
    for m in each(rf"\b({_UNIT})[\s-]+(over|on|by)[\s-]+\1\b"):
        found.granularity = m[1]
        found.change = found.change or m[2] == "over"
    for m in each(r"\b(" + "|".join(_SHORT_CHANGE) + r")\b"):
        found.granularity, found.change = _SHORT_CHANGE[m[1]], True
    if each(r"\b(?:growth|grow|grew|grown|growing|change|changed|changes)\b"):
        found.change = True
    adjectives = [a for a in ADJECTIVES if a not in values]
    for m in each(r"\b(" + "|".join(adjectives) + r")\b" if adjectives else r"(?!)"):
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


def calendar_period(day: date, unit: str) -> tuple[date, date, str]:
    """The calendar week, month, quarter or year that holds `day`."""
    if unit == "day":
        return day, day, unit
    if unit == "week":
        start = day - timedelta(days=day.weekday())
        return start, start + timedelta(days=6), unit
    first_month = {"month": day.month, "quarter": 3 * ((day.month - 1) // 3) + 1, "year": 1}[unit]
    last_month = first_month + {"month": 0, "quarter": 2, "year": 11}[unit]
    end = date(day.year, last_month, calendar.monthrange(day.year, last_month)[1])
    return date(day.year, first_month, 1), end, unit


def period_label(p: tuple[date, date, str]) -> str:
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
