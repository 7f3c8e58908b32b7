"""A dashboard's state: its items' queries, the filters, cross-filters from chart clicks, and
the results they give; re-run on a filter change, a click, or a schedule.

Every filter reaches every item whose query can take it (the semantic layer joins the
member in); a click on one chart filters all the others.
"""

from __future__ import annotations

import threading
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiser_jupyter.boards.spec import (
    ChartItem,
    DashboardError,
    DateRange,
    Filter,
    Item,
    KpiItem,
    TableItem,
    TextItem,
    as_date,
    as_filter,
    as_item,
    interval,
    query_members,
    selection_filters,
    with_filters,
)
from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from aiser_jupyter.charts import Chart
    from aiser_jupyter.live.live import Live, Watch
    from aiser_jupyter.result import Result
    from aiser_jupyter.semantic.layer import SemanticLayer


@dataclass
class Panel:
    """What an item shows now: the query that ran, its Result, and the chart or HTML body."""

    item: Item
    query: dict[str, Any] | None = None
    result: Result | None = None
    chart: Chart | None = None
    html: str = ""
    error: str | None = None
    notes: list[str] = field(default_factory=list)


class Dashboard:
    """Charts, KPI cards, tables and texts on a responsive grid, with filters and
    cross-filtering; shows as live widgets (JupyterLab, Voila) or static HTML, and exports
    to one offline HTML file (``to_html``)."""

    def __init__(
        self,
        semantic: SemanticLayer,
        title: str,
        items: Sequence[Any],
        filters: Sequence[Any] = (),
        refresh: Any = None,
    ):
        if semantic.model is None and any(isinstance(i, Mapping) for i in items):
            raise DashboardError("a dashboard of queries needs a semantic model: aiser.model(PATH)")
        self.semantic = semantic
        self.title = title
        self.items = [as_item(i) for i in items]
        self.filters: list[Filter] = [as_filter(f, self.member_type) for f in filters]
        self.cross: dict[int, dict[str, dict[str, Any]]] = {}
        self.updated: datetime | None = None
        self.queries = [self._base_query(item) for item in self.items]
        self._applies: dict[tuple[int, str], bool] = {}
        self._listeners: list[Callable[[set[int]], None]] = []
        self._lock = threading.Lock()
        self._timer: Any = None
        self._widget: Any = None
        self._watches: list[Watch] = []
        self.interval = interval(refresh)
        for f in self.filters:
            self._check_filter(f)
        self.panels = [Panel(item) for item in self.items]
        self.run()
        if self.interval:
            self.start()

    # -- queries and filters -------------------------------------------------------

    def member_type(self, member: str) -> str | None:
        """The type of a model member ("time", "string", …), None when it is not one."""
        if self.semantic.model is None:
            return None
        try:
            return self.semantic.model.member(member).type
        except AiserError:
            return None

    def _base_query(self, item: Item) -> dict[str, Any] | None:
        source = item.source
        if source is None:
            return None
        if isinstance(source, Mapping):
            return dict(source)
        if isinstance(source, str):
            if self.member_type(source) is not None and isinstance(item, KpiItem):
                return {"measures": [source]}
            from aiser_jupyter.semantic.runner import parse_text

            return parse_text(source)
        return dict(source.query) if getattr(source, "query", None) else None

    def _check_filter(self, f: Filter) -> None:
        kind = self.member_type(f.member)
        if kind is None:
            raise DashboardError(f"filter on {f.member!r}: not a member of the semantic model")
        if isinstance(f, DateRange):
            if kind != "time":
                raise DashboardError(f"a date range needs a time dimension; {f.member} is {kind}")
            f.start, f.end = as_date(f.start), as_date(f.end)
        elif f.options is None:
            result = self.semantic.query({"dimensions": [f.member], "order": {f.member: "asc"}})
            f.options = [v for v in result.to_arrow().column(0).to_pylist() if v is not None]

    def applies(self, index: int, member: str) -> bool:
        """Whether a filter on `member` reaches item `index`: its query names the member, or the
        model can join the member in (the query compiles with it)."""
        query = self.queries[index]
        if query is None:
            return False
        key = (index, member)
        if key not in self._applies:
            probe = with_filters(query, [{"member": member, "operator": "set"}])
            try:
                self.semantic.query_sql(probe)
                self._applies[key] = True
            except AiserError:
                self._applies[key] = member in query_members(query)
        return self._applies[key]

    def filters_for(self, index: int) -> list[dict[str, Any]]:
        """The Cube filters item `index` runs with: the dashboard's and other charts' clicks."""
        extra = [c for f in self.filters if self.applies(index, f.member) for c in f.cube_filters()]
        for source, chosen in self.cross.items():
            if source != index:
                extra += [c for m, c in chosen.items() if self.applies(index, m)]
        return extra

    def filter(self, member: str) -> Filter:
        for f in self.filters:
            if f.member == member:
                return f
        raise DashboardError(f"this dashboard has no filter on {member!r}")

    def set_filter(self, member: str, value: Any) -> None:
        """Change a filter and re-run what it reaches: a (start, end) pair for a date range
        (None for an open end), a list of values (empty: all) for a dimension."""
        f = self.filter(member)
        if isinstance(f, DateRange):
            start, end = value if value is not None else (None, None)
            f.start, f.end = as_date(start), as_date(end)
        else:
            values = [] if value is None else [value] if isinstance(value, str) else list(value)
            known = {str(o) for o in f.options or []}
            unknown = [v for v in values if str(v) not in known]
            if unknown:
                raise DashboardError(f"{member} has no value {unknown[0]!r}")
            f.selected = values
        self.run({i for i in range(len(self.items)) if self.applies(i, member)})

    def select(self, index: int, selection: Mapping[str, Any] | None) -> None:
        """Cross-filter: a click on chart `index` (a ChartWidget selection) filters the other
        items; the same click again, or None, clears it."""
        chosen = selection_filters(selection or {}, self.member_type)
        if not chosen or self.cross.get(index) == chosen:
            self.cross.pop(index, None)
        else:
            self.cross[index] = chosen
        self.run(set(range(len(self.items))) - {index})

    def clear_selection(self) -> None:
        if self.cross:
            self.cross.clear()
            self.run()

    # -- running -------------------------------------------------------------------

    def run(self, indices: set[int] | None = None) -> None:
        """Re-run the items (all, or `indices`) with the current filters, then tell the views."""
        chosen = set(range(len(self.items))) if indices is None else indices
        with self._lock:
            for index in sorted(chosen):
                self.panels[index] = self._run_item(index)
            self.updated = datetime.now()
        for listener in list(self._listeners):
            listener(chosen)

    def on_update(self, listener: Callable[[set[int]], None]) -> None:
        """Call `listener(indices)` after items were re-run (the widgets redraw them)."""
        self._listeners.append(listener)

    def _run_item(self, index: int) -> Panel:
        item, query = self.items[index], self.queries[index]
        panel = Panel(item)
        try:
            if query is not None:
                panel.query = with_filters(query, self.filters_for(index))
                # A live board reads the raw tables: a rollup lags behind the rows.
                panel.result = self.semantic.query(panel.query, rollups=not self._watches)
            elif item.source is not None:
                panel.result = item.source
                if self.filters or self.cross:
                    panel.notes.append("not filtered: made from SQL, not a semantic query")
            self._show(panel)
        except AiserError as exc:
            panel.error = str(exc)
        return panel

    def _show(self, panel: Panel) -> None:
        from aiser_jupyter.boards import render

        item, result = panel.item, panel.result
        if isinstance(item, TextItem):
            content = item.content(result) if callable(item.content) else item.content
            panel.html = render.text_html(content)
        elif isinstance(item, KpiItem):
            measure = result.to_arrow().column_names[0]
            rows = result.to_arrow().column(0).to_pylist()
            panel.html = render.kpi_html(
                rows[0] if rows else None, render.column_format(result, measure)
            )
        elif isinstance(item, TableItem):
            frame = result.df.head(item.rows)
            titles = {c: render.column_title(result, c) for c in frame.columns}
            formats = {c: render.column_format(result, c) for c in frame.columns}
            panel.html = render.table_html(frame, titles, formats)
        elif isinstance(item, ChartItem):
            from aiser_jupyter.charts import chart

            panel.chart = chart(result, kind=item.kind, x=item.x, y=item.y)

    # -- schedule --------------------------------------------------------------------

    def start(self, every: Any = None) -> None:
        """Re-run every item each `every` (default: the dashboard's `refresh`): on the kernel's
        event loop when there is one (so queries never overlap a cell), else on a timer thread."""
        import asyncio

        if every is not None:
            self.interval = interval(every)
        if not self.interval:
            raise DashboardError("no refresh interval: dashboard(..., refresh='5min')")
        self.stop()
        seconds = self.interval

        def tick() -> None:
            if self._timer is None:
                return
            self.run()
            arm()

        def arm() -> None:
            try:
                self._timer = asyncio.get_running_loop().call_later(seconds, tick)
            except RuntimeError:
                timer = threading.Timer(seconds, tick)
                timer.daemon = True
                self._timer = timer
                timer.start()

        arm()

    def stop(self) -> None:
        """No more scheduled refreshes (nor live re-runs)."""
        timer, self._timer = self._timer, None
        if timer is not None:
            timer.cancel()
        for watch in self._watches:
            watch.stop()
        self._watches = []

    def follow(self, live: Live) -> None:
        """Live: re-run each item when a table its query reads changes (the Live part hears
        the change; the widgets redraw what re-ran, in the browser too, over their comm)."""
        for index, query in enumerate(self.queries):
            if query is not None:
                self._watches.append(
                    live.watch(
                        f"dashboard:{id(self)}:{index}",
                        self.semantic.query_sql(query),
                        lambda index=index: self.run({index}),
                    )
                )

    # -- views -----------------------------------------------------------------------

    @property
    def widget(self) -> Any:
        """The live view (ipywidgets), made on first use."""
        if self._widget is None:
            from aiser_jupyter.boards.live import DashboardView

            self._widget = DashboardView(self)
        return self._widget

    def to_html(self, path: Any = None, max_rows: int = 20_000) -> str:
        """One self-contained HTML file (ECharts and the data inside; filters work in the
        browser for items of up to `max_rows` rows); written to `path` when given."""
        from aiser_jupyter.boards.export import export_html

        text = export_html(self, max_rows=max_rows)
        if path is not None:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        return text

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        from aiser_jupyter.boards.export import static_html
        from aiser_jupyter.widgets.frontend import widgets_live

        if widgets_live():
            return self.widget._repr_mimebundle_(**kwargs)
        return {"text/plain": repr(self), "text/html": static_html(self)}

    def __repr__(self) -> str:
        when = self.updated.strftime("%H:%M") if self.updated else "never"
        return f"<Dashboard {self.title!r}: {len(self.items)} items, updated {when}>"
