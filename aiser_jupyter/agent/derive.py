"""Numbers derived from a semantic result: a share of a total, a ratio of two measures, the
change between periods.

The planner never invents a measure. When a question needs one of these, it asks the
semantic layer for measures that exist and states a derivation; the derivation is one
SELECT over the semantic query's rows, built with sqlglot, so the SQL written back to the
notebook computes the same numbers on the raw tables and the user can read how.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa

BASE = "base"


@dataclass
class Derivation:
    """One derived column over the rows of a semantic query (the table ``base``)."""

    kind: str
    """share | ratio | change"""
    measure: str
    denominator: str | None = None
    """ratio: the measure `measure` is divided by."""
    partition: list[str] = field(default_factory=list)
    """change: the groupings compared period by period; share: none (of the whole)."""
    time: str | None = None
    """change: the time bucket column the periods are ordered by."""
    keep: dict[str, tuple[list[str], bool]] = field(default_factory=dict)
    """share of a part: column → (values, negated) of the rows asked about."""
    periods: list[str] = field(default_factory=list)
    """change between named periods: the first days of the buckets compared."""
    top: tuple[bool, int] | None = None
    """ratio: (descending, N) when the question ranks by it ("top 3 … per customer")."""

    @property
    def column(self) -> str:
        return {"share": "share", "change": "change"}.get(self.kind, "ratio")

    def select(self) -> exp.Select:
        """The derivation as a SELECT over ``base``."""
        rows = exp.select(exp.Star()).from_(exp.to_identifier(BASE), copy=False)
        measure = exp.column(self.measure, quoted=True)
        if self.kind == "ratio":
            rows.select(_alias(_divide(measure, self.denominator or ""), "ratio"), copy=False)
            if self.top is not None:
                ratio = exp.column("ratio", quoted=True)
                rows.order_by(exp.Ordered(this=ratio, desc=self.top[0]), copy=False)
                rows.limit(self.top[1], copy=False)
            return rows
        if self.kind == "share":
            return self._share(rows, measure)
        return self._change(rows, measure)

    def _share(self, rows: exp.Select, measure: exp.Column) -> exp.Select:
        """Each row's part of the whole; then only the rows asked about, if any."""
        whole = exp.Window(this=exp.Sum(this=measure.copy()))
        rows.select(_alias(_divide(measure, whole), "share"), copy=False)
        kept = [_kept(column, values, negated) for column, (values, negated) in self.keep.items()]
        if not kept:
            return rows
        return exp.select(exp.Star()).from_(rows.subquery(BASE), copy=False).where(*kept)

    def _change(self, rows: exp.Select, measure: exp.Column) -> exp.Select:
        """Each period against the one before it (within the same groups), in value and %."""
        before = exp.Window(
            this=exp.func("LAG", measure.copy()),
            partition_by=[exp.column(c, quoted=True) for c in self.partition] or None,
            order=exp.Order(expressions=[exp.Ordered(this=exp.column(self.time, quoted=True))]),
        )
        growth = exp.Sub(this=_divide(measure, before.copy()), expression=exp.Literal.number(1))
        rows.select(
            _alias(exp.Sub(this=measure.copy(), expression=before), "change"),
            _alias(growth, "change_pct"),
            copy=False,
        )
        if self.periods:  # "2022 vs 2024": only those buckets, compared with each other
            starts = [exp.cast(exp.Literal.string(p), "timestamp") for p in self.periods]
            rows.where(exp.column(self.time, quoted=True).isin(*starts), copy=False)
        return rows

    def sql(self, base_sql: str, dialect: str) -> str:
        """The derivation over `base_sql` (the semantic query's SQL), in `dialect`."""
        import sqlglot

        select = self.select()
        base = sqlglot.parse_one(base_sql, read=dialect)
        return select.with_(BASE, as_=base, copy=False).sql(dialect=dialect, pretty=True)

    def apply(self, rows: pa.Table) -> pa.Table:
        """The derivation over the semantic result's rows (an Arrow table), in DuckDB."""
        import duckdb

        with duckdb.connect() as con:
            con.register(BASE, rows)
            return con.sql(self.select().sql(dialect="duckdb")).to_arrow_table()


def _divide(measure: exp.Column, below: exp.Expression | str) -> exp.Div:
    """`measure` / `below`, NULL where `below` is zero (no division error, no infinity)."""
    if isinstance(below, str):
        below = exp.column(below, quoted=True)
    return exp.Div(this=measure.copy(), expression=exp.func("NULLIF", below, exp.Literal.number(0)))


def _alias(expression: exp.Expression, name: str) -> exp.Alias:
    return exp.alias_(expression, name, quoted=True)


def _kept(column: str, values: list[str], negated: bool) -> exp.Expression:
    found = exp.column(column, quoted=True).isin(*[exp.Literal.string(v) for v in values])
    return exp.not_(found) if negated else found


def describe(derivation: Derivation, title: Any) -> str:
    """`title(member)` → its title; the derivation in words."""
    measure = title(derivation.measure)
    if derivation.kind == "ratio":
        return f"derived: {measure} ÷ {title(derivation.denominator)} (both measures of the model)"
    if derivation.kind == "share":
        whole = (
            "all rows"
            if not derivation.keep
            else "all " + ", ".join(title(c) for c in derivation.keep) + " values"
        )
        return f"derived: share = {measure} of each row ÷ {measure} of {whole}"
    return f"derived: change = {measure} minus {measure} of the period before (and in %)"
