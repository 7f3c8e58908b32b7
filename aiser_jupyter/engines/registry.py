"""What the router knows about each kind of engine, so that a new engine plugs in by registering.

An engine kind is matched by ``engine.kind`` (``"duckdb"``, ``"postgresql"``, ``"spark"``…).
The router reads four things from it: whether it can host a federated query (read Arrow
from other engines and join it), whether it reads files itself (``engine.read(name, files)``
makes them a table, as SparkEngine.read does), how much it can scan before a bigger engine
should take over, and how big a table of it is (a size estimate hook, called only when a
bigger engine is connected).
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiser_jupyter.engines.catalog import Source
    from aiser_jupyter.engines.connection import Connection

GIB = 1 << 30

SizeEstimate = Callable[[Any, str | None, str], "int | None"]
"""(engine, schema, table) -> bytes the table holds, or None when unknown."""


@dataclass(frozen=True)
class EngineKind:
    """One kind of engine, as the router sees it."""

    name: str
    federates: bool = False
    """Hosts a query over several sources, the others streamed in as Arrow (DuckDB)."""
    reads_files: bool = False
    """Reads Parquet/CSV/JSON files itself, through ``engine.read(name, files)``."""
    max_bytes: int | None = None
    """Estimated input beyond which an engine of a larger `scale` is preferred, when one is
    connected; None: no limit."""
    scale: int = 0
    """Bigger means more data: the router moves a too-big query to the largest connected."""
    estimate: SizeEstimate | None = None
    """How big a table of this engine is; None: unknown (never moves a query by size)."""


def _duckdb_size(engine: Any, schema: str | None, table: str) -> int | None:
    rows = engine.con.execute(
        "SELECT estimated_size * column_count * 8 FROM duckdb_tables() "
        "WHERE table_name = $1 AND ($2 IS NULL OR schema_name = $2)",
        [table, schema],
    ).fetchall()
    return int(rows[0][0]) if rows else None


def _postgres_size(engine: Any, schema: str | None, table: str) -> int | None:
    from sqlglot import exp

    name = exp.table_(table, db=schema, quoted=True).sql("postgres")
    found = engine.execute("SELECT pg_total_relation_size(to_regclass($1))", [name])
    value = None if found is None or found.num_rows == 0 else found.column(0)[0].as_py()
    return None if value is None else int(value)


_KINDS: dict[str, EngineKind] = {}


def register_engine(kind: EngineKind) -> None:
    """Teach the router a kind of engine (or replace what it knew of it)."""
    _KINDS[kind.name] = kind


def engine_kind(name: str) -> EngineKind:
    """What the router knows of `name`; an unknown kind is an ordinary database."""
    return _KINDS.get(name) or EngineKind(name, scale=1)


register_engine(
    EngineKind(
        "duckdb", federates=True, reads_files=True, max_bytes=20 * GIB, estimate=_duckdb_size
    )
)
register_engine(EngineKind("postgresql", scale=1, estimate=_postgres_size))
register_engine(EngineKind("sqlalchemy", scale=1))
register_engine(EngineKind("spark", reads_files=True, scale=2))


def estimate(sources: list[Source], connections: dict[str, Connection]) -> int | None:
    """Bytes the sources hold: file sizes, else each engine kind's estimate; None if unknown."""
    import glob
    import os

    total = 0
    for source in sources:
        if source.kind == "files":
            paths = [p for pattern in source.files for p in glob.glob(os.path.expanduser(pattern))]
            total += sum(os.path.getsize(p) for p in paths)
            continue
        engine = connections[source.connection].engine
        hook = engine_kind(engine.kind).estimate
        size = hook(engine, source.schema, source.name) if hook else None
        if size is None:
            return None
        total += size
    return total
