"""A dashboard as HTML with no kernel: the static notebook output, and the one-file export
whose filters still work (``static/dashboard.js`` re-aggregates the embedded rows).

For the export each filterable item's query runs once more with the filter members as extra
dimensions and no limit; the browser keeps the rows that pass the filters and sums them back
to the item's own dimensions. That is exact for sum, count, min and max; other measures
(averages, distinct counts, ratios) and items over `max_rows` rows stay as they were, and
say so.
"""

from __future__ import annotations

import html
import uuid
from typing import TYPE_CHECKING, Any

from aiser_jupyter.boards import render
from aiser_jupyter.boards.spec import (
    ChartItem,
    DateRange,
    KpiItem,
    TableItem,
    with_filters,
)
from aiser_jupyter.charts.echarts import plain
from aiser_jupyter.charts.html import _script_json, fragment, static_file
from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from aiser_jupyter.boards.board import Dashboard, Panel

REAGGREGATE = {"sum": "sum", "count": "sum", "min": "min", "max": "max"}
REBINDABLE = {"bar", "hbar", "line", "area", "pie"}


def _status(dashboard: Dashboard) -> str:
    when = dashboard.updated.strftime("%Y-%m-%d %H:%M") if dashboard.updated else "–"
    return f'<span class="aiser-dash-status">updated {when}</span>'


def _body(panel: Panel, live: bool, first: bool) -> str:
    """A card's inside. Charts: an empty box the export's script draws into, or (static) the
    first chart with the compressed library and the others waiting for it to load."""
    if panel.error:
        return f'<div class="aiser-card-note">⚠ {html.escape(panel.error)}</div>'
    if panel.chart is None:
        return panel.html
    height = panel.item.height if isinstance(panel.item, ChartItem) else 320
    if not live and first:
        return fragment(panel.chart.option, height=height, caption=panel.chart.caption)
    element = f"aiser-chart-{uuid.uuid4().hex}"
    box = f'<div class="aiser-chart" id="{element}" style="width:100%;height:{height}px"></div>'
    box += f'<div class="aiser-caption">{html.escape(panel.chart.caption)}</div>'
    if live:
        return box
    draw = (
        f"(async()=>{{await window.aiserChartsLoading;window.aiserCharts.render("
        f'document.getElementById("{element}"),{_script_json(panel.chart.option)});}})();'
    )
    return f"{box}<script>{draw}</script>"


def _cards(dashboard: Dashboard, live: bool) -> str:
    cards = []
    first = True
    for index, panel in enumerate(dashboard.panels):
        kind = type(panel.item).__name__.removesuffix("Item").lower()
        body = _body(panel, live, first)
        first = first and panel.chart is None
        if panel.notes:
            body += f'<div class="aiser-card-note">{html.escape(" · ".join(panel.notes))}</div>'
        cards.append(render.card_html(index, panel.item.title, panel.item.width, kind, body))
    return f'<div class="aiser-dash-grid">{"".join(cards)}</div>'


def static_html(dashboard: Dashboard) -> str:
    """The dashboard as it is now, for outputs with no widget front end (nbconvert, viewers)."""
    title = f'<h2 class="aiser-dash-title">{html.escape(dashboard.title)}</h2>'
    header = f'<div class="aiser-dash-header">{title}{_status(dashboard)}</div>'
    return (
        f'{render.style_tag()}<div class="aiser-dashboard">{header}'
        f"{_cards(dashboard, live=False)}</div>"
    )


def _controls(dashboard: Dashboard) -> str:
    parts = []
    for index, f in enumerate(dashboard.filters):
        label = html.escape(f.title or dashboard.semantic.model.member(f.member).title)
        if isinstance(f, DateRange):
            start, end = (d.isoformat() if d else "" for d in (f.start, f.end))
            parts.append(
                f'<label class="aiser-filter-date">{label} '
                f'<input type="date" data-filter="{index}" data-edge="start" value="{start}"> to '
                f'<input type="date" data-filter="{index}" data-edge="end" value="{end}"></label>'
            )
        else:
            chosen = {str(v) for v in f.selected}
            options = "".join(
                f'<option value="{html.escape(str(o))}"'
                f"{' selected' if str(o) in chosen else ''}>{html.escape(str(o))}</option>"
                for o in f.options or []
            )
            size = min(len(f.options or []), 5) or 1
            parts.append(
                f'<label class="aiser-filter-values">{label} '
                f'<select multiple size="{size}" data-filter="{index}">{options}</select></label>'
            )
    return f'<div class="aiser-dash-filters">{"".join(parts)}</div>'


