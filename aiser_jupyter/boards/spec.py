"""What a dashboard is made of: items (chart, KPI, table, text) and filters (a date range, a
dimension's values), and how a filter or a clicked chart element becomes Cube filters.

Plain data, no widgets: the live dashboard and the static HTML export both read these.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import date, datetime, timedelta
from typing import Any

from aiser_jupyter.errors import AiserError

GRANULARITIES = ("second", "minute", "hour", "day", "week", "month", "quarter", "year")
PERIODS = {"day": "D", "week": "W-SUN", "month": "M", "quarter": "Q", "year": "Y"}


class DashboardError(AiserError):
    """A dashboard item, filter or option that cannot work, and why."""


Source = Any
"""A Cube query (dict, or its JSON/YAML text), a measure name, or a Result."""


@dataclass
class Item:
    """One cell of the grid. `width` is how many grid columns it spans."""

    source: Source = None
    title: str | None = None
    width: int = 1


@dataclass
class ChartItem(Item):
    kind: str | None = None
    x: str | None = None
    y: str | list[str] | None = None
    height: int = 320


@dataclass
class KpiItem(Item):
    """A big number: the first measure of a query without dimensions."""


@dataclass
class TableItem(Item):
    rows: int = 10


@dataclass
class TextItem(Item):
    """Markdown, or a function of the (filtered) source's Result that returns markdown, so that
    texts such as insights follow the filters."""

    content: str | Callable[[Any], str] = ""


@dataclass
class DateRange:
    """Dates from `start` to `end` (both included; None: open) on a time dimension."""

    member: str
    start: date | None = None
    end: date | None = None
    title: str | None = None

    def cube_filters(self) -> list[dict[str, Any]]:
        start, end = (None if d is None else d.isoformat() for d in (self.start, self.end))
        if start and end:
            return [{"member": self.member, "operator": "inDateRange", "values": [start, end]}]
        if start:
            return [{"member": self.member, "operator": "afterOrOnDate", "values": [start]}]
        if end:  # Cube's beforeOrOnDate stops at the end day's midnight: before the next day
            after = (self.end + timedelta(days=1)).isoformat()
            return [{"member": self.member, "operator": "beforeDate", "values": [after]}]
        return []


@dataclass
class Values:
    """Some values of a dimension (none chosen: all of them); `options` are read from the data
    when not given."""

    member: str
    selected: list[Any] = field(default_factory=list)
    options: list[Any] | None = None
    title: str | None = None

    def cube_filters(self) -> list[dict[str, Any]]:
        if not self.selected:
            return []
        return [{"member": self.member, "operator": "equals", "values": list(self.selected)}]


Filter = DateRange | Values


def as_date(value: Any) -> date | None:
    if value is None or value == "":
        return None
    if isinstance(value, datetime):
        return value.date()
    if isinstance(value, date):
        return value
    try:
        return date.fromisoformat(str(value)[:10])
    except ValueError:
        raise DashboardError(f"{value!r} is not a date (expected YYYY-MM-DD)") from None


def as_item(value: Any) -> Item:
    """An item from what a user wrote: an Item, markdown text, a query dict or a Result (a query
    with measures only is a KPI card, anything else a chart)."""
    if isinstance(value, Item):
        return value
    if isinstance(value, str):
        return TextItem(content=value)
    if isinstance(value, Mapping):
        if (
            value.get("measures")
            and not value.get("dimensions")
            and not any(t.get("granularity") for t in value.get("timeDimensions", []))
        ):
            return KpiItem(source=dict(value))
        return ChartItem(source=dict(value))
    if hasattr(value, "to_arrow") and hasattr(value, "sql"):
        return ChartItem(source=value)
    raise DashboardError(
        f"a dashboard item cannot be a {type(value).__name__}: give a query dict, a Result, "
        "text, or dashboard.chart/kpi/table/text(...)"
    )


def as_filter(value: Any, member_type: Callable[[str], str]) -> Filter:
    """A filter from an object or a member name (a time dimension gives a date range)."""
    if isinstance(value, DateRange | Values):
        return value
    if isinstance(value, str):
        return DateRange(value) if member_type(value) == "time" else Values(value)
    raise DashboardError(
        f"a dashboard filter cannot be a {type(value).__name__}: give a member name, "
        "dashboard.date_range(...) or dashboard.values(...)"
    )


def query_members(query: Mapping[str, Any]) -> set[str]:
    """Every member a Cube query names (measures, dimensions, time dimensions, filters)."""
    names = {*query.get("measures", []), *query.get("dimensions", []), *query.get("segments", [])}
    names |= {t["dimension"] for t in query.get("timeDimensions", [])}

    def walk(filters: Sequence[Any]) -> None:
        for f in filters:
            if "member" in f:
                names.add(f["member"])
            for key in ("and", "or"):
                walk(f.get(key, []))

    walk(query.get("filters", []))
    return names


def with_filters(query: Mapping[str, Any], extra: Sequence[dict[str, Any]]) -> dict[str, Any]:
    """`query` with `extra` Cube filters ANDed to its own."""
    if not extra:
        return dict(query)
    return {**query, "filters": [*query.get("filters", []), *extra]}


def selection_filters(
    selection: Mapping[str, Any], member_type: Callable[[str], str | None]
) -> dict[str, dict[str, Any]]:
    """The Cube filters a clicked chart element stands for, by member: a category is an
    ``equals``, a time bucket (``orders.order_date.month``) an ``inDateRange`` over its period."""
    import pandas as pd

    filters: dict[str, dict[str, Any]] = {}
    for column, value in (selection.get("filters") or {}).items():
        if value is None:
            continue
        member, _, grain = column.rpartition(".")
        if grain in GRANULARITIES and member_type(member) == "time":
            if grain not in PERIODS:
                continue  # a point in time of a second/minute/hour: too fine to filter on
            period = pd.Timestamp(value).to_period(PERIODS[grain])
            span = [period.start_time.date().isoformat(), period.end_time.date().isoformat()]
            filters[member] = {"member": member, "operator": "inDateRange", "values": span}
        elif member_type(column) is not None:
            filters[column] = {"member": column, "operator": "equals", "values": [str(value)]}
    return filters


def interval(value: Any) -> float | None:
    """Seconds between refreshes from "5min", "30s", "1h", a number of seconds or a timedelta."""
    if value is None:
        return None
    if isinstance(value, timedelta):
        seconds = value.total_seconds()
    elif isinstance(value, int | float):
        seconds = float(value)
    else:
        import pandas as pd

        try:
            seconds = pd.Timedelta(str(value).strip()).total_seconds()
        except ValueError:
            raise DashboardError(
                f"refresh={value!r} is not a duration (say '30s', '5min' or '1h')"
            ) from None
    if seconds <= 0:
        raise DashboardError(f"refresh={value!r} must be a positive duration")
    return seconds
