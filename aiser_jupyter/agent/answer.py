"""What ``%%ask`` gives back: the answer, the data and chart behind it, and how it was found.

An answer not given (clarify, unanswerable) shows its text and the questions the data can
answer instead; in static HTML as ``%%ask`` cells to copy, live (widgets/answer.py) as
buttons that ask them. The user's verdict on an answered one (`Answer.feedback`) is kept
in memory: confirmed, the same question re-runs its query next time.
"""

from __future__ import annotations

import html
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Literal

from aiser_jupyter.agent.loop import Step, Usage
from aiser_jupyter.errors import AiserError

Status = Literal["answered", "clarify", "unanswerable"]
"""answered: the result holds the numbers asked for; clarify: part of the question was not
understood (or its period holds no data); unanswerable: the data holds no such thing."""
FEEDBACK_SAID = {
    True: "Thanks: asked again, this question re-runs this answer's query.",
    False: "Noted: this answer will not be reused, nor shown to a model as an example.",
}
"""What a view says once the user's verdict is kept."""

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.agent.planner import Plan
    from aiser_jupyter.charts import Chart
    from aiser_jupyter.memory import Memory
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
    episode_id: int | None = field(default=None, repr=False)
    """The memory episode that keeps this answer's query: what `feedback` marks."""
    memory: Memory | None = field(default=None, repr=False, compare=False)
    """The store that kept this answer (set by ``ask``)."""
    verdict: bool | None = None
    """The user's feedback: True right (reused next time), False wrong, None not given."""

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

    @property
    def rateable(self) -> bool:
        """Whether `feedback` can mark this answer: answered, with its query kept in memory."""
        return self.status == "answered" and self.episode_id is not None and self.memory is not None

    def feedback(self, good: bool) -> None:
        """Say whether this answer was right. Confirmed, asking the same question again runs
        its query again (no model, no planner); rejected, it is never reused, nor shown to
        a model as an example of a good answer."""
        if self.status != "answered":
            raise AiserError(f"This question was not answered ({self.status}): no feedback.")
        if self.episode_id is None or self.memory is None:
            raise AiserError("This answer kept no query in memory: nothing to confirm or reject.")
        self.memory.feedback(self.episode_id, good)
        self.verdict = good

    def __repr__(self) -> str:
        how = "offline" if self.offline else self.model or "model"
        tries = "".join(f"\n  try: {s}" for s in self.suggestions)
        return f"<Answer {self.status} ({how}, {len(self.steps)} steps)> {self.text}{tries}"

    def _repr_html_(self) -> str:
        parts = [f'<div class="aiser-answer" data-status="{self.status}">', self._head_html()]
        if (chart := self._drawn_chart()) is not None:
            parts.append(chart._repr_html_(height=320))
        parts.append(self._rows_html())
        if self.suggestions:
            cells = "".join(
                f'<li><pre style="margin:.2em 0">%%ask\n{html.escape(s)}</pre></li>'
                for s in self.suggestions
            )
            parts.append(f"<p>The data can answer (copy one into a cell):</p><ul>{cells}</ul>")
        parts.append(self._how_html())
        return "".join(parts) + "</div>"

    def _head_html(self) -> str:
        """The text (a headline when nothing was answered), then the notes."""
        text = html.escape(self.text)
        if self.status == "answered":
            head = f"<p>{text}</p>"
        else:
            head = f'<p class="aiser-headline" style="font-size:1.2em;font-weight:600">{text}</p>'
        if self.notes:
            items = "".join(f"<li>{html.escape(note)}</li>" for note in self.notes)
            head += f'<ul style="opacity:.75;font-size:.9em">{items}</ul>'
        return head

    def _drawn_chart(self) -> Chart | None:
        """The chart to draw above the rows: an answered question's, unless a mere table."""
        if self.status != "answered" or self.chart is None or self.chart.spec.kind == "table":
            return None
        return self.chart

    def _rows_html(self) -> str:
        """The first rows of an answered question's result, or nothing."""
        if self.status != "answered" or self.result is None or not self.result.rowcount:
            return ""
        return self.result.df.head(self.result.display_rows)._repr_html_()

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
