"""The one stateful object of a kernel: connections, the current one, snippets, settings, history.

Magics, the Python API and (later) widgets and the sidebar are thin views over
these methods, so each thing is done one way.
"""

from __future__ import annotations

import os
import time
from collections import ChainMap
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiser_jupyter.config import Settings
from aiser_jupyter.errors import AiserError, ConnectionFailed, UnknownConnection
from aiser_jupyter.result import Result
from aiser_jupyter.security.secrets import redact, redact_url
from aiser_jupyter.sources import targets
from aiser_jupyter.sources.connection import Connection
from aiser_jupyter.sqltext.params import bind
from aiser_jupyter.sqltext.snippets import Snippets
from aiser_jupyter.sqltext.templates import has_template, render

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.charts import Chart
    from aiser_jupyter.engines.duckdb import DuckDBEngine
    from aiser_jupyter.semantic.model import SemanticModel
    from aiser_jupyter.semantic.preagg import PreAggregationStore, Rollup


@dataclass(frozen=True)
class HistoryEntry:
    """One query as it ran: secrets already redacted from its text and error."""

    at: datetime
    kind: str
    connection: str
    engine: str
    sql: str
    rows: int | None
    elapsed: float
    error: str | None = None


class Session:
    def __init__(self, settings: Settings | None = None):
        self.settings = settings or Settings.load()
        self.connections: dict[str, Connection] = {}
        self.current: str | None = None
        self.snippets = Snippets()
        self.history: list[HistoryEntry] = []
        self.model: SemanticModel | None = None
        self._rollups: list[Rollup] = []
        self._preaggregations: PreAggregationStore | None = None
        self._frames = 0

    # -- connections -------------------------------------------------------------

    def connect(self, target: Any, name: str | None = None, **options: Any) -> Connection:
        """Connect a database URL, a file or glob, a named connection, or a DataFrame."""
        if targets.is_frame(target):
            connection = self._register_frame(target, name)
        elif isinstance(target, str) or hasattr(target, "__fspath__"):
            text = os.fspath(target)
            named = None if targets.is_url(text) else targets.resolve_named(text)
            if targets.is_url(text):
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
        return connection

    def disconnect(self, name: str) -> None:
        connection = self.connection(name)
        connection.close()
        del self.connections[connection.name]
        if self.current == connection.name:
            self.current = None

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
    ) -> Result | None:
        """Run `query`; ``:name`` binds from `params` (or `namespace`), ``{{ }}`` renders from it.

        `save` keeps the query as a snippet that later queries may use as a table;
        with `execute` false nothing runs (and None is returned).
        """
        conn = self.connection(connection)
        dialect = conn.engine.dialect
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
        return self._run(conn, "sql", text, prepare, limit, notes)

    def _run(
        self,
        conn: Connection,
        kind: str,
        shown: str,
        prepare: Any,
        limit: int | None,
        notes: list[str],
    ) -> Result:
        """Prepare and execute a statement; either way it goes into the history, secrets hidden."""
        started = time.perf_counter()
        table, error = None, None
        try:
            final, values = prepare()
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
        return Result(
            table,
            sql=redact(shown),
            connection=conn.name,
            elapsed=elapsed,
            notes=notes,
            display_rows=self.settings.display_rows,
        )

    # -- the semantic layer --------------------------------------------------------

    def load_model(self, source: Any) -> SemanticModel:
        """Load a Cube data model (a YAML file, a folder of them, or a dict) for `query`."""
        from aiser_jupyter.semantic.model import SemanticModel
        from aiser_jupyter.semantic.preagg import rollups

        model = SemanticModel.load(source)
        self._rollups = rollups(model)
        self.model = model
        return model

    def query_sql(self, query: Mapping[str, Any] | str, connection: str | None = None) -> str:
        """The SQL `query` compiles to, in the dialect of the connection it would run on."""
        plan, conn = self._plan(query, connection)
        return plan.sql(conn.engine.dialect)[0]

    def query(self, query: Mapping[str, Any] | str, connection: str | None = None) -> Result:
        """Answer a Cube REST query (a dict, or its JSON/YAML text) through the loaded model.

        When a rollup pre-aggregation gives the same numbers, it answers instead of the raw
        tables, and the Result says so.
        """
        from aiser_jupyter.semantic.runner import compare_queries, parse_text

        raw = parse_text(query) if isinstance(query, str) else dict(query)
        if compared := compare_queries(raw):
            return self._compare(raw, compared, connection)
        plan, conn = self._plan(raw, connection)
        rollup, compiler = plan.pre_aggregation(self._rollups)
        notes = ["semantic query"]
        if rollup is None:
            sql, total_sql = plan.sql(conn.engine.dialect)
        else:
            store = self.preaggregations()
            table = store.ensure(self.model, rollup, conn)
            sql, total_sql = plan.sql("duckdb", rollup, compiler, table)
            conn = store.connection
            notes.append(f"pre-aggregation {rollup.full_name}")
        result = self._run(conn, "query", sql, lambda: (sql, None), None, notes)
        result.query, result.annotation = plan.raw, plan.annotation
        result.pre_aggregation = rollup.full_name if rollup is not None else None
        if total_sql is not None:
            counted = conn.engine.execute(total_sql)
            result.total = int(counted.column(0)[0].as_py()) if counted is not None else None
        return result

    def _compare(
        self,
        raw: dict[str, Any],
        compared: list[tuple[str, dict[str, Any]]],
        connection: str | None,
    ) -> Result:
        """One result for a compareDateRange query: each range's rows, labelled."""
        import pyarrow as pa

        parts = [(label, self.query(part, connection)) for label, part in compared]
        tables = [
            result.to_arrow().append_column(
                "compareDateRange", pa.array([label] * result.rowcount, pa.string())
            )
            for label, result in parts
        ]
        first = parts[0][1]
        return Result(
            pa.concat_tables(tables),
            sql=";\n".join(result.sql for _, result in parts),
            connection=first.connection,
            elapsed=sum(result.elapsed for _, result in parts),
            notes=[*first.notes, f"{len(parts)} date ranges compared"],
            display_rows=self.settings.display_rows,
            query=raw,
            annotation=first.annotation,
        )

    def preaggregations(self) -> PreAggregationStore:
        """The local DuckDB that holds rollup tables (opened on first use)."""
        if self._preaggregations is None:
            from aiser_jupyter.semantic.preagg import PreAggregationStore

            self._preaggregations = PreAggregationStore(self.settings.preaggregation_cache)
        return self._preaggregations

    def refresh_pre_aggregations(self, force: bool = True) -> list[str]:
        """Build (or rebuild) every rollup of the model now; their names."""
        if self.model is None:
            raise UnknownConnection("No semantic model loaded")
        built = []
        for rollup in self._rollups:
            source = self.connection(self.model.cubes[rollup.cube].data_source)
            self.preaggregations().ensure(self.model, rollup, source, force=force)
            built.append(rollup.full_name)
        return built

    def _plan(self, query: Mapping[str, Any] | str, connection: str | None) -> Any:
        from aiser_jupyter.semantic.runner import prepare_query

        if self.model is None:
            raise UnknownConnection(
                "No semantic model loaded: aiser.model(PATH) or %aiser model load PATH"
            )
        plan = prepare_query(self.model, query)
        return plan, self.connection(connection or plan.data_source)

    def auto_model(
        self,
        connection: str | None = None,
        tables: Sequence[str] | None = None,
        path: str | None = None,
    ) -> str:
        """A starting Cube YAML model of a connection's tables; written to `path` when given."""
        from pathlib import Path

        from aiser_jupyter.semantic.automodel import auto_model_yaml

        text = auto_model_yaml(self.connection(connection), tables)
        if path is not None:
            Path(path).write_text(text, encoding="utf-8")
        return text

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
        return duck

    def close(self) -> None:
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()
        self.current = None
        if self._preaggregations is not None:
            self._preaggregations.engine.close()
            self._preaggregations = None


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
