"""The one stateful object of a kernel: connections, the current one, snippets, settings, history.

Magics, the Python API and (later) widgets and the sidebar are thin views over
these methods, so each thing is done one way.
"""

from __future__ import annotations

import os
import time
from collections import ChainMap
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiser_jupyter.agent.session_methods import AgentMethods
from aiser_jupyter.analysis.session_methods import InsightMethods
from aiser_jupyter.boards.session_methods import DashboardMethods
from aiser_jupyter.config import Settings
from aiser_jupyter.engines.routing_methods import RoutingMethods
from aiser_jupyter.errors import AiserError, ConnectionFailed, UnknownConnection
from aiser_jupyter.governance.session_methods import GovernanceMethods
from aiser_jupyter.history import HistoryEntry
from aiser_jupyter.logs import quiet_libraries
from aiser_jupyter.mcp.session_methods import ToolMethods
from aiser_jupyter.result import Result
from aiser_jupyter.security.secrets import redact, redact_url
from aiser_jupyter.semantic.session_methods import SemanticMethods
from aiser_jupyter.server.run import ServerMethods
from aiser_jupyter.sources import targets
from aiser_jupyter.sources.connection import Connection
from aiser_jupyter.sources.lake_methods import LakeMethods
from aiser_jupyter.sqltext.params import bind
from aiser_jupyter.sqltext.snippets import Snippets
from aiser_jupyter.sqltext.templates import has_template, render

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.agent.answer import Answer
    from aiser_jupyter.agent.vocabulary import ValueIndex
    from aiser_jupyter.charts import Chart
    from aiser_jupyter.engines.duckdb import DuckDBEngine
    from aiser_jupyter.engines.router import RoutePlan
    from aiser_jupyter.memory import Memory
    from aiser_jupyter.semantic.model import SemanticModel
    from aiser_jupyter.semantic.preagg import PreAggregationStore, Rollup


