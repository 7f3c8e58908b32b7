"""A ChartSpec and its rows as an ECharts option: plain JSON, small, and honest about cuts.

Everything here ends as dicts, lists, strings and numbers (no JS functions), so the option
can be saved in a notebook, sent to the front end, or rendered by any ECharts.
"""

from __future__ import annotations

import math
from datetime import date, datetime
from decimal import Decimal
from typing import Any

import numpy as np
import pandas as pd

from aiser_jupyter.charts.downsample import as_float, bin_scatter, lttb, top_n
from aiser_jupyter.charts.recommend import ChartSpec, additive, fmt, is_time

AXIS_FORMATS = ("currency", "percent")
# The parts of the axes' layout that do not depend on the chart's size: names centred
# along their axis (where ECharts keeps them inside the canvas and clear of the tick
# labels), overlapping tick labels hidden, and a line height given outright, since
# ECharts measures one from a CJK glyph that fonts without CJK draw tiny. The size-dependent
# parts (tick count, rotation, truncation) and the number formats are set in the browser
# by js/src/axes.js, from ``aiser.axisFormats``.
AXIS_STYLE = {
    "nameLocation": "middle",
    "nameTextStyle": {"lineHeight": 14},
    "axisLabel": {"hideOverlap": True, "lineHeight": 14},
}
# ECharts fits labels and names inside `outerBounds` only about as well as it estimates
# them; a few pixels there keep the last one from grazing the canvas's edge.
EDGE = 4
GRID = {"left": 8, "right": 24, "top": 40, "bottom": 8}
# Room kept under the axes for what sits at the chart's bottom edge.
BELOW = {"legend": 32, "visualMap": 56}


def plain(value: Any) -> Any:
    """JSON-ready: numpy scalars to Python, timestamps to ISO strings, NaN/inf/NA to None."""
    if isinstance(value, dict):
        return {str(k): plain(v) for k, v in value.items()}
    if isinstance(value, (list, tuple, np.ndarray)):
        return [plain(v) for v in value]
    if value is None or isinstance(value, (str, bool)):
        return value
    if isinstance(value, np.bool_):
        return bool(value)
    if isinstance(value, (int, np.integer)):
        return int(value)
    if isinstance(value, (float, np.floating, Decimal)):
        number = float(value)
        return number if math.isfinite(number) else None
    if value is pd.NaT or value is pd.NA:
        return None
    if isinstance(value, np.datetime64):
        return None if np.isnat(value) else pd.Timestamp(value).isoformat()
    if isinstance(value, (datetime, date)):
        return value.isoformat()
    return str(value)


class Labels:
    """Titles and formats of columns, from the annotation when there is one."""

    def __init__(self, annotation: dict[str, Any] | None):
        self.annotation = annotation or {}
        self.members: dict[str, dict[str, Any]] = {}
        for group in ("measures", "dimensions", "timeDimensions"):
            self.members.update(self.annotation.get(group) or {})

    def title(self, name: str | None) -> str | None:
        member = self.members.get(name or "", {})
        return member.get("title") or member.get("shortTitle") or name

    def short(self, name: str) -> str:
        member = self.members.get(name, {})
        return member.get("shortTitle") or member.get("title") or name

    def value_axis(self, measures: list[str]) -> dict[str, Any]:
        """A value axis named after its one measure."""
        axis: dict[str, Any] = {"type": "value"}
        if len(measures) == 1:
            axis["name"] = self.title(measures[0])
        return axis

    def unit(self, measures: list[str]) -> str | None:
        """The format the measures share ('currency', 'percent'), for the front end to
        write ticks and tooltips in; None when they differ or say nothing."""
        formats = {fmt(self.annotation, m) for m in measures}
        shared = formats.pop() if len(formats) == 1 else None
        return shared if shared in AXIS_FORMATS else None


def wide(frame: pd.DataFrame, spec: ChartSpec, labels: Labels) -> tuple[pd.DataFrame, list[str]]:
    """One row per category of ``spec.x``, one value column per series (named for the legend)."""
    x, ys = spec.x, spec.y
    if spec.series:
        table = frame.pivot_table(
            index=x, columns=spec.series, values=ys[0], aggfunc="sum", sort=False, observed=True
        )
        table.columns = [str(c) for c in table.columns]
        table = table.reset_index()
    else:
        table = frame[[x, *ys]]
        if table[x].duplicated().any():
            table = table.groupby(x, sort=False, observed=True, as_index=False).agg(
                {m: "sum" if additive(m, labels.annotation) else "mean" for m in ys}
            )
        table = table.rename(columns={m: labels.short(m) for m in ys})
    return table.reset_index(drop=True), [c for c in table.columns if c != x]


