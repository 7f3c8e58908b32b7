"""The insights part: what changed, what is unusual and why, in a Result, a DataFrame, an
answer or a Cube query.

``Analyst(query, model)`` runs a Cube query dict through `query` (the semantic layer's)
and reads titles and formats from `model()` (the loaded model, or None). The analysis
itself is ``analyze.py``, imported on first use (scipy is not cheap to import).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiser_jupyter.analysis.insight import Insights
    from aiser_jupyter.result import Result
    from aiser_jupyter.semantic.model import SemanticModel


class Analyst:
    """Ranked insights on data; Cube queries answered through `query`."""

    def __init__(
        self,
        query: Callable[[Mapping[str, Any]], Result],
        model: Callable[[], SemanticModel | None] = lambda: None,
    ):
        self.query = query
        self.model = model

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
        model = self.model() if annotation is not None else None
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