class Session(
    SemanticMethods,
    AgentMethods,
    InsightMethods,
    DashboardMethods,
    RoutingMethods,
    LakeMethods,
    ToolMethods,
    GovernanceMethods,
    ServerMethods,
):
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.load()
        quiet_libraries(self.settings.log_level)
        self.connections: dict[str, Connection] = {}
        self.current: str | None = None
        self.snippets = Snippets()
        self.history: list[HistoryEntry] = []
        self.model: SemanticModel | None = None
        self._rollups: list[Rollup] = []
        self._preaggregations: PreAggregationStore | None = None
        self._frames = 0
        self.last_answer: Answer | None = None
        self._memory: Memory | None = None
        self._values: tuple[SemanticModel, object, ValueIndex] | None = None
        self._listeners: list[Callable[[str], object]] = []
        if self.settings.audit != "off":
            self.start_audit()

    # -- change events -----------------------------------------------------------

    def on_change(self, listener: Callable[[str], object]) -> Callable[[], None]:
        """Call `listener(what)` when connections, the model or the history change (what is
        "connections", "model" or "history"), so views (the sidebar) update without polling.
        Returns a function that stops the calls."""
        self._listeners.append(listener)
        return lambda: self._listeners.remove(listener) if listener in self._listeners else None

    def changed(self, what: str) -> None:
        """Tell the listeners; a failing listener is dropped, never the Session's work."""
        for listener in list(self._listeners):
            try:
                listener(what)
            except Exception:  # a broken view must not break a query
                self._listeners.remove(listener)

    # -- connections -------------------------------------------------------------

    def connect(self, target: Any, name: str | None = None, **options: Any) -> Connection:
        """Connect a database URL, a file or glob, a named connection, or a DataFrame."""
        if targets.is_frame(target):
            connection = self._register_frame(target, name)
        elif isinstance(target, str) or hasattr(target, "__fspath__"):
            text = os.fspath(target)
            named = None if targets.is_url(text) else targets.resolve_named(text)
            external = self.open_external(text, name, **options)  # Spark, lakes, HTTP APIs
            if external is not None:
                connection = external
            elif targets.is_url(text):
                connection = Connection(
                    name or targets.url_name(text), targets.open_url(text, **options), text
                )
            elif named is not None:
                url, extra = named
                engine = targets.open_url(url, **{**extra, **options})
                connection = Connection(name or text, engine, url)
            else:
                connection = self._register_files(text, name)
            self._replace(connection)
        else:
            raise ConnectionFailed(
                f"Cannot connect to a {type(target).__name__}: expected a database URL, "
                "a file path, a connection name or a DataFrame"
            )
        self.current = connection.name
        self.changed("connections")
        return connection

    def _replace(self, connection: Connection) -> None:
        """Keep `connection` under its name, closing the one it replaces (re-run cells are tidy)."""
        old = self.connections.get(connection.name)
        if old is connection:
            return
        if connection.name == self.settings.default_connection and connection.kind != "duckdb":
            connection.close()
            raise ConnectionFailed(
                f"{connection.name!r} is the embedded DuckDB connection's name: choose another"
            )
        if old is not None:
            old.close()
        self.connections[connection.name] = connection

    def _register_files(self, pattern: str, name: str | None) -> Connection:
        files = targets.matching_files(pattern)
        suffix = targets.file_suffix(pattern)
        table = name or targets.file_name(pattern)
        duck = self.default_duckdb()
        engine: DuckDBEngine = duck.engine  # type: ignore[assignment]
        if suffix in targets.EXCEL_SUFFIXES:
            import pandas as pd

            engine.store(table, pd.concat([pd.read_excel(f) for f in files], ignore_index=True))
        else:
            # Parquet stays where it is (a view reads only the columns a query needs);
            # text formats are parsed once into a table.
            kind = "VIEW" if suffix == ".parquet" else "TABLE"
            select = targets.file_relation_sql(files, suffix)
            engine.execute(f"CREATE OR REPLACE {kind} {quoted(table)} AS {select}")
        duck.tables.append(table)
        return duck

    def _register_frame(self, frame: Any, name: str | None) -> Connection:
        if name is None:
            self._frames += 1
            name = f"frame_{self._frames}"
        if type(frame).__module__.startswith("polars"):
            frame = frame.to_arrow()
        duck = self.default_duckdb()
        duck.engine.register(name, frame)  # type: ignore[attr-defined]
        duck.tables.append(name)
        return duck

    def default_duckdb(self) -> Connection:
        """The embedded DuckDB connection, opened on first use."""
        name = self.settings.default_connection
        connection = self.connections.get(name)
        if connection is None:
            from aiser_jupyter.engines.duckdb import DuckDBEngine

            database = self.settings.duckdb_database
            connection = Connection(name, DuckDBEngine(database), f"duckdb:///{database}")
            self.connections[name] = connection
        return connection

    def connection(self, name: str | None = None) -> Connection:
        """The connection called `name`, else the current one, else the default DuckDB."""
        if name is None:
            name = self.current or self.settings.default_connection
        if name == self.settings.default_connection:
            return self.default_duckdb()
        try:
            return self.connections[name]
        except KeyError:
            known = ", ".join(sorted(self.connections)) or "none yet"
            raise UnknownConnection(f"No connection named {name!r} (known: {known})") from None

    def use(self, name: str) -> Connection:
        """Make `name` the connection queries use when they name none."""
        connection = self.connection(name)
        self.current = connection.name
        self.changed("connections")
        return connection

    def disconnect(self, name: str) -> None:
        connection = self.connection(name)
        connection.close()
        del self.connections[connection.name]
        if self.current == connection.name:
            self.current = None
        self.changed("connections")

    def test_connection(self, target: str, **options: Any) -> str:
        """Open a database URL, run ``SELECT 1`` and close it again: a one-line verdict, or
        ConnectionFailed saying why (nothing is kept either way)."""
        started = time.perf_counter()
        engine = targets.open_url(target, **options)
        try:
            engine.execute("SELECT 1")
        except AiserError as exc:
            raise ConnectionFailed(
                redact(f"Reached the server, but a query failed: {exc}")
            ) from None
        finally:
            engine.close()
        elapsed = (time.perf_counter() - started) * 1000
        return f"OK: {engine.kind} at {redact_url(target)} answered in {elapsed:.0f} ms"

    def preview(
        self, table: str, connection: str | None = None, schema: str | None = None, rows: int = 10
    ) -> tuple[Result, int, str]:
        """The first rows of a table, its row count, and a ready ``%%sql`` cell that reads it."""
        from sqlglot import exp

        conn = self.connection(connection)
        name = exp.table_(table, db=schema or None, quoted=True).sql(conn.engine.dialect)
        result = self.sql(f"SELECT * FROM {name}", conn.name, limit=rows)
        counted = conn.engine.execute(f"SELECT count(*) FROM {name}")
        count = int(counted.column(0)[0].as_py()) if counted is not None else 0
        snippet = f"%%sql {conn.name}\nSELECT *\nFROM {name}\nLIMIT 100"
        return result, count, snippet

    def connections_frame(self) -> pd.DataFrame:
        import pandas as pd

        rows = [
            {
                "name": c.name,
                "kind": c.kind,
                "url": c.display_url,
                "current": c.name == (self.current or self.settings.default_connection),
            }
            for c in self.connections.values()
        ]
        return pd.DataFrame(rows, columns=["name", "kind", "url", "current"])

    def schema(self, name: str | None = None, table: str | None = None) -> pd.DataFrame:
        """Tables and columns with types; `name` is a connection, or a table of the current one."""
        if table is None and name not in (
            None,
            *self.connections,
            self.settings.default_connection,
        ):
            name, table = None, name
        frame = self.connection(name).columns().to_pandas()
        if table is not None:
            frame = frame[frame["table"] == table].reset_index(drop=True)
            if frame.empty:
                raise UnknownConnection(f"No table named {table!r} in {self.connection(name).name}")
        return frame

    # -- queries -----------------------------------------------------------------

    def sql(
        self,
        query: str,
        connection: str | None = None,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        namespace: Mapping[str, Any] | None = None,
        limit: int | None = None,
        save: str | None = None,
        execute: bool = True,
        read_only: bool = False,
        engine: str | None = None,
        dialect: str | None = None,
        explain: bool = False,
        cache: bool = True,
    ) -> Result | RoutePlan | None:
        """Run `query`; ``:name`` binds from `params` (or `namespace`), ``{{ }}`` renders from it.

        `save` keeps the query as a snippet that later queries may use as a table;
        with `execute` false nothing runs (and None is returned). `read_only` accepts one
        read-only statement only (``security.check_sql``), runs it so that the database
        refuses writes too, under the ``row_cap`` and ``query_timeout`` settings.

        Other queries go through the router (``route``): `engine` names the connection or
        engine kind that must run it, `dialect` what the SQL is written in (default: the
        connection's), `explain` returns the RoutePlan instead of running, `cache` false
        skips the result cache.
        """
        self.check_raw_access()
        conn = self.connection(connection)
        written_in = dialect
        dialect = written_in or conn.engine.dialect
        notes: list[str] = []
        lookup: Mapping[str, Any] = namespace or {}
        if isinstance(params, Mapping):
            lookup = ChainMap(dict(params), lookup)
        text = query
        try:
            if has_template(text):
                text = render(text, lookup)
                notes.append("{{ }} rendered into the text")
            if save:
                self.snippets.save(save, text, dialect)
                notes.append(f"saved as {save!r}")
        except AiserError as exc:
            exc.args = (redact(str(exc)),)
            raise
        if not execute:
            return None

        def prepare() -> tuple[str, Any]:
            composed = self.snippets.compose(text, dialect)
            if params is None or isinstance(params, Mapping):
                return bind(composed, dialect, lookup, conn.engine.paramstyle)
            return composed, list(params)

        if limit is not None:
            notes.append(f"first {limit:,} rows")
        if read_only:
            notes.append("read-only")
            return self._run(conn, "sql", text, prepare, limit, notes, read_only)
        if self.connections.keys() <= {conn.name} and not (engine or written_in or explain):
            # One source and nothing asked of the router: nowhere else to run it, so the
            # planning (a parse, ≈0.3 ms) would only slow a small query down.
            return self._run(conn, "sql", text, prepare, limit, notes)
        try:
            composed = self.snippets.compose(text, dialect)
        except AiserError as exc:
            exc.args = (redact(str(exc)),)
            raise
        if explain:
            return self.route(composed, conn.name, engine, written_in)
        values = lookup if params is None or isinstance(params, Mapping) else params
        return self.run_routed(
            composed,
            conn.name,
            values,
            engine=engine,
            dialect=written_in,
            limit=limit,
            cache=cache,
            notes=notes,
        )

    def _read_only(
        self, conn: Connection, sql: str, values: Any, limit: int | None, notes: list[str]
    ) -> Any:
        from aiser_jupyter.security.guard import check_sql

        check_sql(sql, conn.engine.dialect)
        cap = self.settings.row_cap if limit is None else min(limit, self.settings.row_cap)
        table = conn.engine.execute_read_only(
            sql, values, limit=cap, timeout=self.settings.query_timeout
        )
        if table.num_rows >= cap and (limit is None or cap < limit):
            notes.append(f"stopped at the {cap:,}-row cap")
        return table

    def _run(
        self,
        conn: Connection,
        kind: str,
        shown: str,
        prepare: Any,
        limit: int | None,
        notes: list[str],
        read_only: bool = False,
    ) -> Result:
        """Prepare and execute a statement; either way it goes into the history, secrets hidden."""
        started = time.perf_counter()
        table, error = None, None
        try:
            final, values = prepare()
            if read_only:
                table = self._read_only(conn, final, values, limit, notes)
            else:
                table = conn.engine.execute(final, values, limit)
        except AiserError as exc:
            exc.args = (redact(str(exc)),)
            error = str(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.history.append(
                HistoryEntry(
                    at=datetime.now(),
                    kind=kind,
                    connection=conn.name,
                    engine=conn.kind,
                    sql=redact(shown),
                    rows=None if table is None else table.num_rows,
                    elapsed=elapsed,
                    error=error,
                )
            )
            self.changed("history")
        return Result(
            table,
            sql=redact(shown),
            connection=conn.name,
            elapsed=elapsed,
            notes=notes,
            display_rows=self.settings.display_rows,
        )

    def chart(
        self,
        data: Any,
        kind: str | None = None,
        x: str | None = None,
        y: str | Sequence[str] | None = None,
        *,
        max_points: int = 2000,
    ) -> Chart:
        """The chart that fits a Result or DataFrame (or the one asked for), as an ECharts
        option; big series are downsampled and the chart says so."""
        from aiser_jupyter.charts import chart

        return chart(data, kind=kind, x=x, y=y, max_points=max_points)

    def history_frame(self) -> pd.DataFrame:
        import pandas as pd

        return pd.DataFrame(
            [e.__dict__ for e in self.history], columns=list(HistoryEntry.__annotations__)
        )

    def load_sample(self, seed: int = 7) -> Connection:
        """The sample retail business (customers, products, orders) as tables of DuckDB."""
        from aiser_jupyter.sources.sample import retail_tables

        duck = self.default_duckdb()
        for table_name, table in retail_tables(seed).items():
            duck.engine.store(table_name, table)  # type: ignore[attr-defined]
            duck.tables.append(table_name)
        self.current = duck.name
        self.changed("connections")
        return duck

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()
        self.current = None
        if self._preaggregations is not None:
            self._preaggregations.engine.close()
            self._preaggregations = None
        if self._memory is not None:
            self._memory.close()
            self._memory = None
        self.stop_audit()
        self.close_tools()


def quoted(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")


_session: Session | None = None


def get_session() -> Session:
    """The kernel's Session, made on first use."""
    global _session
    if _session is None:
        _session = Session()
    return _session
