"""Dashboards: charts, KPI cards, tables and texts from semantic queries on a responsive grid,
with filters, cross-filtering, scheduled refresh, Voila publishing and one-file HTML export.

::

    import aiser_jupyter as aiser
    board = aiser.dashboard("Sales", [
        aiser.dashboard.kpi("orders.revenue"),
        {"measures": ["orders.revenue"], "dimensions": ["customers.region"]},
    ], filters=["orders.order_date", "customers.region"], refresh="5min")
    board                     # live widgets in JupyterLab and Voila
    board.to_html("sales.html")

The package is called ``boards`` so that importing it never hides the function
``aiser.dashboard``. Nothing heavy is imported until a dashboard is made.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from datetime import date
from typing import TYPE_CHECKING, Any

from aiser_jupyter.boards.spec import (
    ChartItem,
    DashboardError,
    DateRange,
    KpiItem,
    TableItem,
    TextItem,
    Values,
)

if TYPE_CHECKING:
    from aiser_jupyter.boards.board import Dashboard

__all__ = [
    "DashboardError",
    "chart",
    "dashboard",
    "date_range",
    "kpi",
    "table",
    "text",
    "values",
]


def dashboard(
    title: str,
    items: Sequence[Any],
    filters: Sequence[Any] = (),
    refresh: Any = None,
    live: bool = False,
) -> Dashboard:
    """A dashboard over the kernel's semantic model (see ``aiser.dashboard``); `live`: each
    item re-runs when a table its query reads changes."""
    from aiser_jupyter.boards.board import Dashboard
    from aiser_jupyter.sessions import get_session

    session = get_session()
    board = Dashboard(session.semantic, title, items, filters=filters, refresh=refresh)
    if live:
        board.follow(session.live)
    return board


def chart(
    source: Any,
    kind: str | None = None,
    x: str | None = None,
    y: str | list[str] | None = None,
    *,
    title: str | None = None,
    width: int = 1,
    height: int = 320,
) -> ChartItem:
    """A chart of a Cube query (dict or text) or a Result; kind/x/y as in ``aiser.chart``."""
    return ChartItem(source, title, width, kind=kind, x=x, y=y, height=height)


def kpi(source: Any, *, title: str | None = None, width: int = 1) -> KpiItem:
    """A big number: a measure name ("orders.revenue") or a query with no dimensions."""
    return KpiItem(source, title, width)


def table(source: Any, *, title: str | None = None, rows: int = 10, width: int = 1) -> TableItem:
    """The first `rows` rows of a query's result."""
    return TableItem(source, title, width, rows=rows)


def text(
    content: str | Callable[[Any], str],
    source: Any = None,
    *,
    title: str | None = None,
    width: int = 1,
) -> TextItem:
    """Markdown; or a function of `source`'s filtered Result that returns markdown (insight
    texts that follow the filters)."""
    return TextItem(source, title, width, content=content)


def date_range(
    member: str,
    start: date | str | None = None,
    end: date | str | None = None,
    *,
    title: str | None = None,
) -> DateRange:
    """A from–to date filter on a time dimension (both days included)."""
    return DateRange(member, start, end, title)  # type: ignore[arg-type]


def values(
    member: str,
    selected: Sequence[Any] = (),
    options: Sequence[Any] | None = None,
    *,
    title: str | None = None,
) -> Values:
    """A filter on a dimension's values (none selected: all); options read from the data."""
    return Values(member, list(selected), None if options is None else list(options), title)
