"""What an analysis found: small structured objects, ranked, readable by people and models."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    import pandas as pd

KINDS = (
    "anomaly",
    "trend",
    "seasonality",
    "forecast",
    "contribution",
    "movers",
    "concentration",
    "outlier",
)
COLORS = {
    "anomaly": "#d9480f",
    "outlier": "#d9480f",
    "trend": "#1971c2",
    "seasonality": "#2f9e44",
    "forecast": "#6741d9",
    "contribution": "#c2255c",
    "movers": "#c2255c",
    "concentration": "#5c940d",
}


class InsightsError(AiserError):
    """Data that insights cannot be drawn from (no measure, an unknown column, a bad period)."""


@dataclass
class Insight:
    """One finding: its kind, the members it is about, its numbers, and one sentence."""

    kind: str
    text: str
    score: float
    """How much it matters, 0 to 1: insights are ranked by it."""
    measure: str
    """The measure's column (a semantic member such as ``orders.revenue``)."""
    members: tuple[str, ...] = ()
    """The columns it concerns besides the measure (time and dimension members)."""
    where: dict[str, Any] = field(default_factory=dict)
    """Which values it is about, e.g. ``{"customers.region": "West"}`` or a date."""
    numbers: dict[str, Any] = field(default_factory=dict)
    data: pd.DataFrame | None = field(default=None, repr=False)
    """The rows behind it (the forecast, each member's change), to chart."""

    def __post_init__(self) -> None:
        self.score = float(min(max(self.score, 0.0), 1.0))

    def __str__(self) -> str:
        return self.text


class Insights(list):
    """Insights, most important first; shown as a list, readable as compact text."""

    def _repr_html_(self) -> str:
        if not self:
            return "<p><em>No insights: nothing stood out.</em></p>"
        items = []
        for insight in self:
            color = COLORS.get(insight.kind, "#495057")
            badge = (
                f'<span style="display:inline-block;min-width:7em;color:{color};'
                f'font-weight:600">{html.escape(insight.kind)}</span>'
            )
            meter = f'<span style="opacity:.6;font-size:.85em"> · {insight.score:.2f}</span>'
            items.append(f"<li>{badge}{html.escape(insight.text)}{meter}</li>")
        return '<ol class="aiser-insights" style="line-height:1.6">' + "".join(items) + "</ol>"

    def __repr__(self) -> str:
        return insights_text(self, limit=len(self)) or "No insights: nothing stood out."

    def frame(self) -> pd.DataFrame:
        """One row per insight: kind, score, measure, members, where and text."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "kind": i.kind,
                    "score": i.score,
                    "measure": i.measure,
                    "members": ", ".join(i.members),
                    "where": i.where,
                    "text": i.text,
                }
                for i in self
            ],
            columns=["kind", "score", "measure", "members", "where", "text"],
        )

    def of_kind(self, kind: str) -> Insights:
        return Insights(i for i in self if i.kind == kind)


def ranked(found: list[Insight]) -> Insights:
    """Most important first (ties keep the order they were found in)."""
    return Insights(sorted(found, key=lambda i: -i.score))


def insights_text(insights: list[Insight], limit: int = 12) -> str:
    """Numbered one-liners with kind and score, for a model's context or a log: compact."""
    lines = [
        f"{n}. [{i.kind} {i.score:.2f}] {i.text}" for n, i in enumerate(insights[:limit], start=1)
    ]
    if len(insights) > limit:
        lines.append(f"({len(insights) - limit} more, less important)")
    return "\n".join(lines)


def percent(fraction: float, digits: int = 1) -> str:
    """0.123 → "+12.3%": changes always carry their sign."""
    return f"{fraction * 100:+.{digits}f}%"