def category_rows(
    frame: pd.DataFrame, spec: ChartSpec, labels: Labels, notes: list[str], top: int, sort: bool
) -> tuple[pd.DataFrame, list[str]]:
    """Category rows, sorted by value when asked, cut to ``top`` (+ 'Other' when additive)."""
    table, columns = wide(frame, spec, labels)
    total = table[columns].sum(axis=1, min_count=1)
    if sort or len(table) > top:
        table = table.assign(_total=total).sort_values("_total", ascending=False, kind="stable")
        table = table.drop(columns="_total")
    if len(table) > top:
        count = len(table)
        if all(additive(m, labels.annotation) for m in spec.y):
            table = top_n(table.assign(_total=total), spec.x, "_total", top).drop(columns="_total")
            notes.append(f"top {top} of {count:,} categories, the rest as 'Other'")
        else:
            table = table.head(top)
            notes.append(f"top {top} of {count:,} categories (not additive, so no 'Other')")
    return table.reset_index(drop=True), columns


def time_values(values: pd.Series) -> pd.Series:
    return pd.to_datetime(values) if values.dtype == object else values


def line(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    x, time = spec.x, is_time(frame[spec.x])
    data = frame.assign(**{x: time_values(frame[x])}) if time else frame
    data = data.dropna(subset=[x]).sort_values(x, kind="stable")
    groups = [(labels.short(m), data, m) for m in spec.y]
    if spec.series:
        groups = [
            (str(k) if len(spec.y) == 1 else f"{k} · {labels.short(m)}", part, m)
            for k, part in data.groupby(spec.series, sort=False, observed=True)
            for m in spec.y
        ]
    numeric = time or pd.api.types.is_numeric_dtype(data[x])
    series, cut = [], []
    for name, part, measure in groups:
        xs, ys = part[x].to_numpy(), part[measure].to_numpy(dtype=float, na_value=np.nan)
        if numeric and len(xs) > max_points:
            keep = ~np.isnan(ys)
            xs, ys = xs[keep], ys[keep]
            kept = lttb(xs, ys, max_points)
            cut.append(len(xs))
            xs, ys = xs[kept], ys[kept]
        if time:
            xs = [t.isoformat() for t in pd.DatetimeIndex(xs)]
        item = {"type": "line", "name": name, "data": list(zip(xs, ys, strict=True))}
        item["showSymbol"] = len(xs) <= 100
        if spec.kind == "area":
            item.update(stack="total", areaStyle={})
        series.append(item)
    if len(cut) == 1 and len(groups) == 1:
        notes.append(f"downsampled {cut[0]:,} points to {max_points:,} (LTTB)")
    elif cut:
        notes.append(
            f"downsampled {len(cut)} of {len(groups)} series from up to {max(cut):,} points"
            f" to {max_points:,} each (LTTB)"
        )
    axis = "time" if time else "value" if numeric else "category"
    option = {
        "xAxis": {"type": axis, "name": labels.title(x)},
        "yAxis": labels.value_axis(spec.y),
        "tooltip": {"trigger": "axis"},
        "series": series,
        "aiser": {"axisFormats": {"yAxis": labels.unit(spec.y)}},
    }
    if len(series) > 1:
        option["legend"] = {"type": "scroll"}
    return option


def bar(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    horizontal = spec.kind == "hbar"
    table, columns = category_rows(frame, spec, labels, notes, top, sort=horizontal)
    names = [str(plain(v)) for v in table[spec.x]]
    categories = {"type": "category", "name": labels.title(spec.x), "data": names}
    values = labels.value_axis(spec.y)
    series = [{"type": "bar", "name": c, "data": table[c].to_numpy()} for c in columns]
    option: dict[str, Any] = {"tooltip": {"trigger": "axis"}, "series": series}
    if horizontal:
        option.update(xAxis=values, yAxis={**categories, "inverse": True})
    else:
        option.update(xAxis=categories, yAxis=values)
    option["aiser"] = {"axisFormats": {"xAxis" if horizontal else "yAxis": labels.unit(spec.y)}}
    if len(series) > 1:
        option["legend"] = {"type": "scroll"}
    return option


def pie(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    one = ChartSpec(spec.kind, spec.x, spec.y[:1])
    table, columns = category_rows(frame, one, labels, notes, top, sort=False)
    data = [
        {"name": str(plain(k)), "value": v}
        for k, v in zip(table[spec.x], table[columns[0]], strict=True)
    ]
    unit = {"currency": "${c}", "percent": "{c}%"}.get(fmt(labels.annotation, spec.y[0]) or "")
    item = {"type": "pie", "name": labels.short(spec.y[0]), "radius": ["40%", "70%"]}
    return {
        "title": {"text": labels.title(spec.y[0]), "left": "center"},
        "tooltip": {"trigger": "item", "formatter": f"{{b}}: {unit or '{c}'} ({{d}}%)"},
        "legend": {"type": "scroll", "bottom": 0},
        "series": [{**item, "data": data}],
    }


def scatter(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    data = frame[[spec.x, spec.y[0]]].dropna()
    xs, ys = data[spec.x].to_numpy(), data[spec.y[0]].to_numpy()
    if len(data) > max_points:
        cx, cy, counts = bin_scatter(xs, ys, max_points)
        sizes = 4 + 16 * np.sqrt(counts / counts.max())
        points = [
            {"value": [a, b, n], "symbolSize": round(s, 1)}
            for a, b, n, s in zip(cx, cy, counts, sizes, strict=True)
        ]
        notes.append(f"binned {len(data):,} points into {len(points):,} cells; size shows count")
    else:
        points = list(zip(as_float(xs), as_float(ys), strict=True))
    return {
        "xAxis": {**labels.value_axis([spec.x]), "scale": True},
        "yAxis": {**labels.value_axis(spec.y[:1]), "scale": True},
        "tooltip": {"trigger": "item"},
        "series": [{"type": "scatter", "name": labels.short(spec.y[0]), "data": points}],
        "aiser": {"axisFormats": {"xAxis": labels.unit([spec.x]), "yAxis": labels.unit(spec.y)}},
    }


def heatmap(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    measure = spec.y[0]
    xs = list(dict.fromkeys(frame[spec.x].map(plain).map(str)))
    ys = list(dict.fromkeys(frame[spec.series].map(plain).map(str)))
    ix, iy = {v: i for i, v in enumerate(xs)}, {v: i for i, v in enumerate(ys)}
    cells = [
        [ix[str(plain(a))], iy[str(plain(b))], v]
        for a, b, v in zip(frame[spec.x], frame[spec.series], frame[measure], strict=True)
    ]
    values = frame[measure].dropna()
    low, high = (values.min(), values.max()) if len(values) else (0, 0)
    return {
        "xAxis": {"type": "category", "name": labels.title(spec.x), "data": xs},
        "yAxis": {"type": "category", "name": labels.title(spec.series), "data": ys},
        "visualMap": dict(min=low, max=high, calculable=True, orient="horizontal", bottom=0),
        "tooltip": {"position": "top"},
        "series": [{"type": "heatmap", "name": labels.short(measure), "data": cells}],
        "aiser": {"axisFormats": {"visualMap": labels.unit([measure])}},
    }


def kpi(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    value = plain(frame[spec.y[0]].iloc[0])
    comparison = plain(frame[spec.y[1]].iloc[0]) if len(spec.y) > 1 else None
    change = (
        (value - comparison) / abs(comparison) * 100 if value is not None and comparison else None
    )
    unit = fmt(labels.annotation, spec.y[0])
    text = "–" if value is None else f"{value:,.2f}" if isinstance(value, float) else f"{value:,}"
    text = f"${text}" if unit == "currency" else f"{text}%" if unit == "percent" else text
    lines = [
        {"type": "text", "left": "center", "top": "35%", "style": {"text": text, "fontSize": 40}}
    ]
    if change is not None:
        style = {"text": f"{change:+.1f}% vs {comparison:,}", "fontSize": 16}
        lines.append({"type": "text", "left": "center", "top": "60%", "style": style})
    title = labels.title(spec.y[0])
    info = dict(value=value, comparison=comparison, change_pct=change, title=title)
    return {"title": {"text": title, "left": "center"}, "graphic": lines, "aiser": {"kpi": info}}


def table(frame, spec, labels, notes, max_points, top) -> dict[str, Any]:
    if len(frame) > max_points:
        notes.append(f"first {max_points:,} of {len(frame):,} rows")
    rows = frame.head(max_points).to_numpy(dtype=object, na_value=None)
    return {"dataset": {"dimensions": list(map(str, frame.columns)), "source": rows}}


BUILDERS = {
    "line": line, "area": line, "bar": bar, "hbar": bar, "pie": pie,
    "scatter": scatter, "heatmap": heatmap, "kpi": kpi, "table": table,
}  # fmt: skip


def build_option(
    frame: pd.DataFrame,
    spec: ChartSpec,
    *,
    annotation: dict[str, Any] | None = None,
    max_points: int = 2000,
    top: int = 25,
) -> tuple[dict[str, Any], list[str]]:
    """The ECharts option for ``spec`` over ``frame``, and notes on what was cut or merged."""
    labels, notes = Labels(annotation), []
    option = BUILDERS[spec.kind](frame, spec, labels, notes, max_points, top)
    columns = [c for c in (spec.x, *spec.y, spec.series) if c]
    formats = {c: f for c in columns if (f := fmt(annotation, c))}
    aiser = option.setdefault("aiser", {})
    aiser.update(kind=spec.kind, reason=spec.reason, notes=notes, formats=formats)
    if "axisFormats" in aiser:
        aiser["axisFormats"] = {k: v for k, v in aiser["axisFormats"].items() if v}
    if "xAxis" in option:
        lay_out_axes(option)
    return plain(option), notes


def lay_out_axes(option: dict[str, Any]) -> None:
    """The size-independent axis layout (``AXIS_STYLE``) on both axes, and narrow grid
    margins that ECharts widens to hold the labels and names inside its outerBounds: the
    canvas less a few pixels, and less the legend or colour scale at the bottom."""
    for name in ("xAxis", "yAxis"):
        axis = option[name]
        for key, value in AXIS_STYLE.items():
            axis[key] = {**value, **axis.get(key, {})} if isinstance(value, dict) else value
    below = max((room for part, room in BELOW.items() if part in option), default=0)
    bounds = {"left": EDGE, "right": EDGE, "top": EDGE, "bottom": EDGE + below}
    option["grid"] = {**GRID, "bottom": GRID["bottom"] + below, "outerBounds": bounds}
