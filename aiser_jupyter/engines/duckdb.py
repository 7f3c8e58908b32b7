"""The embedded default engine: DuckDB, Arrow-native, also where files and DataFrames live.

Read-only queries run on a second, in-memory DuckDB started with external access off (no
files, URLs, extensions or attached databases, and no way to switch them back on: the
setting is database-wide and locked), because the engine's own database must keep reading
files. That sandbox sees only the tables a query names: each is resolved in this
database's catalog (never by DuckDB's replacement scans, which read ``FROM x.csv`` as a
file) and mounted as an Arrow stream from a cursor here, with the columns the query names.
Nothing is copied up front and nothing the query does reaches this database.

The price: those columns cross into the sandbox as Arrow with no filter pushed down, so a
point lookup in a 10M-row table costs a scan (~250 ms rather than 1 ms); an aggregate over
it ~3x the direct time; a small query ~5-15 ms, most of it catalog look-ups.
"""

from __future__ import annotations

import contextlib
import threading
from collections import Counter
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any

import duckdb

from aiser_jupyter.engines.base import COLUMNS_SQL, Params, TimeLimit, take, timed_out
from aiser_jupyter.engines.progress import QueryWatch
from aiser_jupyter.errors import QueryError, QueryInterrupted

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

DEFAULT_CONFIG = {
    # Never download an extension at run time: a missing one is a clear error, not a network call.
    "autoinstall_known_extensions": "false",
    # Find DataFrames by variable name in the notebook, not only in the calling function.
    "python_scan_all_frames": "true",
}

SANDBOX_CONFIG = {
    "enable_external_access": "false",
    "autoload_known_extensions": "false",
    "autoinstall_known_extensions": "false",
    "python_enable_replacements": "false",
}
SHARED_SETTINGS = (
    "TimeZone",
    "Calendar",
    "default_collation",
    "default_order",
    "default_null_order",
    "threads",
    "memory_limit",
)
"""Settings that change answers or resources: the sandbox takes them from the engine."""