def _filters_data(dashboard: Dashboard) -> list[dict[str, Any]]:
    data = []
    for f in dashboard.filters:
        if isinstance(f, DateRange):
            dates = [d.isoformat() if d else "" for d in (f.start, f.end)]
            data.append({"kind": "date", "member": f.member, "start": dates[0], "end": dates[1]})
        else:
            data.append({"kind": "values", "member": f.member, "selected": plain(f.selected)})
    return data


def _live_data(dashboard: Dashboard, index: int, max_rows: int) -> tuple[Any, str]:
    """The rows and recipe the browser re-filters item `index` with, or None and why not."""
    panel, query = dashboard.panels[index], dashboard.queries[index]
    item = panel.item
    members = [f.member for f in dashboard.filters if dashboard.applies(index, f.member)]
    if query is None:
        return None, "fixed in this file" if dashboard.filters and item.source is not None else ""
    if not members or panel.result is None or panel.error:
        return None, ""
    if isinstance(item, ChartItem) and (
        panel.chart is None or panel.chart.spec.kind not in REBINDABLE or panel.chart.notes
    ):
        return None, "filters in this file do not reach this chart"
    if not isinstance(item, ChartItem | KpiItem | TableItem):
        return None, "fixed in this file"
    model = dashboard.semantic.model
    measures = {m: REAGGREGATE.get(model.member(m).type) for m in query.get("measures", [])}
    if not all(measures.values()):
        return None, "fixed in this file: its measures cannot be re-added in the browser"
    base = panel.result.to_arrow().column_names
    dims = [c for c in base if c not in measures]
    fixed = [c for i, chosen in dashboard.cross.items() if i != index for c in chosen.values()]
    expanded = with_filters(query, [c for c in fixed if dashboard.applies(index, c["member"])])
    extra = [m for m in members if m not in query.get("dimensions", [])]
    expanded = {**expanded, "dimensions": [*query.get("dimensions", []), *extra]}
    expanded["limit"] = max_rows + 1
    expanded.pop("order", None)
    expanded.pop("offset", None)
    try:
        rows = dashboard.semantic.query(expanded).to_arrow()
    except AiserError as exc:
        return None, f"fixed in this file ({exc})"
    if rows.num_rows > max_rows:
        return None, f"fixed in this file: over {max_rows:,} rows to embed"
    live: dict[str, Any] = {
        "columns": rows.column_names,
        "rows": plain([list(r.values()) for r in rows.to_pylist()]),
        "dims": dims,
        "shown": base,
        "measures": measures,
        "filterColumns": {
            str(i): f.member
            for i, f in enumerate(dashboard.filters)
            if dashboard.applies(index, f.member)
        },
        "order": _order(query),
        "limit": query.get("limit"),
        "formats": {c: fmt for c in base if (fmt := render.column_format(panel.result, c))},
    }
    if isinstance(item, ChartItem):
        spec = panel.chart.spec
        names = {m: render.column_title(panel.result, m) for m in spec.y}
        live.update(kind=spec.kind, x=spec.x, y=list(spec.y), series=spec.series, names=names)
    else:
        live["kind"] = "kpi" if isinstance(item, KpiItem) else "table"
        if isinstance(item, TableItem):
            live["limit"] = min(item.rows, query.get("limit") or item.rows)
    return live, ""


def _order(query: dict[str, Any]) -> list[list[Any]]:
    order = query.get("order") or {}
    pairs = order.items() if isinstance(order, dict) else order
    return [[member, direction == "desc"] for member, direction in pairs]


def export_html(dashboard: Dashboard, max_rows: int = 20_000) -> str:
    """One HTML document: ECharts, the rows and the filtering script inlined; no network."""
    items = []
    for index, panel in enumerate(dashboard.panels):
        live, note = _live_data(dashboard, index, max_rows)
        option = panel.chart.option if panel.chart is not None else None
        items.append({"option": option, "live": live, "note": note})
    data = {"title": dashboard.title, "filters": _filters_data(dashboard), "items": items}
    library = (
        static_file("standalone.js").read_text(encoding="utf-8").replace("</script", "<\\/script")
    )
    script = render.static_text("dashboard.js")
    title = html.escape(dashboard.title)
    header = f'<div class="aiser-dash-header"><h2 class="aiser-dash-title">{title}</h2>'
    return (
        '<!doctype html>\n<html><head><meta charset="utf-8">'
        f'<title>{title}</title><meta name="viewport" content="width=device-width,initial-scale=1">'
        f"{render.style_tag()}</head><body>"
        f'<div class="aiser-dashboard" id="aiser-dashboard">{header}{_status(dashboard)}</div>'
        f"{_controls(dashboard)}{_cards(dashboard, live=True)}</div>"
        f"<script>{library}</script>"
        f'<script type="application/json" id="aiser-dashboard-data">{_script_json(data)}</script>'
        f"<script>{script}</script></body></html>\n"
    )
