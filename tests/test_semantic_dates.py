"""Cube dateRange semantics: every expected interval below is worked out by hand."""

from datetime import datetime, timezone

import pytest

from aiser_jupyter.semantic.dates import (
    GRANULARITIES,
    DateRangeError,
    check_granularity,
    compare_ranges,
    date_range,
)

NOW = datetime(2024, 5, 15, 13, 30)  # a Wednesday


def d(*parts: int) -> datetime:
    return datetime(*parts)


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("today", d(2024, 5, 15), d(2024, 5, 16)),
        ("yesterday", d(2024, 5, 14), d(2024, 5, 15)),
        ("tomorrow", d(2024, 5, 16), d(2024, 5, 17)),
        ("this week", d(2024, 5, 13), d(2024, 5, 20)),  # Monday .. next Monday
        ("last week", d(2024, 5, 6), d(2024, 5, 13)),
        ("next week", d(2024, 5, 20), d(2024, 5, 27)),
        ("this month", d(2024, 5, 1), d(2024, 6, 1)),
        ("last month", d(2024, 4, 1), d(2024, 5, 1)),
        ("next month", d(2024, 6, 1), d(2024, 7, 1)),
        ("this quarter", d(2024, 4, 1), d(2024, 7, 1)),
        ("last quarter", d(2024, 1, 1), d(2024, 4, 1)),
        ("next quarter", d(2024, 7, 1), d(2024, 10, 1)),
        ("this year", d(2024, 1, 1), d(2025, 1, 1)),
        ("last year", d(2023, 1, 1), d(2024, 1, 1)),
        ("next year", d(2025, 1, 1), d(2026, 1, 1)),
        ("this hour", d(2024, 5, 15, 13), d(2024, 5, 15, 14)),
        ("last 7 days", d(2024, 5, 8), d(2024, 5, 15)),  # today excluded
        ("last 1 day", d(2024, 5, 14), d(2024, 5, 15)),
        ("last 2 weeks", d(2024, 4, 29), d(2024, 5, 13)),
        ("last 1 week", d(2024, 5, 6), d(2024, 5, 13)),
        ("last 3 months", d(2024, 2, 1), d(2024, 5, 1)),
        ("last 3 month", d(2024, 2, 1), d(2024, 5, 1)),
        ("last 2 quarters", d(2023, 10, 1), d(2024, 4, 1)),
        ("last 2 years", d(2022, 1, 1), d(2024, 1, 1)),
        ("last 6 hours", d(2024, 5, 15, 7), d(2024, 5, 15, 13)),
        ("next 3 days", d(2024, 5, 16), d(2024, 5, 19)),
        ("next 2 weeks", d(2024, 5, 20), d(2024, 6, 3)),
        ("next 2 months", d(2024, 6, 1), d(2024, 8, 1)),
        ("next 1 quarter", d(2024, 7, 1), d(2024, 10, 1)),
        ("next 2 years", d(2025, 1, 1), d(2027, 1, 1)),
        ("Last 7 Days", d(2024, 5, 8), d(2024, 5, 15)),
        ("  THIS   month ", d(2024, 5, 1), d(2024, 6, 1)),
        ("TODAY", d(2024, 5, 15), d(2024, 5, 16)),
    ],
)
def test_relative(value: str, start: datetime, end: datetime) -> None:
    assert date_range(value, now=NOW) == (start, end)


