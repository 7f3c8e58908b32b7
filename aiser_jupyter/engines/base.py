"""The contract every engine meets, so the Session never cares which database it talks to."""

from __future__ import annotations

import contextlib
import threading
from collections.abc import Callable, Mapping, Sequence
from typing import TYPE_CHECKING, Any, Literal, Protocol

from aiser_jupyter.errors import QueryTimeout

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

    def execute_read_only(
        self, sql: str, params: Params = None, *, limit: int, timeout: float
    ) -> pa.Table:
        """Run one query so that it cannot change anything: at most `limit` rows, and
        `QueryTimeout` after `timeout` seconds (the connection keeps working).

        This is the second wall: callers check the text with `security.check_sql` first, and
        the engine still refuses to write if that check missed something.
        """
        ...

    def columns(self) -> pa.Table:
        """Every user table's columns: schema, table, column, type."""
        ...

    def close(self) -> None: ...


class TimeLimit:
    """Calls `stop` once, from a timer thread, if the `with` block runs past `seconds`.

    `fired` says whether it did, so that the error the database raises when stopped can be
    told apart from the user's own interrupt.
    """

    def __init__(self, seconds: float, stop: Callable[[], object]):
        self.seconds = seconds
        self.fired = False
        self._stop = stop
        self._lock = threading.Lock()
        self._done = False
        self._timer = threading.Timer(seconds, self._fire)
        self._timer.daemon = True

    def __enter__(self) -> TimeLimit:
        self._timer.start()
        return self

    def __exit__(self, *exc_info: object) -> None:
        with self._lock:
            self._done = True
        self._timer.cancel()

    def _fire(self) -> None:
        with self._lock:
            if self._done:
                return
            self.fired = True
            with contextlib.suppress(Exception):
                self._stop()


def timed_out(seconds: float, sql: str | None = None) -> QueryTimeout:
    """The error for a query stopped at its time limit."""
    return QueryTimeout(
        f"Query stopped after its {seconds:g} s time limit; the connection still works.", sql=sql
    )


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