CATALOG_SQL = """
SELECT database_name, schema_name, table_name FROM duckdb_tables()
UNION ALL SELECT database_name, schema_name, view_name FROM duckdb_views()
"""
MOUNT = "__aiser_source_{}"
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
        # DuckDB tracks progress (QueryWatch shows it after a second) but prints nothing
        # itself: its own bar would land on the process's stdout. Where a setting is refused,
        # the bar is off.
        try:
            self.con.execute("SET enable_progress_bar = true")
            self.con.execute("SET enable_progress_bar_print = false")
        except duckdb.Error:
            with contextlib.suppress(duckdb.Error):
                self.con.execute("SET enable_progress_bar = false")
        self.watch = QueryWatch("DuckDB", self.con.query_progress)
        self._frames: dict[str, Any] = {}
        self._sandbox_con: duckdb.DuckDBPyConnection | None = None
        self._sandbox_settings: list[tuple[str, str]] = []
        self._sandbox_lock = threading.Lock()

    def execute(self, sql: str, params: Params = None, limit: int | None = None) -> pa.Table | None:
        self.watch.begin()
        try:
            with duckdb_errors(sql):
                relation = self.con.sql(sql, params=params)
                if relation is None:
                    return None
                if limit is not None:
                    return take(relation.to_arrow_reader(), limit)
                return relation.to_arrow_table()
        finally:
            self.watch.end()

    def execute_read_only(
        self, sql: str, params: Params = None, *, limit: int, timeout: float
    ) -> pa.Table:
        """Run one query in the sandbox (see the module's docstring): at most `limit` rows,
        stopped after `timeout` seconds.

        What the sandbox lacks fails with an error rather than a different answer: temporary
        tables, macros, user types and DataFrames not registered with `register`.
        """
        tree = parse_one(sql)
        with self._sandbox_lock:
            sandbox = self._sandbox()
            mounted: list[str] = []
            cursors: list[duckdb.DuckDBPyConnection] = []

            def stop() -> None:
                sandbox.interrupt()
                for cursor in list(cursors):
                    cursor.interrupt()

            clock = TimeLimit(timeout, stop)
            finished = False
            try:
                with clock, duckdb_errors(sql, clock):
                    text = self._mount(tree, sql, sandbox, mounted, cursors)
                    relation = sandbox.sql(text, params=params)
                    if relation is None:
                        raise QueryError("Only a query can run read-only: this returned no rows.")
                    table = take(relation.to_arrow_reader(), limit)
                finished = True
                return table
            finally:
                for name in mounted:
                    with contextlib.suppress(duckdb.Error):
                        sandbox.unregister(name)
                for cursor in cursors:
                    cursor.close()
                # After an error, a stop, or a statement that was no query: a fresh sandbox.
                if not (finished and is_query(tree)) or clock.fired:
                    self._drop_sandbox()

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
        """Make a DataFrame or Arrow table queryable as `name` (no copy), read-only queries too."""
        self.con.register(name, data)
        self._frames[name.lower()] = data

    def close(self) -> None:
        self._drop_sandbox()
        self.con.close()

    def _sandbox(self) -> duckdb.DuckDBPyConnection:
        """The sandbox, started again when the settings it copies have changed."""
        settings = self._shared_settings()
        if self._sandbox_con is None or settings != self._sandbox_settings:
            self._drop_sandbox()
            sandbox = duckdb.connect(":memory:", config=dict(SANDBOX_CONFIG))
            for name, value in settings:
                sandbox.execute(f"SET {name} = $1", [value])
            with contextlib.suppress(duckdb.Error):  # refused in Jupyter, as in __init__
                sandbox.execute("SET enable_progress_bar = false")
            sandbox.execute("SET lock_configuration = true")
            self._sandbox_con, self._sandbox_settings = sandbox, settings
        return self._sandbox_con

    def _drop_sandbox(self) -> None:
        if self._sandbox_con is not None:
            with contextlib.suppress(duckdb.Error):
                self._sandbox_con.close()
        self._sandbox_con = None

    def _shared_settings(self) -> list[tuple[str, str]]:
        query = ", ".join(f"current_setting('{name}')" for name in SHARED_SETTINGS)
        [values] = self.con.sql(f"SELECT {query}").fetchall()
        return list(zip(SHARED_SETTINGS, map(str, values), strict=True))

    def _mount(
        self,
        tree: exp.Expression,
        sql: str,
        sandbox: duckdb.DuckDBPyConnection,
        mounted: list[str],
        cursors: list[duckdb.DuckDBPyConnection],
    ) -> str:
        """Mount every table `tree` reads in the sandbox, under its own name where that is
        unambiguous; `sql` with qualified names (``main.sales``) cut to the mounted one."""
        tables = source_tables(tree)
        if not tables:
            return sql
        catalog = {
            tuple(part.lower() for part in row): row for row in self.con.sql(CATALOG_SQL).fetchall()
        }
        path = self._search_path()
        targets = [resolve(table, catalog, path) for table in tables]
        names = mount_names(targets, reserved=cte_names(tree))
        wanted = None if needs_every_column(tree, tables) else identifiers(tree)
        for target in dict.fromkeys(targets):
            sandbox.register(names[target], self._source(target, wanted, cursors))
            mounted.append(names[target])
        edits = [(table, names[target]) for table, target in zip(tables, targets, strict=True)]
        return splice(sql, edits)

    def _source(
        self, target: tuple[str, str, str], wanted: set[str] | None, cursors: list[Any]
    ) -> Any:
        """What the sandbox scans for `target`: a registered frame itself, or a `Stream` of
        the `wanted` columns of a table or view here (every column when `wanted` is None)."""
        db, _, name = target
        if db == "temp":
            frame = self._frames.get(name.lower())
            if frame is None:
                raise QueryError(
                    f"{name} is a temporary table or view, which read-only queries cannot "
                    "read; register DataFrames with register()."
                )
            return frame
        qualified = ".".join(quote(part) for part in target)
        columns = self.con.sql(f"SELECT * FROM {qualified}").columns
        kept = [c for c in columns if wanted is None or c.lower() in wanted]
        select = ", ".join(map(quote, kept)) or "true AS aiser_row"
        return Stream(self.con, f"SELECT {select} FROM {qualified}", cursors)

    def _search_path(self) -> list[tuple[str, str]]:
        """Where DuckDB looks for an unqualified name, as (database, schema) pairs, in order."""
        [(path, database, schema)] = self.con.sql(
            "SELECT current_setting('search_path'), current_database(), current_schema()"
        ).fetchall()
        entries = []
        for entry in filter(None, (e.strip() for e in str(path).split(","))):
            db, _, sch = entry.rpartition(".")
            entries.append(((db or database).lower(), sch.lower()))
        entries = entries or [(database.lower(), schema.lower())]
        return [("temp", "main"), *entries, ("system", "main"), ("system", "pg_catalog")]


