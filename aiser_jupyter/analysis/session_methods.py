"""The insights half of Session: ``insights`` on a Result, a DataFrame or a Cube query.

A mixin like the semantic layer's and the agent's; the analysis itself lives in this
package (``analyze.py``) and is imported on first use (scipy is not cheap to import).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiser_jupyter.analysis.insight import Insights
    from aiser_jupyter.result import Result
    from aiser_jupyter.semantic.model import SemanticModel


class InsightMethods:
    """Session methods that tell what changed, what is unusual and why."""

    model: SemanticModel | None
    query: Callable[..., Result]

    def insights(
        self,
        data: Any,
        *,
        measures: str | Sequence[str] | None = None,
        by: str | Sequence[str] | None = None,
        compare: Any = None,
        horizon: int | None = None,
        additive: bool | None = None,
        top: int = 3,
        limit: int | None = 20,
    ) -> Insights:
        """Ranked insights on `data`: a Result (its annotation gives titles and formats) or
        an Answer of ``ask``, a DataFrame, or a Cube query dict (run through the semantic
        model first). `compare` is ``((start, end), (start, end))``: the periods whose
        change is explained; `additive` False averages a measure across rows instead of
        summing it (the model says which, for a semantic result)."""
        import pandas as pd

        from aiser_jupyter.analysis.analyze import analyze
        from aiser_jupyter.analysis.insight import InsightsError
        from aiser_jupyter.result import Result

        if isinstance(data, Mapping):
            data = self.query(data)
        if isinstance(getattr(data, "result", None), Result):  # an Answer of ``ask``
            data = data.result
        annotation = None
        if isinstance(data, Result):
            annotation, frame = data.annotation, data.df
        elif isinstance(data, pd.DataFrame):
            frame = data
        elif type(data).__module__.startswith("polars"):
            frame = data.to_pandas()
        else:
            raise InsightsError(
                f"Cannot draw insights from a {type(data).__name__}: expected a Result, "
                "a DataFrame or a Cube query dict"
            )
        model = self.model if annotation is not None else None
        return analyze(
            frame,
            annotation,
            model,
            measures=measures,
            by=by,
            compare=compare,
            horizon=horizon,
            additive=additive,
            top=top,
            limit=limit,
        )


def line_target(text: str | None, namespace: Mapping[str, Any]) -> Any:
    """What ``%aiser insights TARGET`` is about: a variable of the notebook (a Result, a
    DataFrame, a Cube query dict), a Cube query written as JSON, or with no TARGET the
    last output (``_``)."""
    import json

    from aiser_jupyter.analysis.insight import InsightsError

    text = (text or "").strip()
    if not text:
        if namespace.get("_") is None:
            raise InsightsError("Nothing to look at: run a query first, or name a variable")
        return namespace["_"]
    if text.isidentifier():
        if text not in namespace:
            raise InsightsError(f"No variable named {text!r} in the notebook")
        return namespace[text]
    try:
        query = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InsightsError(
            f"Expected a variable name or a Cube query as JSON, got {text[:60]!r} ({exc.msg})"
        ) from None
    if not isinstance(query, dict):
        raise InsightsError('A Cube query is a JSON object: {"measures": [...], ...}')
    return query
