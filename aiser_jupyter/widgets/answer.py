"""AnswerView: an Answer drawn live, where one click does what typing would.

A question not answered offers the questions the data can answer as buttons: a click asks
it through ``Session.ask`` (as ``%%ask`` does) and shows the new answer below. An answered
question has thumbs up and down: a click is ``Session.feedback``. Used only where widgets
render (`frontend.widgets_live`); elsewhere an Answer is its static HTML.
"""

from __future__ import annotations

from typing import Any

import ipywidgets as w

from aiser_jupyter.agent.answer import FEEDBACK_SAID
from aiser_jupyter.errors import AiserError


class AnswerView(w.VBox):
    """The answer's text, chart and rows, then its follow-ups or its thumbs."""

    def __init__(self, answer: Any, session: Any):
        from aiser_jupyter.widgets.chart import ChartWidget

        self.answer, self.session = answer, session
        parts: list[w.Widget] = [w.HTML(answer._head_html())]
        if answer._drawn_chart() is not None:
            parts.append(ChartWidget(answer.chart, height=320))
        parts.append(w.HTML(answer._rows_html()))
        self.suggestions = [self._suggestion(text) for text in answer.suggestions]
        if self.suggestions:
            parts.append(w.HBox(self.suggestions, layout=w.Layout(flex_flow="row wrap")))
        self.thumbs: list[w.Button] = []
        self.said = w.Label(FEEDBACK_SAID[answer.verdict] if answer.verdict is not None else "")
        if answer.rateable:
            self.thumbs = [self._thumb(True), self._thumb(False)]
            parts.append(w.HBox([*self.thumbs, self.said]))
        parts.append(w.HTML(answer._how_html()))
        self.output = w.Output()
        """Where the answers to clicked suggestions appear."""
        super().__init__([*parts, self.output])
        self.add_class("aiser-answer")

    def _suggestion(self, text: str) -> w.Button:
        button = w.Button(description=text, tooltip=f"Ask: {text}", icon="question")
        button.layout.width = "auto"
        button.on_click(lambda _button: self.ask(text))
        return button

    def _thumb(self, good: bool) -> w.Button:
        button = w.Button(
            description="👍 Right" if good else "👎 Wrong",
            tooltip="Right: reuse this answer" if good else "Wrong: never reuse this answer",
            disabled=self.answer.verdict is not None,
        )
        button.layout.width = "auto"
        button.on_click(lambda _button: self.rate(good))
        return button

    def ask(self, question: str) -> Any:
        """Ask a suggestion as ``%%ask`` would, and show its answer below; a failure is shown
        there too (a button has nowhere else to say it)."""
        try:
            answer = self.session.ask(question)
        except AiserError as exc:
            self.output.append_stderr(f"{type(exc).__name__}: {exc}\n")
            return None
        self.output.append_display_data(answer)
        return answer

    def rate(self, good: bool) -> None:
        """Record the verdict (once: the thumbs are disabled after a click)."""
        try:
            self.session.agent.feedback(good, self.answer)
        except AiserError as exc:
            self.said.value = str(exc)
            return
        for thumb in self.thumbs:
            thumb.disabled = True
        self.said.value = FEEDBACK_SAID[good]

    def _repr_mimebundle_(self, **kwargs: Any) -> Any:
        """The live view, and the static HTML beside it for viewers without widgets."""
        bundle = super()._repr_mimebundle_(**kwargs)
        data = bundle[0] if isinstance(bundle, tuple) else bundle
        data["text/plain"], data["text/html"] = repr(self.answer), self.answer._repr_html_()
        return bundle
