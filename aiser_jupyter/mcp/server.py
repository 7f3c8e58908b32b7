"""The Session's data as an MCP server, for other AI clients (desktop assistants, IDE agents).

Tools: list the sources, describe a table, the semantic model's meta (Cube's ``/meta``),
run a semantic query, run read-only SQL (``Session.sql(read_only=True)``: the SQL guard,
then a database that refuses writes, under the row cap and the query time limit). The
model's YAML files are resources. Rows come back as structured JSON records, with the SQL
that produced them. Calls run one at a time: the SDK runs tools in worker threads, and a
Session is not made for concurrent use.
"""

from __future__ import annotations

import functools
import threading
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError

if TYPE_CHECKING:
    from mcp.server.mcpserver import MCPServer

    from aiser_jupyter.result import Result

__all__ = ["HttpServer", "build_server", "serve_http"]

INSTRUCTIONS = (
    "Analytics over the user's data. Prefer semantic_query when a semantic model is loaded "
    "(semantic_meta lists its measures and dimensions); otherwise run_sql runs one read-only "
    "SELECT. list_sources and describe_table show what there is."
)


def build_server(session: Any, name: str = "aiser", log_level: str = "INFO") -> MCPServer:
    """An MCP server (the SDK's ``MCPServer``) whose tools and resources read `session`.

    The SDK sets up logging (``logging.basicConfig``) at `log_level`: in a kernel, WARNING,
    so that other libraries' INFO lines stay out of the notebook."""
    from mcp.server.mcpserver import MCPServer
    from mcp.server.mcpserver.exceptions import ToolError

    server = MCPServer(name, instructions=INSTRUCTIONS, log_level=log_level)  # type: ignore[arg-type]
    lock = threading.Lock()

    def guarded(fn: Callable[..., Any]) -> Callable[..., Any]:
        """One call at a time; our errors become tool errors the client reads."""

        @functools.wraps(fn)
        def run(*args: Any, **kwargs: Any) -> Any:
            with lock:
                try:
                    return fn(*args, **kwargs)
                except AiserError as exc:
                    raise ToolError(str(exc)) from None

        return run

    def list_sources() -> dict[str, Any]:
        """Connections, the tables of each, and the semantic model's cubes and views."""
        from aiser_jupyter.agent.context import table_docs

        frame = session.sources.connections_frame()
        model = session.model
        return {
            "connections": frame[["name", "kind", "current"]].to_dict("records"),
            "tables": [doc.key for doc in table_docs(session.agent.workbench)],
            "cubes": list(model.cubes) if model is not None else [],
            "views": list(model.views) if model is not None else [],
        }

    def describe_table(table: str, connection: str | None = None) -> dict[str, Any]:
        """A table's columns and types, its row count and five sample rows."""
        result, count, _ = session.preview(table, connection, rows=5)
        schema = result.to_arrow().schema
        return {
            "table": table,
            "connection": result.connection,
            "row_count": count,
            "columns": [{"name": f.name, "type": str(f.type)} for f in schema],
            "sample": _records(result),
        }

    def semantic_meta() -> dict[str, Any]:
        """The semantic model's cubes, measures, dimensions and segments (Cube's /meta)."""
        from aiser_jupyter.semantic.meta import meta

        return meta(_model(session))

    def semantic_query(query: dict[str, Any]) -> dict[str, Any]:
        """Answer a Cube REST query, e.g. {"measures": ["orders.count"], "dimensions":
        ["customers.region"], "filters": [...], "timeDimensions": [...], "limit": 10}."""
        _model(session)
        connection, sql = session.semantic.compile_query(query)
        # the SQL over the raw tables, which runs as it is, even if a rollup answered
        return {**_rows(session, session.query(query)), "sql": sql, "connection": connection}

    def run_sql(sql: str, connection: str | None = None) -> dict[str, Any]:
        """Run one read-only SELECT on a connection (DuckDB SQL on the embedded one); writes,
        several statements and file access are refused."""
        return _rows(session, session.sql(sql, connection, read_only=True))

    for fn in (list_sources, describe_table, semantic_meta, semantic_query, run_sql):
        server.add_tool(guarded(fn), structured_output=True)
    _add_model_resources(server, session)
    return server


def _model(session: Any) -> Any:
    if session.model is None:
        raise AiserError("No semantic model is loaded (serve with --model): use run_sql")
    return session.model


def _records(result: Result) -> list[dict[str, Any]]:
    return result.to_arrow().to_pylist()


def _rows(session: Any, result: Result) -> dict[str, Any]:
    """A result for a client: its SQL, columns and rows (up to the row cap)."""
    cap = session.settings.row_cap
    rows = _records(result)
    return {
        "sql": result.sql,
        "connection": result.connection,
        "columns": list(result.to_arrow().column_names),
        "row_count": len(rows),
        "rows": rows[:cap],
        "notes": list(result.notes),
    }


def _add_model_resources(server: MCPServer, session: Any) -> None:
    """Each YAML file of the loaded model as a resource ``aiser://model/<file name>``."""
    from mcp.server.mcpserver.resources import FileResource

    from aiser_jupyter.semantic.loader import FILE, read_model_source

    model = session.model
    if model is None or model.source == "<dict>":
        return
    files = sorted({doc[FILE] for doc in read_model_source(model.source) if doc.get(FILE)})
    root = Path(model.source)
    for file in map(Path, files):
        relative = file.relative_to(root).as_posix() if root.is_dir() else file.name
        server.add_resource(
            FileResource(
                uri=f"aiser://model/{relative}",
                name=relative,
                description="The semantic model (Cube YAML)",
                mime_type="application/yaml",
                path=file.resolve(),
                encoding="utf-8",
            )
        )


class HttpServer:
    """An MCP server over streamable HTTP in a background thread, serving this kernel's
    Session while the notebook goes on; ``stop()`` ends it."""

    def __init__(self, session: Any, host: str = "127.0.0.1", port: int = 8765) -> None:
        import uvicorn

        app = build_server(session, log_level="WARNING").streamable_http_app(host=host)
        self.url = f"http://{host}:{port}/mcp"
        self._server = uvicorn.Server(uvicorn.Config(app, host=host, port=port, log_level="error"))
        self._thread = threading.Thread(target=self._server.run, name="aiser-mcp-http", daemon=True)

    def start(self, timeout: float = 10.0) -> HttpServer:
        import time

        self._thread.start()
        deadline = time.monotonic() + timeout
        while not self._server.started:
            if not self._thread.is_alive() or time.monotonic() > deadline:
                raise AiserError(f"The MCP server could not listen on {self.url}")
            time.sleep(0.02)
        return self

    def stop(self) -> None:
        self._server.should_exit = True
        self._thread.join(10)

    def __repr__(self) -> str:
        state = "serving" if self._thread.is_alive() else "stopped"
        return f"<aiser MCP server {state} at {self.url}>"


def serve_http(session: Any, host: str = "127.0.0.1", port: int = 8765) -> HttpServer:
    """Serve `session` over streamable HTTP from a background thread (see ``HttpServer``)."""
    return HttpServer(session, host, port).start()
