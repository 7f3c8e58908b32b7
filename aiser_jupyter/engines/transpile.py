"""sqlglot between the user's dialect and an engine's, plus the two keys the router and the
cache need: a query's shape (its text with every literal blanked) and its normalised text."""

from __future__ import annotations

import hashlib
from typing import TYPE_CHECKING

from aiser_jupyter.engines.catalog import RoutingError

if TYPE_CHECKING:
    from sqlglot import exp

GROUP_BY_ALL_DIALECTS = {"duckdb", "snowflake", "databricks", "clickhouse"}
"""Engines that understand GROUP BY ALL; for the others it becomes the grouped positions."""
QUALIFY_DIALECTS = {"duckdb", "snowflake", "databricks", "bigquery", "clickhouse", "teradata"}
"""Engines that understand QUALIFY; for the others it becomes a filter around a subquery."""


def parse(sql: str, dialect: str) -> exp.Expression:
    """The one statement in `sql`, read as `dialect`; a RoutingError saying why otherwise."""
    import sqlglot

    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0]
        raise RoutingError(f"Could not read the query as {dialect} SQL: {first}", sql=sql) from None
    if len(statements) != 1:
        raise RoutingError(
            f"The router places one statement at a time; this has {len(statements)}.", sql=sql
        )
    return statements[0]


def to_dialect(
    tree: exp.Expression, dialect: str, date_columns: frozenset[str] = frozenset()
) -> str:
    """`tree` written for `dialect`; ``:name`` parameters stay ``:name`` for binding later.
    `date_columns` (lowercase names) are DATE columns: DuckDB's date_trunc of one is a plain
    TIMESTAMP, PostgreSQL's a timestamp with time zone, unless told (sqlglot does not know
    the column's type)."""
    from sqlglot import exp

    def rewrite(node: exp.Expression) -> exp.Expression:
        if isinstance(node, exp.Placeholder) and node.name:
            return exp.Var(this=f":{node.name}")
        if (
            isinstance(node, (exp.TimestampTrunc, exp.DateTrunc))
            and dialect != "duckdb"
            and isinstance(node.this, exp.Column)
            and node.this.name.lower() in date_columns
            and not isinstance(node.parent, exp.Cast)
        ):
            return exp.cast(node.copy(), exp.DataType.Type.TIMESTAMP)
        if (
            isinstance(node, exp.Select)
            and dialect not in GROUP_BY_ALL_DIALECTS
            and (group := node.args.get("group")) is not None
            and group.args.get("all")
        ):
            positions = [
                exp.Literal.number(i)
                for i, column in enumerate(node.selects, 1)
                if not any(_aggregate(n) or isinstance(n, exp.Window) for n in column.walk())
            ]
            node.set("group", exp.Group(expressions=positions) if positions else None)
        return node

    tree = tree.copy()  # owned from here on: generated without another copy
    if dialect not in QUALIFY_DIALECTS:
        for select in reversed(list(tree.find_all(exp.Select))):
            if select.args.get("qualify") is not None:
                outer = _unqualify(select)
                tree = outer if select is tree else tree
    return tree.transform(rewrite, copy=False).sql(dialect=dialect, copy=False)


def _unqualify(select: exp.Select) -> exp.Select:
    """``SELECT … QUALIFY c ORDER BY … LIMIT n`` as ``SELECT <names> FROM (SELECT …, c AS
    _qualify) WHERE _qualify ORDER BY … LIMIT n`` (QUALIFY filters before ORDER BY and LIMIT).
    sqlglot's own rewrite nests an aggregate that a window orders by (SUM(SUM(x)))."""
    from sqlglot import exp

    condition = select.args["qualify"].this
    select.set("qualify", None)
    named = [_named(e) for e in select.expressions]
    moved = {key: select.args.get(key) for key in ("order", "limit", "offset")}
    for key in moved:
        select.set(key, None)
    select.set("expressions", [*named, exp.alias_(condition, "_qualify")])
    names = [(e.args["alias"] if isinstance(e, exp.Alias) else e.this).copy() for e in named]
    outer = exp.select(*(exp.column(name) for name in names)).from_(select.copy().subquery("_t"))
    outer = outer.where(exp.column("_qualify"))
    for key, value in moved.items():
        if value is not None:
            for column in value.find_all(exp.Column):
                column.set("table", None)
            outer.set(key, value)
    select.replace(outer)
    return outer


def _named(expression: exp.Expression) -> exp.Expression:
    from sqlglot import exp

    if isinstance(expression, (exp.Alias, exp.Column, exp.Star)):
        return expression
    return exp.alias_(expression, expression.sql("duckdb"), quoted=True)


def _aggregate(node: exp.Expression) -> bool:
    """An aggregate that is not inside a window (a window's argument is still per row)."""
    from sqlglot import exp

    return isinstance(node, exp.AggFunc) and not isinstance(node.parent, exp.Window)


def shape(sql: str, dialect: str) -> str:
    """Queries that differ only in their literals, layout or keyword case share a shape:
    timings are kept per shape. From the tokens, so that no tree is copied."""
    import sqlglot

    literal = {"STRING", "NUMBER", "NATIONAL_STRING", "RAW_STRING"}
    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return digest(sql)
    words = ["?" if t.token_type.name in literal else t.text.lower() for t in tokens]
    return digest(" ".join(words))


def normalised(tree: exp.Expression) -> str:
    """The query's text with layout, comments and the case of keywords taken out."""
    return tree.sql(dialect="duckdb", comments=False, normalize=True, copy=False)


def digest(text: str) -> str:
    return hashlib.blake2b(text.encode(), digest_size=12).hexdigest()
