"""ChartWidget: an ECharts chart that follows the theme, resizes, and reports clicks."""

from __future__ import annotations

import base64
import uuid
from collections.abc import Callable
from pathlib import Path
from typing import Any

import anywidget
import traitlets

from aiser_jupyter.charts import Chart
from aiser_jupyter.charts.html import static_file

Selection = dict[str, Any]


class ChartWidget(anywidget.AnyWidget):
    """A Chart drawn live: ``on_select`` and ``selection`` carry clicks back to Python.

    A selection names what was clicked (series, category or point) and, under
    ``filters``, the column values it stands for, ready to filter another query with.
    """

    _esm = static_file("chart.js")
    option = traitlets.Dict().tag(sync=True)
    caption = traitlets.Unicode("").tag(sync=True)
    height = traitlets.Int(360).tag(sync=True)
    selection = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)

    def __init__(self, chart: Chart, height: int = 360, **kwargs: Any):
        super().__init__(option=chart.option, caption=chart.caption, height=height, **kwargs)
        self.chart = chart
        self._on_select: list[Callable[[Selection], Any]] = []
        self._exports: dict[str, Path] = {}
        self.observe(self._selected, names="selection")
        self.on_msg(self._message)

    # The Chart's own attributes, so a widget stands in wherever a Chart is expected.
    @property
    def spec(self) -> Any:
        return self.chart.spec

    @property
    def reason(self) -> str:
        return self.chart.reason

    @property
    def notes(self) -> list[str]:
        return self.chart.notes

    def to_html(self, path: str | None = None, height: int = 480) -> str:
        return self.chart.to_html(path, height=height)

    def update(self, chart: Chart) -> None:
        """Draw another Chart in place (a live query's new answer), in one message."""
        self.chart = chart
        with self.hold_sync():
            self.caption = chart.caption
            self.option = chart.option

    def on_select(self, callback: Callable[[Selection], Any]) -> None:
        """Call `callback(selection)` each time a bar, point or slice is clicked."""
        self._on_select.append(callback)

    def save(self, path: str | Path, format: str | None = None) -> None:
        """Ask the front end for a PNG or SVG of the chart as drawn; it is written to `path`
        when the browser answers (a chart must be on screen)."""
        path = Path(path)
        kind = (format or path.suffix.lstrip(".") or "png").lower()
        if kind not in ("png", "svg"):
            raise ValueError(f"charts export as png or svg, not {kind!r}")
        token = uuid.uuid4().hex
        self._exports[token] = path
        self.send({"type": "export", "format": kind, "token": token})

    def _message(self, _widget: Any, content: dict[str, Any], _buffers: Any) -> None:
        if content.get("type") != "image" or content.get("token") not in self._exports:
            return
        path = self._exports.pop(content["token"])
        _, _, data = str(content.get("data", "")).partition(",")
        path.write_bytes(base64.b64decode(data))

    def _selected(self, change: dict[str, Any]) -> None:
        clicked = change["new"]
        if not clicked:
            return
        selection = {**clicked, "filters": self._filters(clicked)}
        for callback in self._on_select:
            callback(selection)

    def _filters(self, clicked: Selection) -> dict[str, Any]:
        """The columns and values a click stands for (x category, series, heatmap cell)."""
        spec = self.chart.spec
        value = clicked.get("value")
        filters: dict[str, Any] = {}
        if spec.kind == "heatmap" and isinstance(value, list) and len(value) == 3:
            xs = self.option["xAxis"]["data"]
            ys = self.option["yAxis"]["data"]
            return {spec.x: xs[value[0]], spec.series: ys[value[1]]}
        if spec.kind == "scatter":
            return {}  # a point stands for a row, not for a value of a column
        if spec.kind in ("line", "area") and isinstance(value, list) and value:
            filters[spec.x] = value[0]
        elif clicked.get("name") not in (None, ""):
            filters[spec.x] = clicked["name"]
        if spec.series and clicked.get("series") is not None:
            filters[spec.series] = clicked["series"]
        return {k: v for k, v in filters.items() if k is not None}

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view where a widget front end runs; the self-contained HTML always."""
        from aiser_jupyter.widgets.frontend import widgets_live

        static = {
            "text/plain": repr(self.chart.spec),
            "text/html": self.chart._repr_html_(self.height),
        }
        if not widgets_live():
            return static
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/html"] = static["text/html"]
        return bundle
