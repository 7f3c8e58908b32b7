"""Which connection owns each table a query reads, and what that table is (a database table,
a view over files, files read directly), from the connections' own catalogs.

Catalogs are read once per connection and kept; a name found nowhere makes the router read
them all again once (a table created since), so the common path costs no query.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiser_jupyter.errors import QueryError

if TYPE_CHECKING:
    from sqlglot import exp

    from aiser_jupyter.engines.connection import Connection

FILE_FUNCTIONS = ("ReadParquet", "ReadCSV")
FILE_FUNCTION_NAMES = {"read_parquet", "read_csv", "read_csv_auto", "read_json", "read_json_auto"}
FILE_SUFFIXES = (".parquet", ".csv", ".tsv", ".json", ".ndjson", ".jsonl", ".gz")
VIEWS_SQL = "SELECT schema_name, view_name, sql FROM duckdb_views() WHERE NOT internal"


class RoutingError(QueryError):
    """The router could not place a query: an ambiguous table, an engine that cannot run it."""


@dataclass(frozen=True)
class Source:
    """One table a query reads, and where it lives."""

    connection: str
    kind: str
    """``table`` (a database's own, a registered frame) or ``files`` (a view or a function
    reading files)."""
    name: str
    schema: str | None = None
    files: tuple[str, ...] = ()
    """The files (or globs) a ``files`` source reads: its version is theirs."""
    columns: tuple[tuple[str, str], ...] = field(default=(), compare=False, repr=False)
    """(name, type) of each column, when the catalog knows them."""

    @property
    def label(self) -> str:
        return ".".join(p for p in (self.connection, self.schema, self.name) if p)


@dataclass
class Catalog:
    """One connection's tables: (schema, table) lowercase -> the names as the database spells
    them, with their column names and types; and, for DuckDB, the views that read files."""

    tables: dict[tuple[str, str], tuple[str, str, dict[str, str]]] = field(default_factory=dict)
    file_views: dict[tuple[str, str], tuple[str, ...]] = field(default_factory=dict)

    @classmethod
    def read(cls, connection: Connection) -> Catalog:
        catalog = cls()
        columns = connection.columns().to_pylist()
        for row in columns:
            key = (str(row["schema"]).lower(), str(row["table"]).lower())
            entry = catalog.tables.setdefault(key, (row["schema"], row["table"], {}))
            entry[2][str(row["column"])] = str(row["type"])
        if connection.kind == "duckdb":
            for schema, view, sql in connection.engine.con.sql(VIEWS_SQL).fetchall():  # type: ignore[attr-defined]
                files = files_of_view(sql)
                if files:
                    catalog.file_views[(schema.lower(), view.lower())] = files
        return catalog

    def find(self, name: str, schema: str | None) -> tuple[str, str] | None:
        """The (schema, table) key of `name`, preferring the default schemas when unqualified."""
        lowered = name.lower()
        if schema is not None:
            key = (schema.lower(), lowered)
            return key if key in self.tables else None
        found = [key for key in self.tables if key[1] == lowered]
        if len(found) > 1:
            found = [key for key in found if key[0] in ("main", "public")] or found
        return found[0] if found else None

    def source(self, connection: str, key: tuple[str, str]) -> Source:
        schema, table, columns = self.tables[key]
        files = self.file_views.get(key, ())
        kind = "files" if files else "table"
        return Source(connection, kind, table, schema, files, tuple(columns.items()))


def files_of_view(sql: str) -> tuple[str, ...]:
    """The files a DuckDB view reads through read_parquet/read_csv/…, if that is all it reads."""
    import sqlglot
    from sqlglot import exp

    try:
        tree = sqlglot.parse_one(sql, read="duckdb")
    except sqlglot.errors.SqlglotError:
        return ()
    query = tree.expression if isinstance(tree, exp.Create) else tree
    if not isinstance(query, exp.Expression):
        return ()
    files: list[str] = []
    for table in query.find_all(exp.Table):
        found = file_paths(table)
        if not found:
            return ()
        files.extend(found)
    return tuple(files)


def file_paths(table: exp.Table) -> tuple[str, ...]:
    """The paths a table reference reads when it is a file (``'x.parquet'``, read_parquet(…))."""
    from sqlglot import exp

    this = table.this
    if isinstance(this, exp.Identifier):
        name = this.name
        return (name,) if this.quoted and name.lower().endswith(FILE_SUFFIXES) else ()
    is_reader = type(this).__name__ in FILE_FUNCTIONS or (
        isinstance(this, exp.Anonymous) and str(this.this).lower() in FILE_FUNCTION_NAMES
    )
    if not is_reader:
        return ()
    first = this.this if isinstance(this.this, exp.Expression) else None
    first = first or (this.expressions or [None])[0]
    if first is None:
        return ()
    # A list of paths may be written [...] or list_value(...) (as DuckDB keeps a view's SQL).
    return tuple(e.name for e in first.find_all(exp.Literal) if e.is_string)


def resolve(
    table: exp.Table,
    addressed: Connection,
    connections: dict[str, Connection],
    catalogs: dict[str, Catalog],
    host: str,
) -> Source | None:
    """The source `table` names: a connection named in it (``pg.orders``, ``pg.public.orders``),
    else the addressed connection when it has the table, else the one connection that has it.
    None when no catalog knows it (the addressed database will say what it thinks)."""
    from sqlglot import exp

    files = file_paths(table)
    if files:
        return Source(host, "files", table.sql("duckdb"), None, files)
    if not table.name or not isinstance(table.this, exp.Identifier):
        return None
    schema = table.db or None
    named = table.catalog or (schema if schema in connections else None)
    if named in connections:
        if named == table.db:
            schema = None
        key = catalogs[named].find(table.name, schema)
        if key is None:
            raise RoutingError(f"{named} has no table {table.name!r}.")
        return catalogs[named].source(named, key)
    if table.catalog:
        return None
    key = catalogs[addressed.name].find(table.name, schema)
    if key is not None:
        return catalogs[addressed.name].source(addressed.name, key)
    owners = [
        (name, found)
        for name, catalog in catalogs.items()
        if name != addressed.name and (found := catalog.find(table.name, schema)) is not None
    ]
    if len(owners) > 1:
        names = ", ".join(name for name, _ in owners)
        raise RoutingError(
            f"{table.name} is in several connections ({names}): write {owners[0][0]}."
            f"{table.name} (connection.table), or run the cell on one of them."
        )
    if owners:
        name, key = owners[0]
        return catalogs[name].source(name, key)
    return None
