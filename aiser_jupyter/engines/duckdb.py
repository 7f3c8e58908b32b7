"""The embedded default engine: DuckDB, Arrow-native, also where files and DataFrames live."""

from __future__ import annotations

import contextlib
from typing import TYPE_CHECKING, Any

import duckdb

from aiser_jupyter.engines.base import COLUMNS_SQL, Params, take
from aiser_jupyter.errors import QueryError, QueryInterrupted

if TYPE_CHECKING:
    import pyarrow as pa

DEFAULT_CONFIG = {
    # Never download an extension at run time: a missing one is a clear error, not a network call.
    "autoinstall_known_extensions": "false",
    # Find DataFrames by variable name in the notebook, not only in the calling function.
    "python_scan_all_frames": "true",
}


INTERRUPTED = "Query interrupted; DuckDB stopped it."


class DuckDBEngine:
    kind = "duckdb"
    dialect = "duckdb"
    paramstyle = "dollar"

    def __init__(self, database: str = ":memory:", read_only: bool = False):
        self.database = database
        try:
            self.con = duckdb.connect(database, read_only=read_only, config=dict(DEFAULT_CONFIG))
        except duckdb.Error as exc:
            raise QueryError(f"Cannot open DuckDB database {database!r}: {exc}") from None
        # Outside Jupyter, DuckDB's text progress bar would land on the process's stdout; in
        # Jupyter DuckDB refuses the setting (it draws with ipywidgets when they exist).
        with contextlib.suppress(duckdb.Error):
            self.con.execute("SET enable_progress_bar = false")

    def execute(self, sql: str, params: Params = None, limit: int | None = None) -> pa.Table | None:
        try:
            relation = self.con.sql(sql, params=params)
            if relation is None:
                return None
            if limit is not None:
                return take(relation.to_arrow_reader(), limit)
            return relation.to_arrow_table()
        except duckdb.InterruptException:
            raise QueryInterrupted(INTERRUPTED) from None
        except duckdb.Error as exc:
            raise QueryError(str(exc), sql=sql) from None
        except RuntimeError as exc:
            # DuckDB turns the kernel's SIGINT into this plain RuntimeError.
            if str(exc) == "Query interrupted":
                raise QueryInterrupted(INTERRUPTED) from None
            raise

    def columns(self) -> pa.Table:
        return self.con.sql(COLUMNS_SQL).to_arrow_table()

    def store(self, name: str, data: Any, *, append: bool = False) -> None:
        """Copy a DataFrame or Arrow table into table `name` (replaced, or appended to)."""
        from sqlglot import exp

        table = exp.to_identifier(name, quoted=True).sql(dialect="duckdb")
        statement = (
            f"INSERT INTO {table} SELECT * FROM incoming_"
            if append
            else f"CREATE OR REPLACE TABLE {table} AS SELECT * FROM incoming_"
        )
        self.con.register("incoming_", data)
        try:
            self.con.execute(statement)
        finally:
            self.con.unregister("incoming_")

    def register(self, name: str, data: Any) -> None:
        """Make a DataFrame or Arrow table queryable as `name` (no copy)."""
        self.con.register(name, data)

    def close(self) -> None:
        self.con.close()