class Stream:
    """A table of the engine's database as the sandbox sees it: every scan (a self-join scans
    twice) opens a fresh Arrow stream on a new cursor, kept in `cursors` to be stopped and closed.
    """

    def __init__(self, con: duckdb.DuckDBPyConnection, select: str, cursors: list[Any]):
        self._con, self._select, self._cursors = con, select, cursors

    def __arrow_c_stream__(self, requested_schema: object = None) -> object:
        cursor = self._con.cursor()
        self._cursors.append(cursor)
        return cursor.sql(self._select).to_arrow_reader().__arrow_c_stream__(requested_schema)


@contextlib.contextmanager
def duckdb_errors(sql: str, clock: TimeLimit | None = None) -> Iterator[None]:
    """DuckDB's exceptions as the errors a user reads; a stop by `clock` as its time limit."""
    try:
        yield
    except QueryError:
        raise
    # An error while rows stream out (a failed cast, an interrupt) comes as pyarrow's OSError.
    except (duckdb.Error, RuntimeError, OSError) as exc:
        if clock is not None and clock.fired:
            raise timed_out(clock.seconds, sql) from None
        # DuckDB turns the kernel's SIGINT into InterruptException or a plain RuntimeError.
        text = str(exc)
        if isinstance(exc, duckdb.InterruptException) or text == "Query interrupted":
            raise QueryInterrupted(INTERRUPTED) from None
        if text.startswith("INTERRUPT Error"):
            raise QueryInterrupted(INTERRUPTED) from None
        if isinstance(exc, (duckdb.Error, OSError)):
            raise QueryError(text, sql=sql) from None
        raise


