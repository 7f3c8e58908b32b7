"""The Session's half of Spark, data lakes and HTTP APIs: connecting them and keeping them fresh.

A mixin, like the semantic layer's and the agent's. Lake tables and API tables become
tables of the embedded DuckDB (as Arrow, no copy), and of a Spark connection when one is
named; `external_tables` keeps the objects behind them, whose `version` (a snapshot id, a
Delta version, a fetch time) tells a result cache when their rows changed.
"""

from __future__ import annotations

from pathlib import PurePosixPath
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from aiser_jupyter.errors import ConnectionFailed

if TYPE_CHECKING:
    from collections.abc import Callable

    from aiser_jupyter.config import Settings
    from aiser_jupyter.sources.connection import Connection
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
    if lowered.startswith(("iceberg://", "delta://")):
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


class LakeMethods:
    """Session methods for Spark connections, lake tables and API tables."""

    settings: Settings
    connections: dict[str, Connection]
    current: str | None
    changed: Callable[[str], None]
    default_duckdb: Callable[[], Connection]
    connection: Callable[..., Connection]
    _replace: Callable[[Connection], None]

    @property
    def external_tables(self) -> dict[str, LakeTable | HttpApi]:
        """Lake and API tables by table name: what each DuckDB (and Spark) table came from."""
        return self.__dict__.setdefault("_external_tables", {})

    def open_external(
        self, target: str, name: str | None = None, **options: Any
    ) -> Connection | None:
        """For `Session.connect`: connect a Spark, lake or API URL and return its Connection
        (not yet made current); None when `target` is none of those."""
        kind = external_kind(target)
        if kind == "spark":
            from aiser_jupyter.engines.spark import SparkEngine
            from aiser_jupyter.sources.connection import Connection

            return Connection(name or "spark", SparkEngine(target, **options), target)
        if kind == "lake":
            return self._add_lake(target, name, options)
        if kind == "api":
            return self._add_api(target, name, options)
        return None

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
        from aiser_jupyter.sources.connection import Connection

        engine = SparkEngine(url, config=config, progress=progress)
        return self._made_current(Connection(name, engine, url))

    def connect_lake(
        self, target: str, name: str | None = None, *, spark: str | None = None, **options: Any
    ) -> Connection:
        """Read an Iceberg or Delta table (see `sources.lakes.open_lake` for the URLs) as a
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

    @property
    def _spark_copies(self) -> dict[str, str]:
        """The Spark connection that holds a copy of each lake or API table, if one does."""
        return self.__dict__.setdefault("_spark_copy_names", {})

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

    def _made_current(self, connection: Connection) -> Connection:
        self._replace(connection)
        self.current = connection.name
        self.changed("connections")
        return connection
