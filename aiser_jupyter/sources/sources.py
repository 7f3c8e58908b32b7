"""The sources part: the Session's connections, which one is current, and the tables that
files, frames, lakes, HTTP APIs and Spark became.

``Sources(settings, changed)`` owns the connections catalog. `changed("connections")` tells
the views (the sidebar) and the router (whose catalogs go stale) that it changed. Files
and frames become tables of the embedded DuckDB; lake and API tables too (as Arrow, no
copy), and of a Spark connection when one is named. `external_tables` keeps the objects
behind them, whose `version` (a snapshot id, a Delta version, a fetch time) tells the
result cache when their rows changed.
"""

from __future__ import annotations

import os
import time
from collections.abc import Callable
from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiser_jupyter.engines.connection import Connection
from aiser_jupyter.errors import AiserError, ConnectionFailed, UnknownConnection
from aiser_jupyter.security.secrets import redact, redact_url
from aiser_jupyter.sources import targets
from aiser_jupyter.sources.streams import Streams

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.duckdb import DuckDBEngine
    from aiser_jupyter.sources.http_api import HttpApi
    from aiser_jupyter.sources.lakes import LakeTable

SPARK_PREFIXES = ("spark:", "sc://", "local[", "k8s://", "yarn")
FILE_SUFFIXES = (".csv", ".tsv", ".parquet", ".json", ".ndjson", ".jsonl", ".xlsx", ".gz")
API_OPTIONS = frozenset(
    {"records", "paginate", "params", "headers", "rate_limit", "retries", "backoff"}
    | {"max_wait", "timeout", "max_pages", "cache_ttl", "progress"}
)


def external_kind(target: str) -> str | None:
    """ "spark", "lake" or "api" when `target` is one of those URLs, else None."""
    lowered = target.lower()
    if lowered.startswith(SPARK_PREFIXES) or lowered == "local":
        return "spark"
    if lowered.startswith(("iceberg://", "delta://", "hudi://")):
        return "lake"
    if lowered.startswith(("http://", "https://")):
        path = urlsplit(target).path.lower()
        return None if path.endswith(FILE_SUFFIXES) else "api"
    return None


def table_name(target: str) -> str:
    """A default table name: the last part of the lake's path or the API's path."""
    from aiser_jupyter.sources.targets import identifier

    path = urlsplit(target).path.rstrip("/")
    last = PurePosixPath(path).name
    if last.endswith(".metadata.json"):  # …/sales/metadata/v3.metadata.json
        last = PurePosixPath(path).parent.parent.name
    return identifier(last.rsplit(".", 1)[-1] or "api")


