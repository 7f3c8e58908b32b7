"""A live cell's output (``%%sql --live``, ``%%query --live``): a table, and a chart when
asked, that the Live part's watch updates in place as the query re-runs.

Nothing new is displayed on a re-run: the widgets' traitlets change, and the front end
(JupyterLab, Voila) redraws from the comm message. The view is the cell's value, so ``_``
(and ``Out[n]``) is it, and its ``.df`` is always the last answer; ``-o VAR`` is set again on
each run.
"""

from __future__ import annotations

import html
import threading
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.charts import Chart
    from aiser_jupyter.live.live import Watch
    from aiser_jupyter.result import Result


class LiveResult:
    """The widgets of a live cell, kept current by `update`."""

    def __init__(
        self,
        result: Result,
        chart: Callable[[Result], Chart] | None = None,
        out: Callable[[pd.DataFrame], object] | None = None,
    ):
        import ipywidgets as w

        from aiser_jupyter.widgets.chart import ChartWidget
        from aiser_jupyter.widgets.table import ResultTable

        self.result = result
        self.watch: Watch | None = None
        self._chart, self._out = chart, out
        self._lock = threading.Lock()
        self.table = ResultTable(result)
        self.chart = ChartWidget(chart(result)) if chart is not None else None
        self.status = w.HTML(self._status())
        self.status.add_class("aiser-live-status")
        parts = [self.status, self.chart, self.table] if self.chart else [self.status, self.table]
        self.box = w.VBox(parts)
        self.box.add_class("aiser-live")
        if out is not None:
            out(result.df)

    @property
    def df(self) -> pd.DataFrame:
        """The last answer's rows."""
        return self.result.df

    def update(self, result: Result) -> None:
        """Show a new answer in place: the table, the chart, the status line, ``-o VAR``."""
        with self._lock:
            self.result = result
            if self.chart is not None and self._chart is not None:
                self.chart.update(self._chart(result))
            self.table.set_data(result)
            self.status.value = self._status()
            if self._out is not None:
                self._out(result.df)

    def stop(self) -> None:
        """No more re-runs of this cell (``%aiser live stop`` does it for every cell)."""
        if self.watch is not None:
            self.watch.stop()

    def _status(self) -> str:
        when = datetime.now().strftime("%H:%M:%S")
        rows = len(self.result.df) if self.result is not None else 0
        return (
            f'<span class="aiser-live-dot">●</span> live · {rows:,} rows · '
            f"updated {html.escape(when)}"
        )

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The widgets where a widget front end runs; elsewhere the rows as they are now."""
        from aiser_jupyter.widgets.frontend import widgets_live

        if widgets_live():
            return self.box._repr_mimebundle_(**kwargs)
        return {
            "text/plain": f"live result ({len(self.df):,} rows)\n{self.df!r}",
            "text/html": self.df.head(50).to_html(),
        }

    def __repr__(self) -> str:
        runs = self.watch.runs if self.watch else 0
        return f"<LiveResult: {len(self.df):,} rows, {runs} re-runs>"


def live_cell(
    live: Any,
    key: str,
    run: Callable[[], Result],
    reads: str,
    *,
    every: Any = None,
    dialect: str | None = None,
    chart: Callable[[Result], Chart] | None = None,
    out: Callable[[pd.DataFrame], object] | None = None,
) -> LiveResult:
    """Run a cell's query now, show it live, and watch it (the Live part's `watch` under
    `key`, replacing the cell's previous watch): it re-runs when a table `reads` reads
    changes, and each `every`."""
    view = LiveResult(run(), chart, out)
    view.watch = live.watch(key, reads, run, view.update, every=every, dialect=dialect)
    return view