def parse_one(sql: str) -> exp.Expression:
    """The one statement in `sql`, parsed, or a QueryError."""
    import sqlglot

    try:
        statements = [s for s in sqlglot.parse(sql, read="duckdb") if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        raise QueryError(f"Could not parse the query: {exc}", sql=sql) from None
    if len(statements) != 1:
        raise QueryError("A read-only run takes exactly one statement.", sql=sql)
    return statements[0]


def is_query(tree: exp.Expression) -> bool:
    from aiser_jupyter.security.guard import QUERIES, ROOT_STATEMENTS

    return isinstance(tree, (*QUERIES, *ROOT_STATEMENTS))


def cte_names(tree: exp.Expression) -> set[str]:
    from sqlglot import exp

    return {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}


def source_tables(tree: exp.Expression) -> list[exp.Table]:
    """The tables `tree` names: not table functions, and not CTEs (any CTE name counts, so a
    table shadowed somewhere fails in the sandbox rather than being read in a CTE's place)."""
    from sqlglot import exp

    ctes = cte_names(tree)
    return [
        table
        for table in tree.find_all(exp.Table)
        if isinstance(table.this, exp.Identifier)
        and (table.args.get("db") or table.name.lower() not in ctes)
    ]


def needs_every_column(tree: exp.Expression, tables: list[exp.Table]) -> bool:
    """Whether the query may read columns it does not name (``*``, COLUMNS, NATURAL JOIN,
    PIVOT's implicit grouping, a whole row as a value, DESCRIBE)."""
    from sqlglot import exp

    from aiser_jupyter.security.guard import QUERIES, function_name

    if not isinstance(tree, QUERIES):
        return True
    names = {t.name.lower() for t in tables} | {t.alias.lower() for t in tables if t.alias}
    for node in tree.walk():
        if isinstance(node, exp.Star) and not isinstance(node.parent, exp.Count):
            return True
        if isinstance(node, exp.Pivot):
            return True
        if isinstance(node, exp.Func) and function_name(node) == "columns":
            return True
        if isinstance(node, exp.Join) and str(node.args.get("method") or "").upper() == "NATURAL":
            return True
        if isinstance(node, exp.Column) and not node.table and node.name.lower() in names:
            return True
    return False


def identifiers(tree: exp.Expression) -> set[str]:
    """Every name written in the query, lowercase: a superset of the columns it reads."""
    from sqlglot import exp

    return {node.name.lower() for node in tree.find_all(exp.Identifier, exp.Var)}


def resolve(
    table: exp.Table, catalog: dict[tuple[str, ...], tuple[str, ...]], path: list[tuple[str, str]]
) -> tuple[str, str, str]:
    """The (database, schema, name) a table reference means, found as DuckDB's binder finds
    it; a name in no catalog is an error, never a file."""
    parts = tuple(part.name.lower() for part in table.parts)
    if len(parts) == 1:
        candidates = [(db, schema, parts[0]) for db, schema in path]
    elif len(parts) == 2:
        databases = list(dict.fromkeys(db for db, _ in path))
        candidates = [(db, parts[0], parts[1]) for db in databases] + [(parts[0], "main", parts[1])]
    else:
        candidates = [parts]
    for candidate in candidates:
        if candidate in catalog:
            db, schema, name = catalog[candidate]
            return db, schema, name
    shown = ".".join(part.name for part in table.parts)
    raise QueryError(f"Table {shown} does not exist (read-only queries read tables and views).")


def mount_names(
    targets: list[tuple[str, str, str]], reserved: set[str]
) -> dict[tuple[str, str, str], str]:
    """A sandbox name per table: its own, unless two tables read share it or a CTE has it."""
    distinct = list(dict.fromkeys(targets))
    counts = Counter(name.lower() for _, _, name in distinct)
    return {
        target: MOUNT.format(index)
        if counts[target[2].lower()] > 1 or target[2].lower() in reserved
        else target[2]
        for index, target in enumerate(distinct)
    }


def splice(sql: str, edits: list[tuple[exp.Table, str]]) -> str:
    """`sql` with each table reference that differs from its mounted name replaced by it;
    a renamed table keeps its old name as an alias, so that ``sales.amount`` still works."""
    from sqlglot import exp

    replacements = []
    for table, name in edits:
        if len(table.parts) == 1 and table.name.lower() == name.lower():
            continue
        spans = [(part.meta.get("start"), part.meta.get("end")) for part in table.parts]
        if any(start is None or end is None for start, end in spans):
            raise QueryError(f"Could not locate the table {table.sql('duckdb')} in the query.")
        renamed = table.name.lower() != name.lower() and not table.alias
        if renamed and not isinstance(table.parent, (exp.From, exp.Join)):
            raise QueryError(f"Two tables named {table.name} cannot be told apart here.")
        text = f"{quote(name)} AS {quote(table.name)}" if renamed else quote(name)
        replacements.append((spans[0][0], spans[-1][1] + 1, text))
    for start, end, text in sorted(replacements, reverse=True):
        sql = sql[:start] + text + sql[end:]
    return sql


def quote(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")
