"""What ``%%ask`` gives back: the answer, the data and chart behind it, and how it was found."""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiser_jupyter.agent.loop import Step, Usage

Status = Literal["answered", "clarify", "unanswerable"]
"""answered: the result holds the numbers asked for; clarify: part of the question was not
understood (or its period holds no data); unanswerable: the data holds no such thing."""

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.agent.planner import Plan
    from aiser_jupyter.charts import Chart
    from aiser_jupyter.result import Result


@dataclass
class Answer:
    """An answer to a question, with everything needed to check it and re-run it without a
    model: ``sql`` runs as it is on ``connection``; ``query`` is the semantic query, if any."""

    question: str
    text: str
    status: Status = "answered"
    """Only an answered question carries a result, a chart and numbers in `text`."""
    suggestions: list[str] = field(default_factory=list)
    """Up to three close questions the data can answer, for a question not answered."""
    sql: str | None = None
    connection: str | None = None
    query: dict[str, Any] | None = None
    result: Result | None = None
    chart: Chart | None = None
    steps: list[Step] = field(default_factory=list)
    usage: Usage = field(default_factory=Usage)
    offline: bool = False
    model: str | None = None
    notes: list[str] = field(default_factory=list)
    """What the user should know: a fallback and why, words not understood, numbers the
    model stated that the data does not hold."""
    plan: Plan | None = field(default=None, repr=False)
    messages: list[dict[str, Any]] = field(default_factory=list, repr=False)

    @property
    def df(self) -> pd.DataFrame | None:
        return None if self.result is None else self.result.df

    @property
    def seconds(self) -> float:
        return sum(step.seconds for step in self.steps)

    @property
    def cell(self) -> str | None:
        """A ``%%sql`` cell that gives the same rows, for the notebook to keep."""
        if not self.sql:
            return None
        comment = "-- " + " ".join(self.question.split())
        return f"%%sql {self.connection or ''}".rstrip() + f"\n{comment}\n{self.sql}"

    def __repr__(self) -> str:
        how = "offline" if self.offline else self.model or "model"
        return f"<Answer ({how}, {len(self.steps)} steps)> {self.text}"

    def _repr_html_(self) -> str:
        parts = [f'<div class="aiser-answer"><p>{html.escape(self.text)}</p>']
        if self.notes:
            items = "".join(f"<li>{html.escape(note)}</li>" for note in self.notes)
            parts.append(f'<ul style="opacity:.75;font-size:.9em">{items}</ul>')
        if self.chart is not None and self.chart.spec.kind != "table":
            parts.append(self.chart._repr_html_(height=320))
        if self.result is not None and self.result.rowcount:
            parts.append(self.result.df.head(self.result.display_rows)._repr_html_())
        parts.append(self._how_html())
        parts.append("</div>")
        return "".join(parts)

    def _how_html(self) -> str:
        rows = "".join(
            f"<tr><td>{html.escape(s.kind)}</td><td>{html.escape(s.name)}</td>"
            f"<td><code>{html.escape(s.detail[:300])}</code></td>"
            f"<td>{s.seconds * 1000:.0f} ms</td><td>{'✓' if s.ok else '✗'}</td></tr>"
            for s in self.steps
        )
        how = "offline planner" if self.offline else html.escape(self.model or "")
        usage = (
            f"{self.usage.calls} model calls, {self.usage.prompt_tokens:,} + "
            f"{self.usage.completion_tokens:,} tokens"
            + (f", ${self.usage.cost:.4f}" if self.usage.cost is not None else "")
            if self.usage.calls
            else "no model calls"
        )
        body = [f"<p>{how} · {usage} · {self.seconds * 1000:.0f} ms</p><table>{rows}</table>"]
        if self.query:
            body.append(f"<pre>{html.escape(json.dumps(self.query, indent=2))}</pre>")
        if self.cell:
            body.append(f"<pre>{html.escape(self.cell)}</pre>")
        return (
            f"<details><summary>How I got this ({len(self.steps)} steps)</summary>"
            f"{''.join(body)}</details>"
        )
