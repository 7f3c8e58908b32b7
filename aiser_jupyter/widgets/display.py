"""How Session objects show: live widgets where a widget front end is attached, static
HTML everywhere else.

A widget output shows nothing where no widget manager runs (nbconvert's HTML, viewers),
so widgets are used only where one surely does: a kernel that jupyter_server started for
a notebook (JupyterLab, Notebook 7: it sets ``JPY_SESSION_NAME``) or Voila, or when
``widgets = "on"``. Charts then draw as self-contained HTML, tables as plain HTML, and an
answer's follow-ups and thumbs (buttons, live) as ``%%ask`` cells to copy. A semantic
model shows as the table of its members (``semantic.meta.summary``).
The formatters are looked up by class name, so loading the extension imports neither
pandas nor the widget libraries.
"""

from __future__ import annotations

from typing import Any


def widgets_live() -> bool:
    """``frontend.widgets_live``, imported when something is first displayed."""
    from aiser_jupyter.widgets.frontend import widgets_live as live

    return live()


def register_formatters(shell: Any) -> None:
    formatter = shell.display_formatter.mimebundle_formatter

    def result_frame(frame: Any) -> Any:
        from aiser_jupyter.sessions import get_session

        if len(frame) <= get_session().settings.display_rows or not widgets_live():
            return None  # small results read best as the plain HTML table
        from aiser_jupyter.widgets.table import ResultTable

        return ResultTable(frame)._repr_mimebundle_()

    def chart(value: Any) -> Any:
        if not widgets_live():
            return None
        from aiser_jupyter.widgets.chart import ChartWidget

        return ChartWidget(value)._repr_mimebundle_()

    def answer(value: Any) -> Any:
        if not widgets_live():
            return None  # the static HTML lists the suggestions as cells to copy
        from aiser_jupyter.sessions import get_session
        from aiser_jupyter.widgets.answer import AnswerView

        return AnswerView(value, get_session())._repr_mimebundle_()

    def model(value: Any) -> Any:
        from aiser_jupyter.semantic.meta import summary

        return {"text/html": summary(value)._repr_html_()}

    formatter.for_type_by_name("aiser_jupyter.result", "ResultFrame", result_frame)
    formatter.for_type_by_name("aiser_jupyter.agent.answer", "Answer", answer)
    formatter.for_type_by_name("aiser_jupyter.charts", "Chart", chart)
    formatter.for_type_by_name("aiser_jupyter.semantic.model", "SemanticModel", model)
