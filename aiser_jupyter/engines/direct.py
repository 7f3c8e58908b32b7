"""Client/server databases, queried where they are.

PostgreSQL goes through ADBC, so rows arrive as Arrow columns rather than Python
tuples (the reason `%%sql` is an order of magnitude faster than cursor-based
magics). Every other SQLAlchemy dialect goes through SQLAlchemy. One open
connection is kept per Connection and reused; when the server drops it, the next
query opens a new one and says so.
"""

from __future__ import annotations

import contextlib
import functools
import warnings
from collections.abc import Callable, Iterator, Sequence
from typing import TYPE_CHECKING, Any

from aiser_jupyter.engines.base import COLUMNS_SQL, Params, TimeLimit, take, timed_out
from aiser_jupyter.errors import ConnectionFailed, QueryError, QueryInterrupted
from aiser_jupyter.security.secrets import redact, redact_url

if TYPE_CHECKING:
    import pyarrow as pa


class ReconnectedWarning(UserWarning):
    """The server had dropped the connection; a new one was opened."""


QUERY_CANCELED = "57014"
IN_FAILED_TRANSACTION = "25P02"
CANCELLING = "canceling statement due to"
CANCELLED = "Query interrupted; PostgreSQL cancelled it."


class PostgresEngine:
    """PostgreSQL through adbc-driver-postgresql (extra ``postgres``)."""

    kind = "postgresql"
    dialect = "postgres"
    paramstyle = "dollar"

    def __init__(self, url: str):
        self.url = libpq_url(url)
        self._conn = self._open()

    def _open(self) -> Any:
        try:
            from adbc_driver_postgresql import dbapi
        except ImportError:
            raise ConnectionFailed(
                "PostgreSQL needs the ADBC driver: pip install 'aiser-jupyter[postgres]'"
            ) from None
        try:
            return dbapi.connect(self.url, autocommit=True)
        except dbapi.Error as exc:
            raise ConnectionFailed(
                f"Cannot connect to {redact_url(self.url)}: {server_message(exc)}"
            ) from None

    def execute(self, sql: str, params: Params = None, limit: int | None = None) -> pa.Table | None:
        rerun = is_read_only(sql, self.dialect)
        return self._call(sql, lambda: self._run(sql, params, limit), rerun=rerun)

    def execute_read_only(
        self, sql: str, params: Params = None, *, limit: int, timeout: float
    ) -> pa.Table:
        """Run `sql` inside ``BEGIN READ ONLY`` with a ``statement_timeout``, rolled back after:
        the server itself refuses any write, whatever the text turns out to do."""
        run = functools.partial(self._run_read_only, sql, params, limit, timeout)
        return self._call(sql, run, rerun=True, timeout=timeout)

    def _call(
        self, sql: str, run: Callable[[], Any], *, rerun: bool, timeout: float | None = None
    ) -> Any:
        """`run`, with the server's errors worded for a user; when the server dropped the
        connection, a new one, and `run` again only if `rerun` says that is harmless."""
        import pyarrow as pa
        from adbc_driver_postgresql import dbapi

        try:
            return run()
        except KeyboardInterrupt:
            raise QueryInterrupted(CANCELLED) from None
        # An error while rows stream in comes from pyarrow, with the server's text but no state.
        except (dbapi.Error, pa.ArrowException, OSError) as exc:
            text = str(exc)
            if getattr(exc, "sqlstate", None) == QUERY_CANCELED or CANCELLING in text:
                if timeout is not None and "statement timeout" in text:
                    raise timed_out(timeout, sql) from None
                raise QueryInterrupted(CANCELLED) from None
            if self._alive():
                raise QueryError(server_message(exc), sql=sql) from None
        self._conn = self._open()
        if not rerun:
            raise QueryError(
                "The connection to the server was lost and has been re-established. "
                "The statement may not have run: run it again."
            )
        warnings.warn(
            "The connection to the server was lost and has been re-established; "
            "the query was run again.",
            ReconnectedWarning,
            stacklevel=3,
        )
        try:
            return run()
        except dbapi.Error as exc:
            raise QueryError(server_message(exc), sql=sql) from None

    def _run_read_only(self, sql: str, params: Params, limit: int, timeout: float) -> pa.Table:
        with self._conn.cursor() as cursor:
            cursor.execute("BEGIN TRANSACTION READ ONLY")
            try:
                cursor.execute(f"SET LOCAL statement_timeout = {max(1, round(timeout * 1000))}")
                cursor.execute(sql, params if params else None)
                if not cursor.description:
                    raise QueryError("Only a query can run read-only: this returned no rows.")
                reader = cursor.fetch_record_batch()
                try:
                    table = take(reader, limit)
                finally:
                    reader.close()
            finally:
                self._roll_back(cursor)
        return numeric_as_float(table)

    def _roll_back(self, cursor: Any) -> None:
        """End the read-only transaction; if even that fails, close the connection rather than
        leave later statements inside it (the next query opens a new one)."""
        try:
            cursor.execute("ROLLBACK")
        except Exception:
            with contextlib.suppress(Exception):
                self._conn.close()
            raise

    def _run(self, sql: str, params: Params, limit: int | None) -> pa.Table | None:
        with self._conn.cursor() as cursor:
            cursor.execute(sql, params if params else None)
            if not cursor.description:
                return None
            if limit is None:
                table = cursor.fetch_arrow_table()
            else:
                table = take(cursor.fetch_record_batch(), limit)
        return numeric_as_float(table)

    def _alive(self) -> bool:
        """Whether the server still answers; a connection inside a failed transaction does
        (it refuses queries until ROLLBACK, which is the user's, not a reconnection's)."""
        try:
            with self._conn.cursor() as cursor:
                cursor.execute("SELECT 1")
                cursor.fetchall()
            return True
        except Exception as exc:
            return getattr(exc, "sqlstate", None) == IN_FAILED_TRANSACTION

    def columns(self) -> pa.Table:
        table = self.execute(COLUMNS_SQL)
        assert table is not None
        return table

    def close(self) -> None:
        with contextlib.suppress(Exception):
            self._conn.close()