@pytest.mark.parametrize(
    ("now", "value", "start", "end"),
    [
        (d(2024, 1, 10), "last month", d(2023, 12, 1), d(2024, 1, 1)),
        (d(2023, 12, 20), "next month", d(2024, 1, 1), d(2024, 2, 1)),
        (d(2024, 2, 1), "last quarter", d(2023, 10, 1), d(2024, 1, 1)),
        (d(2024, 3, 31, 23, 59), "this quarter", d(2024, 1, 1), d(2024, 4, 1)),
        (d(2024, 4, 1), "this quarter", d(2024, 4, 1), d(2024, 7, 1)),
        (d(2024, 1, 3), "last 7 days", d(2023, 12, 27), d(2024, 1, 3)),
        (d(2025, 1, 1), "this week", d(2024, 12, 30), d(2025, 1, 6)),  # Wed; week began in 2024
        (d(2024, 5, 19, 23, 59), "this week", d(2024, 5, 13), d(2024, 5, 20)),  # Sunday
        (d(2024, 5, 13), "this week", d(2024, 5, 13), d(2024, 5, 20)),  # Monday 00:00
        (d(2024, 5, 31), "last 3 months", d(2024, 2, 1), d(2024, 5, 1)),
        (d(2024, 3, 1), "yesterday", d(2024, 2, 29), d(2024, 3, 1)),  # leap day
    ],
)
def test_boundaries(now: datetime, value: str, start: datetime, end: datetime) -> None:
    assert date_range(value, now=now) == (start, end)


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        ("from 7 days ago to now", d(2024, 5, 8), d(2024, 5, 16)),
        ("from 2024-01-01 to today", d(2024, 1, 1), d(2024, 5, 16)),
        ("from 2024-01-01 to 2024-01-31", d(2024, 1, 1), d(2024, 2, 1)),
        ("from yesterday to tomorrow", d(2024, 5, 14), d(2024, 5, 17)),
        ("from 2 weeks ago to 1 week from now", d(2024, 5, 1), d(2024, 5, 23)),
        ("from 3 months ago to now", d(2024, 2, 15), d(2024, 5, 16)),
        ("from 1 year ago to 2 days from now", d(2023, 5, 15), d(2024, 5, 18)),
        ("From 3 Hours Ago To Now", d(2024, 5, 15, 10), d(2024, 5, 15, 14)),
        ("from 90 minutes ago to now", d(2024, 5, 15, 12), d(2024, 5, 15, 13, 31)),
    ],
)
def test_from_to(value: str, start: datetime, end: datetime) -> None:
    assert date_range(value, now=NOW) == (start, end)


def test_from_to_clamps_month_ends() -> None:
    assert date_range("from 3 months ago to now", now=d(2024, 5, 31)) == (
        d(2024, 2, 29),
        d(2024, 6, 1),
    )


@pytest.mark.parametrize(
    ("value", "start", "end"),
    [
        (["2024-01-01", "2024-03-31"], d(2024, 1, 1), d(2024, 4, 1)),
        (("2024-01-01", "2024-01-01"), d(2024, 1, 1), d(2024, 1, 2)),
        (
            ["2024-01-01T10:00:00", "2024-01-02 18:30:00"],
            d(2024, 1, 1, 10),
            d(2024, 1, 2, 18, 30, 0, 1000),
        ),
        (["2024-01-01T00:00:00.000", "2024-01-01T23:59:59.999"], d(2024, 1, 1), d(2024, 1, 2)),
        (
            ["2024-01-01T10:00", "2024-01-01T11:00"],
            d(2024, 1, 1, 10),
            d(2024, 1, 1, 11, 0, 0, 1000),
        ),
        (["2024-02-01", "2024-02-29T12:00:00"], d(2024, 2, 1), d(2024, 2, 29, 12, 0, 0, 1000)),
        ("2024-05-01", d(2024, 5, 1), d(2024, 5, 2)),
        ("2024-05-01T10:00:00", d(2024, 5, 1), d(2024, 5, 2)),  # a lone timestamp: its day
        ("2024-02-29", d(2024, 2, 29), d(2024, 3, 1)),
    ],
)
def test_absolute(value: object, start: datetime, end: datetime) -> None:
    assert date_range(value, now=NOW) == (start, end)  # type: ignore[arg-type]


def test_offsets_are_converted_into_the_timezone() -> None:
    got = date_range(["2024-01-01T00:00:00Z", "2024-01-01T12:00:00+02:00"], timezone="Asia/Tokyo")
    # 00:00 UTC is 09:00 in Tokyo; 12:00+02:00 is 10:00 UTC, 19:00 in Tokyo.
    assert got == (d(2024, 1, 1, 9), d(2024, 1, 1, 19, 0, 0, 1000))
    # naive timestamps are already wall-clock in the query timezone
    got = date_range(["2024-01-01T00:00:00", "2024-01-01"], timezone="Asia/Tokyo")
    assert got == (d(2024, 1, 1), d(2024, 1, 2))


