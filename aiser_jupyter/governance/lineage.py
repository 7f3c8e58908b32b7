"""Where a number comes from: the source tables and columns of a semantic member or of a
result's columns, traced by sqlglot's lineage through the SQL the semantic compiler writes.

A measure built from other measures (``average_order_value`` = revenue / count) shows them
as a middle step, so the graph reads member → members it uses → table columns.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from aiser_jupyter.semantic.layer import SemanticLayer

COLUMN = " (column)"
"""Marks a table column's node in the graph."""


class LineageError(AiserError):
    """A column or member whose sources cannot be traced."""


@dataclass
class Lineage:
    """Targets (members or result columns) and what they come from."""

    sources: dict[str, list[str]] = field(default_factory=dict)
    """Each target → the ``table.column`` names it reads, sorted."""
    edges: list[tuple[str, str]] = field(default_factory=list)
    """(upstream, downstream) pairs: table columns (``orders.revenue (column)``, apart from a
    member of the same name) → members used → targets."""

    def add(self, upstream: str, downstream: str) -> None:
        if (upstream, downstream) not in self.edges and upstream != downstream:
            self.edges.append((upstream, downstream))

    def frame(self) -> Any:
        import pandas as pd

        rows = [
            {"target": t, "table": s.rpartition(".")[0], "column": s.rpartition(".")[2]}
            for t, columns in self.sources.items()
            for s in columns
        ]
        return pd.DataFrame(rows, columns=["target", "table", "column"])

    def tree(self) -> str:
        """The lineage as indented text, target first."""
        lines: list[str] = []

        def walk(node: str, depth: int) -> None:
            lines.append("  " * depth + ("└─ " if depth else "") + node)
            for upstream, downstream in self.edges:
                if downstream == node:
                    walk(upstream, depth + 1)

        for target in self.sources:
            walk(target, 0)
        return "\n".join(lines)

    def echarts(self) -> dict[str, Any]:
        """An ECharts graph option: targets on the right, table columns on the left."""
        names = list(dict.fromkeys([n for edge in self.edges for n in edge] + list(self.sources)))
        depth = {n: 2 if n in self.sources else (0 if n.endswith(COLUMN) else 1) for n in names}
        rows: dict[int, int] = {}
        nodes = []
        for name in names:
            level = depth[name]
            rows[level] = rows.get(level, 0) + 1
            nodes.append({"name": name, "x": level * 300, "y": rows[level] * 60, "category": level})
        return {
            "tooltip": {},
            "legend": {"data": ["table column", "member", "target"]},
            "series": [
                {
                    "type": "graph",
                    "layout": "none",
                    "roam": True,
                    "label": {"show": True},
                    "edgeSymbol": ["none", "arrow"],
                    "categories": [{"name": n} for n in ("table column", "member", "target")],
                    "data": nodes,
                    "links": [{"source": a, "target": b} for a, b in self.edges],
                }
            ],
        }

    def __repr__(self) -> str:
        return self.tree()

    def _repr_html_(self) -> str:
        return f"<pre>{html.escape(self.tree())}</pre>"


def schema_of(connection: Any) -> dict[str, dict[str, str]]:
    """``{table: {column: type}}`` of a connection, which sqlglot's lineage needs to see
    through ``SELECT *``."""
    schema: dict[str, dict[str, str]] = {}
    for row in connection.columns().to_pylist():
        schema.setdefault(row["table"], {})[row["column"]] = row["type"]
    return schema


def column_sources(sql: str, column: str, schema: dict, dialect: str) -> list[str]:
    """The ``table.column`` names output column `column` of `sql` reads."""
    from sqlglot.errors import SqlglotError
    from sqlglot.lineage import lineage

    try:
        node = lineage(
            exp.to_identifier(column, quoted=True).sql(dialect), sql, schema=schema, dialect=dialect
        )
    except SqlglotError as exc:
        raise LineageError(f"cannot trace {column!r}: {exc}") from None
    found = set()
    for item in node.walk():
        if not item.downstream and isinstance(item.expression, exp.Table):
            name = exp.to_column(item.name).name if "." in item.name else item.name
            found.add(f"{item.expression.name}.{name}")
    return sorted(found)


def member_lineage(
    semantic: SemanticLayer, name: str, into: Lineage | None = None, label: str | None = None
) -> Lineage:
    """The lineage of a semantic member (``orders.revenue``), through the members it uses;
    `label` names the target (a result's column) when it is not the member's name."""
    from aiser_jupyter.security.context import AccessDenied, current
    from aiser_jupyter.semantic.compiler import Compiler, to_sql
    from aiser_jupyter.semantic.policies import visible
    from aiser_jupyter.semantic.query import Query

    model = semantic.model
    member = model.member(name)
    who = current() or semantic.context()
    if who is not None and not visible(model, who, name):
        raise AccessDenied(f"{name} is not visible to {who.describe()}")
    into = into if into is not None else Lineage()
    label = label or name
    if member.kind not in ("measure", "dimension"):
        raise LineageError(f"{name} is a {member.kind}: lineage traces measures and dimensions")
    key = "measures" if member.kind == "measure" else "dimensions"
    compiler = Compiler(model, Query.parse({key: [member.full_name]}), "duckdb")
    leaves = compiler.leaves(member) if member.kind == "measure" else [member]
    sources: set[str] = set()
    for leaf in leaves:
        query = {"measures" if leaf.kind == "measure" else "dimensions": [leaf.full_name]}
        conn = semantic.connection(model.cubes[leaf.cube].data_source)
        sql = to_sql(model, query, conn.engine.dialect)
        columns = column_sources(sql, leaf.full_name, schema_of(conn), conn.engine.dialect)
        for column in columns:
            into.add(column + COLUMN, leaf.full_name)
        if leaf.full_name != label:
            into.add(leaf.full_name, label)
        sources.update(columns)
    into.sources[label] = sorted(sources)
    return into


def lineage_of(semantic: SemanticLayer, target: Any, column: str | None = None) -> Lineage:
    """The lineage of a member name, or of a Result's columns (or its `column` alone): a
    semantic result through its members, any other through its SQL."""
    if isinstance(target, str):
        return member_lineage(semantic, target)
    result = target
    names = [column] if column is not None else result.to_arrow().column_names
    graph = Lineage()
    if result.query is not None:
        for name in names:
            if name == "compareDateRange":
                continue
            member = ".".join(name.split(".")[:2])  # a time dimension's column: member.grain
            member_lineage(semantic, member, graph, label=name)
        return graph
    conn = semantic.connection(result.connection)
    schema, dialect = schema_of(conn), conn.engine.dialect
    for name in names:
        graph.sources[name] = column_sources(result.sql, name, schema, dialect)
        for source in graph.sources[name]:
            graph.add(source + COLUMN, name)
    return graph
