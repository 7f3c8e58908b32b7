"""ResultTable: a paged, sortable table whose rows stay in the kernel.

Only the page on screen crosses to the browser; sorting and paging run in DuckDB
over the result (Arrow or pandas, no copy), so a 10-million-row result pages as
quickly as a small one.
"""

from __future__ import annotations

from typing import Any

import anywidget
import duckdb
import traitlets
from sqlglot import exp

from aiser_jupyter.charts.echarts import plain
from aiser_jupyter.charts.html import static_file


def _rows_source(data: Any) -> tuple[Any, str]:
    """Something DuckDB scans without copying (Arrow table or DataFrame), and a caption."""
    if hasattr(data, "to_arrow") and hasattr(data, "caption") and callable(data.caption):
        return data.to_arrow(), data.caption()  # a Result
    caption = getattr(data, "caption", "")
    if hasattr(data, "to_arrow") and not hasattr(data, "iloc"):
        return data.to_arrow(), caption  # polars
    return data, caption if isinstance(caption, str) else ""


class ResultTable(anywidget.AnyWidget):
    """Rows of a Result, DataFrame or Arrow table, a page at a time."""

    _esm = static_file("table.js")
    _css = static_file("widgets.css")
    columns = traitlets.List().tag(sync=True)
    rows = traitlets.List().tag(sync=True)
    page = traitlets.Int(0).tag(sync=True)
    page_size = traitlets.Int(25).tag(sync=True)
    total = traitlets.Int(0).tag(sync=True)
    sort = traitlets.List(allow_none=True, default_value=None).tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)

    def __init__(self, data: Any, page_size: int = 25, **kwargs: Any):
        self._db = duckdb.connect()
        super().__init__(page_size=page_size, **kwargs)
        self.set_data(data)
        self.observe(self._show, names=["page", "page_size", "sort"])

    def set_data(self, data: Any) -> None:
        """Show other rows in place (a live query's new answer): the page and the sort stay
        where they were, within the new row count."""
        source, caption = _rows_source(data)
        self._db.register("result", source)
        described = self._db.execute("DESCRIBE result").fetchall()
        total = self._db.execute("SELECT count(*) FROM result").fetchone()[0]
        columns = [{"name": name, "type": kind} for name, kind, *_ in described]
        with self.hold_sync():
            if self.sort and self.sort[0] not in {c["name"] for c in columns}:
                self.sort = None
            self.columns, self.total, self.caption = columns, total, caption
            self.page = min(self.page, max(total - 1, 0) // max(self.page_size, 1))
            self._show()

    def page_sql(self) -> str:
        """The query for the page on screen (sorted with NULLs last, as spreadsheets do)."""
        query = exp.select("*").from_("result")
        if self.sort:
            column, order = self.sort
            if column not in {c["name"] for c in self.columns}:
                raise ValueError(f"no column {column!r} to sort by")
            key = exp.column(column, quoted=True)
            query = query.order_by(exp.Ordered(this=key, desc=order == "desc", nulls_first=False))
        offset = max(self.page, 0) * self.page_size
        return query.limit(self.page_size).offset(offset).sql("duckdb")

    def _show(self, _change: Any = None) -> None:
        self.rows = [plain(list(row)) for row in self._db.execute(self.page_sql()).fetchall()]

    def close(self) -> None:
        self._db.close()
        super().close()
