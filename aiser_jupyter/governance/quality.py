"""Profiling a table: what its columns hold (types, nulls, distinct counts, ranges, the most
frequent values, a histogram of numbers) and which columns look like keys.

Computed by the database (one pass for the counts and ranges, one small query per column
for its distribution), so a big table is profiled where it lives.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from aiser_jupyter.semantic.layer import SemanticLayer

TOP_VALUES = 5
BINS = 10
NUMERIC = ("INT", "DECIMAL", "NUMERIC", "DOUBLE", "FLOAT", "REAL", "HUGEINT", "BIGINT")
ORDERED = (*NUMERIC, "DATE", "TIME", "VARCHAR", "TEXT", "CHAR", "STRING")


class ProfileError(AiserError):
    """A table that cannot be profiled (unknown, or no columns)."""


@dataclass
class ColumnProfile:
    name: str
    type: str
    nulls: int
    distinct: int
    min: Any = None
    max: Any = None
    top: list[tuple[Any, int]] = field(default_factory=list)
    """The most frequent values and their counts."""
    histogram: list[tuple[float, float, int]] | None = None
    """Numbers only: (low, high, count) for equal-width bins between min and max."""
    suspected_key: bool = False
    """No nulls and every value distinct: it identifies rows."""


@dataclass
class Profile:
    table: str
    connection: str
    rows: int
    columns: list[ColumnProfile]

    @property
    def suspected_keys(self) -> list[str]:
        return [c.name for c in self.columns if c.suspected_key]

    def column(self, name: str) -> ColumnProfile:
        for column in self.columns:
            if column.name == name:
                return column
        raise ProfileError(f"{self.table} has no column {name!r}")

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "column": c.name,
                    "type": c.type,
                    "nulls": c.nulls,
                    "null %": round(100 * c.nulls / self.rows, 1) if self.rows else 0.0,
                    "distinct": c.distinct,
                    "min": c.min,
                    "max": c.max,
                    "top values": ", ".join(f"{v} ({n})" for v, n in c.top),
                    "key?": c.suspected_key,
                }
                for c in self.columns
            ]
        )

    def _repr_html_(self) -> str:
        head = html.escape(f"{self.table} on {self.connection}: {self.rows:,} rows")
        keys = ", ".join(self.suspected_keys) or "none"
        return f"<b>{head}</b> · suspected keys: {html.escape(keys)}{self.frame().to_html()}"

    def __repr__(self) -> str:
        return f"<Profile {self.table}: {self.rows:,} rows, keys {self.suspected_keys}>"


def _is(type_name: str, kinds: tuple[str, ...]) -> bool:
    upper = type_name.upper()
    return any(kind in upper for kind in kinds)


def _scalars(conn: Any, select: exp.Expression) -> list[Any]:
    table = conn.engine.execute(select.sql(dialect=conn.engine.dialect))
    return [table.column(i)[0].as_py() for i in range(table.num_columns)] if table else []


def _rows(conn: Any, select: exp.Expression) -> list[tuple[Any, ...]]:
    table = conn.engine.execute(select.sql(dialect=conn.engine.dialect))
    return [tuple(row.values()) for row in table.to_pylist()] if table else []


def profile_table(
    semantic: SemanticLayer, table: str, connection: str | None = None, schema: str | None = None
) -> Profile:
    """The profile of `table` on `connection` (the current one by default)."""
    conn = semantic.connection(connection)
    listed = [
        row
        for row in conn.columns().to_pylist()
        if row["table"] == table and (schema is None or row.get("schema") == schema)
    ]
    if not listed:
        raise ProfileError(f"No table named {table!r} on {conn.name}")
    source = exp.to_table(table, db=schema, quoted=True)
    measures: list[exp.Expression] = [exp.Count(this=exp.Star())]
    for row in listed:
        column = exp.column(row["column"], quoted=True)
        measures += [
            exp.Count(this=column.copy()),
            exp.Count(this=exp.Distinct(expressions=[column.copy()])),
        ]
        if _is(row["type"], ORDERED):
            measures += [exp.Min(this=column.copy()), exp.Max(this=column.copy())]
    values = iter(_scalars(conn, exp.select(*measures).from_(source)))
    rows = int(next(values))
    columns = []
    for row in listed:
        count, distinct = int(next(values)), int(next(values))
        low, high = (next(values), next(values)) if _is(row["type"], ORDERED) else (None, None)
        column = exp.column(row["column"], quoted=True)
        top = _rows(
            conn,
            exp.select(column.copy(), exp.Count(this=exp.Star()).as_("n"))
            .from_(source.copy())
            .where(exp.Not(this=exp.Is(this=column.copy(), expression=exp.null())))
            .group_by(column.copy())
            .order_by(exp.Ordered(this=exp.column("n"), desc=True), column.copy())
            .limit(TOP_VALUES),
        )
        numeric = _is(row["type"], NUMERIC) and low is not None
        columns.append(
            ColumnProfile(
                name=row["column"],
                type=row["type"],
                nulls=rows - count,
                distinct=distinct,
                min=low,
                max=high,
                top=[(v, int(n)) for v, n in top],
                histogram=_histogram(conn, source, column, low, high) if numeric else None,
                suspected_key=rows > 0 and count == rows and distinct == rows,
            )
        )
    return Profile(table, conn.name, rows, columns)


def _histogram(conn: Any, source, column, low, high) -> list[tuple[float, float, int]]:
    """Counts in BINS equal-width bins from `low` to `high` (the last bin includes `high`)."""
    low, high = float(low), float(high)
    width = (high - low) / BINS or 1.0
    offset = exp.Sub(
        this=exp.cast(column.copy(), exp.DataType.build("double")),
        expression=exp.Literal.number(low),
    )
    bucket = exp.Least(
        this=exp.Floor(this=exp.Div(this=exp.paren(offset), expression=exp.Literal.number(width))),
        expressions=[exp.Literal.number(BINS - 1)],
    )
    counted = dict(
        _rows(
            conn,
            exp.select(bucket.as_("b"), exp.Count(this=exp.Star()))
            .from_(source.copy())
            .where(exp.Not(this=exp.Is(this=column.copy(), expression=exp.null())))
            .group_by(exp.column("b")),
        )
    )
    return [
        (low + i * width, low + (i + 1) * width, int(counted.get(i, counted.get(float(i), 0))))
        for i in range(BINS)
    ]