class SqlAlchemyEngine:
    """Any other database SQLAlchemy has a dialect for (extra ``databases``)."""

    kind = "sqlalchemy"
    paramstyle = "named"

    def __init__(self, url: str):
        try:
            import sqlalchemy
        except ImportError:
            raise ConnectionFailed(
                "This database needs SQLAlchemy: pip install 'aiser-jupyter[databases]'"
            ) from None
        try:
            self.engine = sqlalchemy.create_engine(url, pool_pre_ping=True)
            self.dialect = sqlglot_dialect(self.engine.dialect.name)
            with self.engine.connect():
                pass
        except Exception as exc:
            raise ConnectionFailed(
                f"Cannot connect to {redact_url(url)}: {redact(str(exc))}"
            ) from None

    def execute(self, sql: str, params: Params = None, limit: int | None = None) -> pa.Table | None:
        import sqlalchemy

        with sqlalchemy_errors(sql), self.engine.begin() as conn:
            result = conn.execute(sqlalchemy.text(sql), dict(params or {}))
            if not result.returns_rows:
                return None
            columns = list(result.keys())
            rows = result.fetchall() if limit is None else result.fetchmany(limit)
        return rows_as_arrow(columns, rows)

    def execute_read_only(
        self, sql: str, params: Params = None, *, limit: int, timeout: float
    ) -> pa.Table:
        """SQLAlchemy has no portable read-only mode, so the guard checks the text here as
        well; the transaction is always rolled back, SQLite runs with ``query_only`` on, and
        the time limit interrupts drivers that can be interrupted (sqlite3's ``interrupt``,
        psycopg's ``cancel``). Other drivers get no time limit."""
        import sqlalchemy

        from aiser_jupyter.security.guard import check_sql

        check_sql(sql, self.dialect)
        sqlite = self.engine.dialect.name == "sqlite"
        with self.engine.connect() as conn:
            driver = conn.connection.dbapi_connection
            stop = getattr(driver, "interrupt", None) or getattr(driver, "cancel", None)
            try:
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = ON")
                with (
                    TimeLimit(timeout, stop or (lambda: None)) as clock,
                    sqlalchemy_errors(sql, clock),
                ):
                    result = conn.execute(sqlalchemy.text(sql), dict(params or {}))
                    if not result.returns_rows:
                        raise QueryError("Only a query can run read-only: this returned no rows.")
                    columns = list(result.keys())
                    rows = result.fetchmany(limit)
            finally:
                conn.rollback()
                if sqlite:
                    conn.exec_driver_sql("PRAGMA query_only = OFF")
        return rows_as_arrow(columns, rows)

    def columns(self) -> pa.Table:
        import pyarrow as pa
        import sqlalchemy

        inspector = sqlalchemy.inspect(self.engine)
        rows = [
            {
                "schema": schema or "",
                "table": table,
                "column": col["name"],
                "type": str(col["type"]),
            }
            for schema in [inspector.default_schema_name]
            for table in inspector.get_table_names(schema=schema)
            for col in inspector.get_columns(table, schema=schema)
        ]
        names = ["schema", "table", "column", "type"]
        return (
            pa.Table.from_pylist(rows)
            if rows
            else pa.table({n: pa.array([], pa.string()) for n in names})
        )

    def close(self) -> None:
        self.engine.dispose()


