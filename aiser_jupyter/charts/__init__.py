"""Charts from query results: pick a chart from the result's shape, explain it, build ECharts.

``chart(result)`` looks at the columns (times, measures, categories; titles and formats
from a semantic result's annotation), chooses a kind with a one-line reason, and builds
an ECharts option as plain JSON, cutting big results down before they leave the kernel.
Everything is overridable: ``chart(result, kind="bar", x="region", y="revenue")``.
"""

from __future__ import annotations

import json
import os
from dataclasses import dataclass, field
from typing import Any

import pandas as pd

from aiser_jupyter.charts.echarts import build_option
from aiser_jupyter.charts.recommend import KINDS, ChartSpec, recommend

__all__ = ["KINDS", "Chart", "ChartSpec", "build_option", "chart", "recommend"]


@dataclass
class Chart:
    """An ECharts option, the spec it came from, and notes on anything cut or merged."""

    option: dict[str, Any]
    spec: ChartSpec
    notes: list[str] = field(default_factory=list)

    @property
    def reason(self) -> str:
        """Why this kind of chart, in one line."""
        return self.spec.reason

    @property
    def caption(self) -> str:
        """The reason line and any notes (downsampling, merged categories), for under the chart."""
        return " · ".join([self.reason, *self.notes])

    def to_json(self) -> str:
        return json.dumps(self.option, allow_nan=False)

    def to_html(self, path: str | os.PathLike[str] | None = None, height: int = 480) -> str:
        """A standalone HTML page (ECharts inlined, no network needed); written to `path` if
        given."""
        from aiser_jupyter.charts.html import page

        title = (self.option.get("title") or {}).get("text") or f"{self.spec.kind} chart"
        text = page(self.option, title=title, height=height, caption=self.caption)
        if path is not None:
            with open(path, "w", encoding="utf-8") as file:
                file.write(text)
        return text

    def _repr_html_(self, height: int = 360) -> str:
        from aiser_jupyter.charts.html import fragment

        return fragment(self.option, height=height, caption=self.caption)


def as_frame(data: Any) -> tuple[pd.DataFrame, dict[str, Any] | None]:
    """A pandas DataFrame (and annotation) from a Result, DataFrame, Arrow or polars table."""
    if isinstance(data, pd.DataFrame):
        return data, None
    if isinstance(data, pd.Series):
        return data.to_frame(), None
    if hasattr(data, "df") and not callable(data.df):
        return data.df, getattr(data, "annotation", None)
    if hasattr(data, "to_arrow"):  # polars, without needing its pandas bridge
        return data.to_arrow().to_pandas(), None
    if hasattr(data, "to_pandas"):  # pyarrow Table / RecordBatch
        return data.to_pandas(), None
    return pd.DataFrame(data), None


def chart(
    data: Any,
    kind: str | None = None,
    x: str | None = None,
    y: str | list[str] | None = None,
    *,
    max_points: int = 2000,
) -> Chart:
    """The chart for ``data``, chosen from its shape unless ``kind``/``x``/``y`` say otherwise."""
    frame, annotation = as_frame(data)
    frame = _decimals_as_floats(frame)
    spec = recommend(frame, kind=kind, x=x, y=y, annotation=annotation)
    option, notes = build_option(frame, spec, annotation=annotation, max_points=max_points)
    return Chart(option, spec, notes)


def _decimals_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    """Exact decimals (DuckDB sums integers into DECIMAL) as floats: a chart draws numbers,
    and pandas cannot add a Decimal to a float."""
    from decimal import Decimal

    exact = [
        column
        for column in frame.columns
        if frame[column].dtype == object
        and isinstance(
            frame[column].dropna().iloc[0] if frame[column].notna().any() else None, Decimal
        )
    ]
    return frame.astype(dict.fromkeys(exact, "float64")) if exact else frame
