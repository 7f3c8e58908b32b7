"""What a query gives back: the rows (Arrow), what ran, where, and how long it took."""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, ClassVar

import pandas as pd

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.engines.router import RoutePlan

THREADED_CONVERSION_ROWS = 50_000
"""Below this many rows, a single-threaded Arrow→pandas conversion is faster."""


@dataclass
class Result:
    """Rows as Arrow; pandas (`df`) and polars (`to_polars()`) at the edge, converted once."""

    table: pa.Table | None
    sql: str
    connection: str
    elapsed: float
    notes: list[str] = field(default_factory=list)
    display_rows: int = 10
    query: dict[str, Any] | None = None
    """The semantic (Cube REST) query this answers, when it came from one."""
    annotation: dict[str, Any] | None = None
    """Titles, types and formats of the columns, in Cube's annotation shape."""
    total: int | None = None
    """Rows the query has without its limit, when ``total`` was asked for."""
    pre_aggregation: str | None = None
    """The rollup (``cube.name``) that answered a semantic query, if one did."""
    plan: RoutePlan | None = None
    """Where the router ran it and why, the SQL each engine got, whether it was cached."""
    _df: pd.DataFrame | None = field(default=None, repr=False)

    @property
    def df(self) -> pd.DataFrame:
        """The rows as a pandas DataFrame (empty for statements that return none)."""
        if self._df is None:
            if self.table is None:
                frame = pd.DataFrame()
            else:
                frame = self.table.to_pandas(
                    use_threads=self.table.num_rows >= THREADED_CONVERSION_ROWS
                )
            self._df = ResultFrame(frame, caption=self.caption())
        return self._df

    def to_arrow(self) -> pa.Table:
        import pyarrow as pa

        return self.table if self.table is not None else pa.table({})

    def to_polars(self) -> Any:
        import polars as pl

        return pl.from_arrow(self.to_arrow())

    @property
    def rowcount(self) -> int:
        return 0 if self.table is None else self.table.num_rows

    def __len__(self) -> int:
        return self.rowcount

    def caption(self) -> str:
        if self.table is None:
            shape = "statement done, no rows"
        else:
            rows, columns = self.table.num_rows, self.table.num_columns
            shape = f"{rows:,} {plural(rows, 'row')} × {columns} {plural(columns, 'column')}"
        parts = [shape, self.connection, format_seconds(self.elapsed), *self.notes]
        return " · ".join(parts)

    def _repr_html_(self) -> str:
        return self.df._repr_html_()

    def __repr__(self) -> str:
        return f"<Result {self.caption()}>\n{self.df.head(self.display_rows)!r}"


class ResultFrame(pd.DataFrame):
    """A plain DataFrame that also shows, under its table, what produced it.

    Anything derived from it (``df.head()``, ``df[...]``) is an ordinary DataFrame.
    """

    _metadata: ClassVar[list[str]] = ["caption"]

    def __init__(self, *args: Any, caption: str = "", **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.caption = caption

    @property
    def _constructor(self) -> type[pd.DataFrame]:
        return pd.DataFrame

    def _repr_html_(self) -> str | None:
        table = super()._repr_html_()
        if table is None:
            return None
        note = html.escape(self.caption)
        return f'{table}<div class="aiser-caption" style="opacity:.7;font-size:.85em">{note}</div>'


def plural(count: int, word: str) -> str:
    return word if count == 1 else f"{word}s"


def format_seconds(seconds: float) -> str:
    if seconds < 1:
        return f"{seconds * 1000:.1f} ms"
    return f"{seconds:.2f} s"
