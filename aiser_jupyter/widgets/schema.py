"""SchemaBrowser: connections → tables → columns, and the model's cubes → members.

Choosing a table shows its first rows, its row count and a ``%%sql`` cell to copy
(all from ``Session.preview``).
"""

from __future__ import annotations

from typing import Any

import anywidget
import traitlets

from aiser_jupyter.charts.echarts import plain
from aiser_jupyter.charts.html import static_file
from aiser_jupyter.errors import AiserError

ROW_COUNTS = {
    # The catalog's own counts: free to read, exact for DuckDB, an estimate on PostgreSQL.
    "duckdb": "SELECT schema_name, table_name, estimated_size FROM duckdb_tables()",
    "postgresql": "SELECT schemaname, relname, n_live_tup FROM pg_stat_user_tables",
}


def row_counts(connection: Any) -> dict[tuple[str, str], int]:
    """Rows per (schema, table) where the engine's catalog knows them cheaply."""
    sql = ROW_COUNTS.get(connection.kind)
    if sql is None:
        return {}
    try:
        table = connection.engine.execute(sql)
    except AiserError:
        return {}
    return {(s, t): int(n) for s, t, n in zip(*table.to_pydict().values(), strict=True)}


def connection_nodes(session: Any) -> list[dict[str, Any]]:
    """One node per connection, holding its tables and their columns."""
    nodes = []
    names = list(session.sources.connections) or [session.sources.default_duckdb().name]
    for name in names:
        connection = session.connection(name)
        try:
            columns = connection.columns().to_pylist()
        except AiserError as exc:
            nodes.append(
                {"label": name, "kind": "connection", "detail": f"✗ {exc}", "children": []}
            )
            continue
        counts = row_counts(connection)
        tables: dict[tuple[str, str], list[dict[str, Any]]] = {}
        for column in columns:
            tables.setdefault((column["schema"], column["table"]), []).append(
                {"label": column["column"], "kind": "column", "detail": column["type"]}
            )
        children = [
            {
                "label": table if schema in ("", "main", "public") else f"{schema}.{table}",
                "kind": "table",
                "detail": f"{len(cols)} columns"
                + (f" · {counts[schema, table]:,} rows" if (schema, table) in counts else ""),
                "key": {"connection": name, "schema": schema, "table": table},
                "children": cols,
            }
            for (schema, table), cols in sorted(tables.items())
        ]
        detail = f"{connection.kind} · {len(children)} tables"
        nodes.append(
            {
                "label": name,
                "kind": "connection",
                "detail": detail,
                "open": True,
                "children": children,
            }
        )
    return nodes


def model_nodes(model: Any) -> list[dict[str, Any]]:
    """The semantic model's cubes with their measures and dimensions, titles shown."""
    if model is None:
        return []
    cubes = []
    for cube in model.cubes.values():
        groups = []
        for kind in ("measure", "dimension", "segment"):
            members = cube.by_kind(kind)
            if members:
                leaves = [
                    {"label": m.title, "kind": kind, "detail": f"{m.full_name} · {m.type}"}
                    for m in members
                ]
                groups.append({"label": f"{kind}s", "kind": "group", "children": leaves})
        cubes.append({"label": cube.title, "kind": "cube", "detail": cube.name, "children": groups})
    return [{"label": "Semantic model", "kind": "model", "open": True, "children": cubes}]


class SchemaBrowser(anywidget.AnyWidget):
    """What a Session can query, as a tree; choose a table for a preview and a snippet."""

    _esm = static_file("schema.js")
    _css = static_file("widgets.css")
    tree = traitlets.List().tag(sync=True)
    selected = traitlets.Dict(allow_none=True, default_value=None).tag(sync=True)
    preview = traitlets.Dict().tag(sync=True)
    snippet = traitlets.Unicode("").tag(sync=True)

    def __init__(self, session: Any, **kwargs: Any):
        super().__init__(**kwargs)
        self.session = session
        self.observe(self._choose, names="selected")
        self.refresh()

    def refresh(self) -> None:
        """Read the connections and the model again (after connecting or loading a model)."""
        self.tree = connection_nodes(self.session) + model_nodes(self.session.model)

    def _choose(self, change: dict[str, Any]) -> None:
        key = change["new"]
        if not key:
            return
        try:
            result, count, snippet = self.session.preview(
                key["table"], key["connection"], key.get("schema") or None
            )
        except AiserError as exc:
            self.preview, self.snippet = {}, f"-- {exc}"
            return
        frame = result.df
        self.preview = {
            "columns": [str(c) for c in frame.columns],
            "rows": [plain(list(row)) for row in frame.itertuples(index=False)],
            "count": count,
        }
        self.snippet = snippet