class Sources:
    """Connections by name, the current one, and where each registered table came from."""

    def __init__(self, settings: Settings, changed: Callable[[str], None] = lambda what: None):
        self.settings = settings
        self.changed = changed
        self.connections: dict[str, Connection] = {}
        self.current: str | None = None
        self.external_tables: dict[str, LakeTable | HttpApi] = {}
        """Lake and API tables by table name: what each DuckDB (and Spark) table came from."""
        self._spark_copies: dict[str, str] = {}
        self._frames = 0
        self.streams = Streams(self.default_duckdb, changed)
        """Live tables (``connect(…, live=True)``): sources kept up to date in DuckDB."""

    # -- connecting ----------------------------------------------------------------------

    def connect(self, target: Any, name: str | None = None, **options: Any) -> Connection:
        """Connect a database URL, a file or glob, a named connection, a Spark, lake or API
        URL, or a DataFrame; it becomes the current connection. With ``live=True``, a
        PostgreSQL URL, a growing file, a folder or an API is kept up to date (`connect_live`)."""
        if options.pop("live", False):
            return self.connect_live(target, name, **options)
        if targets.is_frame(target):
            connection = self._register_frame(target, name)
        elif isinstance(target, str) or hasattr(target, "__fspath__"):
            text = os.fspath(target)
            named = None if targets.is_url(text) else targets.resolve_named(text)
            external = self._open_external(text, name, **options)
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

    def connect_live(self, target: Any, name: str | None = None, **options: Any) -> Connection:
        """Keep a replica of `target`'s tables in the embedded DuckDB, as ``NAME.table``, up
        to date in a background thread (see ``sources.streams``): a PostgreSQL URL
        (``tables``, ``keep_slot``, ``slot``), an NDJSON/CSV file that grows or a folder of
        Parquet files (``table``), an HTTP API (``interval``, ``key`` and the API options)."""
        from aiser_jupyter.security.secrets import register_url

        text = os.path.expandvars(os.fspath(target))
        if targets.is_url(text):
            register_url(text)
        default = targets.url_name(text) if targets.is_url(text) else "live"
        schema = targets.identifier(name or default)
        if schema == self.settings.default_connection or schema in self.connections:
            raise ConnectionFailed(f"{schema!r} names a connection already: choose another name")
        if external_kind(text) == "api":
            options.setdefault("table", table_name(text))
        stream = self.streams.start(text, schema, **options)
        duck = self.default_duckdb()
        duck.tables.extend(t for t in stream.tables if t not in duck.tables)
        return self._made_current(duck)

    def connect_spark(
        self,
        url: str = "local[*]",
        name: str = "spark",
        *,
        config: dict[str, str] | None = None,
        progress: Any = True,
    ) -> Connection:
        """Connect Spark: ``local[*]`` (default), a master URL, or Spark Connect ``sc://…``."""
        from aiser_jupyter.engines.spark import SparkEngine

        engine = SparkEngine(url, config=config, progress=progress)
        return self._made_current(Connection(name, engine, url))

    def connect_lake(
        self, target: str, name: str | None = None, *, spark: str | None = None, **options: Any
    ) -> Connection:
        """Read an Iceberg, Delta or Hudi table (`sources.lakes.open_lake` has the URLs) as a
        DuckDB table, and as a table of the Spark connection `spark` when given."""
        return self._made_current(self._add_lake(target, name, {**options, "spark": spark}))

    def connect_api(
        self, url: str, name: str | None = None, *, spark: str | None = None, **options: Any
    ) -> Connection:
        """Read an HTTP JSON endpoint as a DuckDB table (see `sources.http_api.HttpApi` for
        `records`, `paginate`, `rate_limit`, `retries`, `cache_ttl` …)."""
        return self._made_current(self._add_api(url, name, {**options, "spark": spark}))

    def refresh_external(self, name: str) -> list[str]:
        """Read a lake table's newest snapshot, or an API's pages afresh, and show the new rows
        under the same name; what changed in the lake's schema."""
        source = self.external_tables.get(name)
        if source is None:
            known = ", ".join(sorted(self.external_tables)) or "none"
            raise ConnectionFailed(f"No lake or API table named {name!r} (known: {known})")
        if hasattr(source, "refresh"):
            notes = source.refresh()
            data = source.to_arrow()
        else:
            notes, data = [], source.fetch(refresh=True)
        spark = self._spark_copies.get(name)
        self._register(name, source, data, spark if spark in self.connections else None)
        self.changed("connections")
        return notes

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

    # -- which connection ----------------------------------------------------------------

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
        """Close a connection, or stop a live stream (its replication slot dropped unless
        it was connected with ``keep_slot=True``)."""
        if name in self.streams:
            self.streams.stop(name)
            self.changed("connections")
            return
        connection = self.connection(name)
        connection.close()
        del self.connections[connection.name]
        if self.current == connection.name:
            self.current = None
        self.changed("connections")

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

    def close(self) -> None:
        self.streams.close()
        for connection in self.connections.values():
            connection.close()
        self.connections.clear()
        self.current = None

    # -- inside ----------------------------------------------------------------------------

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

    def _made_current(self, connection: Connection) -> Connection:
        self._replace(connection)
        self.current = connection.name
        self.changed("connections")
        return connection

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

    def _open_external(
        self, target: str, name: str | None = None, **options: Any
    ) -> Connection | None:
        """A Spark, lake or API URL's Connection (not yet made current); None when `target`
        is none of those."""
        kind = external_kind(target)
        if kind == "spark":
            from aiser_jupyter.engines.spark import SparkEngine

            return Connection(name or "spark", SparkEngine(target, **options), target)
        if kind == "lake":
            return self._add_lake(target, name, options)
        if kind == "api":
            return self._add_api(target, name, options)
        return None

    def _add_lake(self, target: str, name: str | None, options: dict[str, Any]) -> Connection:
        from aiser_jupyter.sources.lakes import first_line, open_lake

        spark = options.pop("spark", None)
        lake = open_lake(target, **options)
        try:
            data = lake.to_arrow()
        except Exception as exc:  # a format feature the library cannot read, a lost file
            message = f"Cannot read {lake.format} table {target}: {first_line(exc)}"
            raise ConnectionFailed(message) from None
        return self._register(name or table_name(target), lake, data, spark)

    def _add_api(self, url: str, name: str | None, options: dict[str, Any]) -> Connection:
        from aiser_jupyter.sources.http_api import HttpApi

        spark = options.pop("spark", None)
        unknown = set(options) - API_OPTIONS
        if unknown:
            raise ConnectionFailed(f"Unknown option(s) for an API: {', '.join(sorted(unknown))}")
        table = name or table_name(url)
        api = HttpApi(url, name=table, **options)
        return self._register(table, api, api.fetch(), spark)

    def _register(self, name: str, source: Any, data: Any, spark: str | None) -> Connection:
        """`data` as table `name` of DuckDB (and of Spark connection `spark`)."""
        spark_engine = self.connection(spark).engine if spark else None
        if spark_engine is not None and spark_engine.kind != "spark":
            raise ConnectionFailed(f"{spark!r} is a {spark_engine.kind} connection, not Spark")
        duck = self.default_duckdb()
        duck.engine.register(name, data)  # type: ignore[attr-defined]
        if name not in duck.tables:
            duck.tables.append(name)
        if spark_engine is not None:
            spark_engine.register(name, data)  # type: ignore[attr-defined]
            self._spark_copies[name] = spark
        self.external_tables[name] = source
        return duck


def quoted(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")
