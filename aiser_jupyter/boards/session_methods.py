"""The dashboards' half of Session: ``dashboard``, a mixin like the semantic layer's."""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiser_jupyter.boards.board import Dashboard


class DashboardMethods:
    """Session methods for dashboards."""

    def dashboard(
        self,
        title: str,
        items: Sequence[Any],
        filters: Sequence[Any] = (),
        refresh: Any = None,
    ) -> Dashboard:
        """Charts, KPI cards, tables and texts on a responsive grid. `items`: Cube query dicts,
        Results, markdown, or ``aiser.dashboard.chart/kpi/table/text(...)``; `filters`: member
        names or ``date_range``/``values``, applied to every item whose query can take them;
        `refresh`: "5min" re-runs every item on that schedule."""
        from aiser_jupyter.boards.board import Dashboard

        return Dashboard(self, title, items, filters=filters, refresh=refresh)  # type: ignore[arg-type]