def test_aware_now_is_converted_into_the_timezone() -> None:
    now = datetime(2024, 5, 15, 23, 30, tzinfo=timezone.utc)
    assert date_range("today", now=now, timezone="Asia/Tokyo") == (d(2024, 5, 16), d(2024, 5, 17))
    assert date_range("today", now=now) == (d(2024, 5, 15), d(2024, 5, 16))
    early = datetime(2024, 5, 15, 2, 0, tzinfo=timezone.utc)  # 22:00 on the 14th in New York
    got = date_range("yesterday", now=early, timezone="America/New_York")
    assert got == (d(2024, 5, 13), d(2024, 5, 14))
    # Tokyo's Thursday 16th 08:30 is still in the week of Monday the 13th
    assert date_range("this week", now=now, timezone="Asia/Tokyo")[0] == d(2024, 5, 13)


def test_naive_now_is_wall_clock_in_the_timezone() -> None:
    got = date_range("today", now=d(2024, 5, 15, 23, 30), timezone="Asia/Tokyo")
    assert got == (d(2024, 5, 15), d(2024, 5, 16))


def test_default_now_is_the_current_day() -> None:
    before = datetime.now(timezone.utc).replace(tzinfo=None)
    start, end = date_range("today")
    after = datetime.now(timezone.utc).replace(tzinfo=None)
    assert start.date() in (before.date(), after.date())
    assert (start.time(), end - start) == (d(2024, 1, 1).time(), d(2024, 1, 2) - d(2024, 1, 1))


@pytest.mark.parametrize(
    "value",
    [
        "last blue moons",
        ["2024-01-01"],
        ["2024-01-01", "2024-01-02", "2024-01-03"],
        "2024-13-01",
        "2023-02-29",
        "2024/01/01",
        "2024-01-01T25:00:00",
        ["2024-01-01", "nope"],
        ["2024-03-01", "2024-01-01"],  # ends before it starts
        "",
        "last 0 days",
        "last -3 days",
        "last 7 fortnights",
        "this decade",
        "from nowhere to now",
        "from 7 days ago",
        "7 days ago",
        "last ² days",
        "next 9999 years",  # beyond datetime's calendar
        "last 100000000000 days",
        ["2024-01-01", "9999-12-31"],
        42,
        None,
    ],
)
def test_garbage_is_rejected(value: object) -> None:
    with pytest.raises(DateRangeError):
        date_range(value, now=NOW)  # type: ignore[arg-type]


def test_error_message_quotes_input_and_lists_examples() -> None:
    with pytest.raises(ValueError) as info:  # DateRangeError is a ValueError
        date_range("last blue moons", now=NOW)
    message = str(info.value)
    assert "'last blue moons'" in message
    assert "last 7 days" in message and "2024-01-01" in message


def test_unknown_timezone() -> None:
    with pytest.raises(DateRangeError, match="Mars/Olympus"):
        date_range("today", now=NOW, timezone="Mars/Olympus")


def test_compare_ranges() -> None:
    got = compare_ranges([["2024-01-01", "2024-01-31"], "last month", "this week"], now=NOW)
    assert got == [
        (d(2024, 1, 1), d(2024, 2, 1)),
        (d(2024, 4, 1), d(2024, 5, 1)),
        (d(2024, 5, 13), d(2024, 5, 20)),
    ]
    now = datetime(2024, 5, 15, 23, 30, tzinfo=timezone.utc)
    assert compare_ranges(["today"], now=now, timezone="Asia/Tokyo") == [
        (d(2024, 5, 16), d(2024, 5, 17))
    ]


@pytest.mark.parametrize("values", ["last month", [], ["last month", "last blue moons"], None])
def test_compare_ranges_rejects(values: object) -> None:
    with pytest.raises(DateRangeError):
        compare_ranges(values, now=NOW)  # type: ignore[arg-type]


def test_granularities() -> None:
    assert GRANULARITIES == ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
    assert check_granularity("Day") == "day"
    assert check_granularity("QUARTER") == "quarter"
    with pytest.raises(DateRangeError, match="second, minute, hour, day, week, month"):
        check_granularity("fortnight")
    with pytest.raises(DateRangeError):
        check_granularity("days")