@contextlib.contextmanager
def sqlalchemy_errors(sql: str, clock: TimeLimit | None = None) -> Iterator[None]:
    """SQLAlchemy's exceptions as the database's own words; a stop by `clock` as its limit."""
    import sqlalchemy

    try:
        yield
    except sqlalchemy.exc.SQLAlchemyError as exc:
        if clock is not None and clock.fired:
            raise timed_out(clock.seconds, sql) from None
        if isinstance(exc, sqlalchemy.exc.DBAPIError):
            raise QueryError(redact(str(exc.orig)), sql=sql) from None
        raise QueryError(redact(str(exc).split("\n")[0]), sql=sql) from None


def rows_as_arrow(columns: list[str], rows: Sequence[Any]) -> pa.Table:
    import pyarrow as pa

    if not rows:
        return pa.table({name: pa.array([], pa.null()) for name in columns})
    return pa.Table.from_pylist([dict(zip(columns, row, strict=True)) for row in rows])


def numeric_as_float(table: pa.Table) -> pa.Table:
    """PostgreSQL ``numeric`` arrives as opaque text; analysts expect numbers, as read_sql gives."""
    import pyarrow as pa

    for index, column in enumerate(table.schema):
        if getattr(column.type, "type_name", None) == "numeric":
            storage = table.column(index).cast(column.type.storage_type)
            table = table.set_column(
                index, pa.field(column.name, pa.float64()), storage.cast(pa.float64())
            )
    return table


def libpq_url(url: str) -> str:
    """``postgresql+adbc://`` and friends to the plain URI libpq understands."""
    scheme, sep, rest = url.partition("://")
    return f"postgresql{sep}{rest}" if scheme.startswith("postgres") else url


def server_message(exc: Exception) -> str:
    """The database's own words and SQLSTATE, without the driver's framing or any secret."""
    text = str(exc)
    status, sep, rest = text.partition(": ")
    if sep and status.replace("_", "").isalpha() and status.isupper():
        text = rest  # ADBC's status code, e.g. "NOT_FOUND: "
    text = text.partition("\n\nQuery was:")[0]
    for framing in ("Failed to prepare query: ", "Failed to connect: ", "[libpq] "):
        text = text.replace(framing, "")
    text = text.strip()
    state = getattr(exc, "sqlstate", None)
    if state:
        text = f"{text} (SQLSTATE {state})"
    return redact(text)


def is_read_only(sql: str, dialect: str) -> bool:
    """True when every statement is a query, so running it twice changes nothing."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = sqlglot.parse(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return False
    return all(isinstance(s, exp.Query) for s in statements if s is not None)


def sqlglot_dialect(sqlalchemy_name: str) -> str:
    """SQLAlchemy's dialect name to sqlglot's."""
    return {"postgresql": "postgres", "mssql": "tsql", "sqlite": "sqlite"}.get(
        sqlalchemy_name, sqlalchemy_name
    )
