"""The live dashboard: ipywidgets on a CSS grid that fills any width (JupyterLab, Voila).

Filter controls call ``Dashboard.set_filter``; a chart click calls ``Dashboard.select``;
each re-run redraws only the items it changed, and the header says when data was read.
"""

from __future__ import annotations

import html
from typing import TYPE_CHECKING, Any

import ipywidgets as w

from aiser_jupyter.boards import render
from aiser_jupyter.boards.spec import ChartItem, DateRange

if TYPE_CHECKING:
    from aiser_jupyter.boards.board import Dashboard, Panel

GRID = "repeat(auto-fill, minmax(min(100%, 380px), 1fr))"


class DashboardView(w.VBox):
    """The widget tree of a Dashboard; kept in step with it through ``on_update``."""

    def __init__(self, dashboard: Dashboard):
        self.dashboard = dashboard
        self.status = w.HTML(layout=w.Layout(margin="0 0 0 auto"))
        self.status.add_class("aiser-dash-status")
        title = w.HTML(f'<h2 class="aiser-dash-title">{html.escape(dashboard.title)}</h2>')
        self.chips = w.HTML()
        clear = w.Button(description="Clear selection", layout=w.Layout(width="auto"))
        clear.on_click(lambda _: dashboard.clear_selection())
        self.clear = clear
        self.bodies: list[Any] = []
        self.notes: list[w.HTML] = []
        cards = [self._card(i, panel) for i, panel in enumerate(dashboard.panels)]
        controls = [self._control(f) for f in dashboard.filters]
        header = w.HBox([w.HTML(render.style_tag()), title, self.status])
        header.layout.align_items = "baseline"
        super().__init__(
            [
                header,
                w.HBox(controls, layout=w.Layout(flex_flow="row wrap", grid_gap="8px 16px")),
                w.HBox([self.chips, clear], layout=w.Layout(align_items="center", grid_gap="8px")),
                w.GridBox(cards, layout=w.Layout(grid_template_columns=GRID, grid_gap="12px")),
            ]
        )
        self.add_class("aiser-dashboard")
        self._redraw(set(range(len(cards))))
        dashboard.on_update(self._redraw)

    def _card(self, index: int, panel: Panel) -> w.VBox:
        item = panel.item
        if isinstance(item, ChartItem) and panel.chart is not None:
            from aiser_jupyter.widgets.chart import ChartWidget

            body: Any = ChartWidget(panel.chart, height=item.height)
            body.on_select(lambda selection: self.dashboard.select(index, selection))
        else:
            body = w.HTML()
        note = w.HTML()
        note.add_class("aiser-card-note")
        self.bodies.append(body)
        self.notes.append(note)
        title = f'<div class="aiser-card-title">{html.escape(item.title or "")}</div>'
        card = w.VBox([w.HTML(title), body, note] if item.title else [body, note])
        card.add_class(f"aiser-span-{item.width}")  # a class: layouts do not reach grid items
        card.add_class("aiser-card")
        card.add_class(f"aiser-card-{type(item).__name__.removesuffix('Item').lower()}")
        return card

    def _control(self, f: Any) -> w.Widget:
        label = f.title or self.dashboard.semantic.model.member(f.member).title
        if isinstance(f, DateRange):
            start = w.DatePicker(value=f.start, description=label)
            end = w.DatePicker(value=f.end, description="to", layout=w.Layout(width="auto"))

            def dates(_: Any) -> None:
                self.dashboard.set_filter(f.member, (start.value, end.value))

            start.observe(dates, names="value")
            end.observe(dates, names="value")
            box = w.HBox([start, end])
            box.add_class("aiser-filter-date")
            return box
        picker = w.SelectMultiple(
            options=[str(o) for o in f.options or []],
            value=tuple(str(v) for v in f.selected),
            description=label,
            rows=min(len(f.options or []), 5) or 1,
        )
        picker.observe(lambda c: self.dashboard.set_filter(f.member, list(c["new"])), "value")
        picker.add_class("aiser-filter-values")
        return picker

    def _redraw(self, indices: set[int]) -> None:
        dashboard = self.dashboard
        for index in sorted(indices):
            panel, body = dashboard.panels[index], self.bodies[index]
            if panel.chart is not None and hasattr(body, "option"):
                body.chart = panel.chart
                body.caption = panel.chart.caption
                body.option = panel.chart.option
            elif not hasattr(body, "option"):
                body.value = panel.html
            problem = f"⚠ {panel.error}" if panel.error else " · ".join(panel.notes)
            self.notes[index].value = html.escape(problem)
        when = dashboard.updated.strftime("%H:%M") if dashboard.updated else "–"
        every = f" · refreshes every {_duration(dashboard.interval)}" if dashboard.interval else ""
        self.status.value = f"updated {when}{every}"
        chosen = [c for picks in dashboard.cross.values() for c in picks.values()]
        self.chips.value = " ".join(
            f'<span class="aiser-chip">{html.escape(c["member"])} = '
            f"{html.escape(' – '.join(map(str, c['values'])))}</span>"
            for c in chosen
        )
        self.clear.layout.display = None if chosen else "none"


def _duration(seconds: float) -> str:
    for unit, size in (("h", 3600), ("min", 60)):
        if seconds >= size and seconds % size == 0:
            return f"{int(seconds // size)}{unit}"
    return f"{seconds:g}s"
