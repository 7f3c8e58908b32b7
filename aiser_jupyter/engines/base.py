"""The contract every engine meets, so the Session never cares which database it talks to."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

if TYPE_CHECKING:
    import pyarrow as pa

Params = Sequence[Any] | Mapping[str, Any] | None

COLUMNS_SQL = """
SELECT table_schema AS schema, table_name AS "table", column_name AS "column",
       data_type AS type
FROM information_schema.columns
WHERE table_schema NOT IN ('information_schema', 'pg_catalog')
ORDER BY table_schema, table_name, ordinal_position
"""
"""Tables and columns, for engines that speak information_schema (DuckDB, PostgreSQL)."""


class Engine(Protocol):
    """Runs SQL for one connection.

    `paramstyle` says how bound parameters are written in the SQL an engine gets:
    ``"dollar"`` (``$1``, with a list of values) or ``"named"`` (``:name``, with a dict).
    """

    kind: str
    dialect: str
    paramstyle: Literal["dollar", "named"]

    def execute(self, sql: str, params: Params = None, limit: int | None = None) -> pa.Table | None:
        """Run `sql`; the rows as Arrow (at most `limit`), or None for a statement without rows."""
        ...

    def columns(self) -> pa.Table:
        """Every user table's columns: schema, table, column, type."""
        ...

    def close(self) -> None: ...


def take(batches: Any, limit: int | None) -> pa.Table:
    """Read an Arrow stream into a table, stopping after `limit` rows."""
    import pyarrow as pa

    if limit is None:
        return batches.read_all()
    kept, count = [], 0
    for batch in batches:
        kept.append(batch.slice(0, limit - count))
        count += kept[-1].num_rows
        if count >= limit:
            break
    return pa.Table.from_batches(kept, schema=batches.schema)
