"""A stream's tables in the embedded DuckDB, and where the stream had got to.

Each stream writes through its own cursor (DuckDB connections are not shared between
threads), one DuckDB transaction per batch: the rows and the stream's position
(``_aiser_streams.positions``) commit together, so a crash leaves either both or neither,
and a restarted stream goes on from the position with nothing lost or applied twice.

Keyed changes (change data capture) arrive as each key's last state in the batch: the
batch deletes every key it touched and inserts the rows that still exist, which is the
same as applying the changes one by one, in order, in a fraction of the statements.
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import duckdb
    import pyarrow as pa

POSITIONS = '"_aiser_streams"."positions"'


@dataclass(frozen=True)
class Column:
    name: str
    type: str
    """The DuckDB type it is stored as."""
    parse: str = "CAST({} AS {type})"
    """How a text value of it becomes that type (``{}``: the value)."""

    def from_text(self, value_sql: str) -> str:
        return self.parse.format(value_sql, type=self.type)


@dataclass
class Spec:
    """A replicated table: where it lives in DuckDB, its columns, and its key columns."""

    schema: str
    name: str
    columns: list[Column]
    key: list[str]

    @property
    def qualified(self) -> str:
        return f"{quote(self.schema)}.{quote(self.name)}"

    @property
    def column_list(self) -> str:
        """``(a, b, …)``: inserts name their columns (a column added later comes last)."""
        return f"({', '.join(quote(c.name) for c in self.columns)})"

    @property
    def label(self) -> str:
        """The name queries write, lowercase (the change events use it)."""
        return f"{self.schema}.{self.name}".lower()


@dataclass
class Patch:
    """An update whose unchanged large values the source did not send: only `values`."""

    values: dict[str, object]


@dataclass
class TableChanges:
    """A batch's changes to one table: emptied first when `truncated`, then each key's last
    state (a row of text values, None when deleted, or a Patch)."""

    spec: Spec
    truncated: bool = False
    rows: dict[tuple[object, ...], tuple[object, ...] | Patch | None] = field(default_factory=dict)

    def __len__(self) -> int:
        return len(self.rows)

    def reshape(self, spec: Spec) -> None:
        """The table's columns changed within the batch: its pending rows (and keys) are
        rewritten by column name; a column added since is NULL in them, a dropped one gone."""
        names = [c.name for c in self.spec.columns]
        wanted = [c.name for c in spec.columns]
        self.rows = {
            _by_name(key, self.spec.key, spec.key): (
                _by_name(row, names, wanted) if isinstance(row, tuple) else row
            )
            for key, row in self.rows.items()
        }
        self.spec = spec


class Replica:
    """The DuckDB side of one stream."""

    def __init__(self, con: duckdb.DuckDBPyConnection, stream: str):
        self.con = con
        self.stream = stream
        self.con.execute('CREATE SCHEMA IF NOT EXISTS "_aiser_streams"')
        self.con.execute(
            f"CREATE TABLE IF NOT EXISTS {POSITIONS} "
            "(stream VARCHAR, position VARCHAR, updated TIMESTAMPTZ)"
        )

    @contextmanager
    def transaction(self, position: str | None = None) -> Iterator[duckdb.DuckDBPyConnection]:
        """One DuckDB transaction; the stream's `position` is written in it when given."""
        self.con.execute("BEGIN TRANSACTION")
        try:
            yield self.con
            if position is not None:
                self.con.execute(f"DELETE FROM {POSITIONS} WHERE stream = $1", [self.stream])
                self.con.execute(
                    f"INSERT INTO {POSITIONS} VALUES ($1, $2, now())", [self.stream, position]
                )
            self.con.execute("COMMIT")
        except BaseException:
            self.con.execute("ROLLBACK")
            raise

    def position(self) -> str | None:
        """Where the stream had got to when its last batch committed; None: never started."""
        rows = self.con.execute(
            f"SELECT position FROM {POSITIONS} WHERE stream = $1", [self.stream]
        ).fetchall()
        return rows[0][0] if rows else None

    def forget(self) -> None:
        """Drop the stream's position: a later start copies the tables afresh."""
        self.con.execute(f"DELETE FROM {POSITIONS} WHERE stream = $1", [self.stream])

    def has_table(self, schema: str, name: str) -> bool:
        return bool(
            self.con.execute(
                "SELECT count(*) FROM duckdb_tables() WHERE schema_name = $1 AND table_name = $2",
                [schema, name],
            ).fetchall()[0][0]
        )

    # -- keyed tables (change data capture) ----------------------------------------------

    def create(self, spec: Spec) -> None:
        """`spec`'s table, empty (replacing one there before); inside a transaction."""
        columns = ", ".join(f"{quote(c.name)} {c.type}" for c in spec.columns)
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(spec.schema)}")
        self.con.execute(f"CREATE OR REPLACE TABLE {spec.qualified} ({columns})")

    def load(self, spec: Spec, data: Any) -> int:
        """Insert `data` (Arrow: its columns as `spec` names them, text or native values)."""
        self.con.register("__aiser_load", data)
        try:
            select = ", ".join(c.from_text(f"l.{quote(c.name)}") for c in spec.columns)
            self.con.execute(
                f"INSERT INTO {spec.qualified} {spec.column_list} SELECT {select} "
                "FROM __aiser_load l"
            )
        finally:
            self.con.unregister("__aiser_load")
        return int(self.con.execute(f"SELECT count(*) FROM {spec.qualified}").fetchall()[0][0])

    def align(self, spec: Spec) -> None:
        """Add the columns `spec` has and the table lacks, drop those it no longer has."""
        have = [
            row[0]
            for row in self.con.execute(
                "SELECT column_name FROM duckdb_columns() WHERE schema_name = $1 "
                "AND table_name = $2",
                [spec.schema, spec.name],
            ).fetchall()
        ]
        wanted = {c.name for c in spec.columns}
        for column in spec.columns:
            if column.name not in have:
                self.con.execute(
                    f"ALTER TABLE {spec.qualified} ADD COLUMN {quote(column.name)} {column.type}"
                )
        for name in have:
            if name not in wanted:
                self.con.execute(f"ALTER TABLE {spec.qualified} DROP COLUMN {quote(name)}")

    def apply(self, changes: TableChanges) -> int:
        """One table's share of a batch (inside `transaction`); how many rows it touched."""
        import pyarrow as pa

        spec = changes.spec
        if changes.truncated:
            self.con.execute(f"DELETE FROM {spec.qualified}")
        full = {k: v for k, v in changes.rows.items() if not isinstance(v, Patch)}
        if full:
            keys = pa.table(_text_columns(spec.key, list(full)))
            self._with(
                "__aiser_keys",
                keys,
                f"DELETE FROM {spec.qualified} USING __aiser_keys k WHERE {_key_match(spec, 'k')}",
            )
        rows = [row for row in full.values() if row is not None]
        if rows:
            names = [c.name for c in spec.columns]
            select = ", ".join(c.from_text(f"r.{quote(c.name)}") for c in spec.columns)
            self._with(
                "__aiser_rows",
                pa.table(_text_columns(names, rows)),
                f"INSERT INTO {spec.qualified} {spec.column_list} SELECT {select} "
                "FROM __aiser_rows r",
            )
        for key, patch in changes.rows.items():
            if isinstance(patch, Patch):
                self._patch(spec, key, patch)
        return len(changes.rows) or int(changes.truncated)

    def _patch(self, spec: Spec, key: tuple[object, ...], patch: Patch) -> None:
        columns = {c.name: c for c in spec.columns}
        sets = ", ".join(
            f"{quote(name)} = {columns[name].from_text('$' + str(i + 1))}"
            for i, name in enumerate(patch.values)
        )
        offset = len(patch.values)
        where = " AND ".join(
            f"{quote(name)} = {columns[name].from_text('$' + str(offset + i + 1))}"
            for i, name in enumerate(spec.key)
        )
        self.con.execute(
            f"UPDATE {spec.qualified} SET {sets} WHERE {where}", [*patch.values.values(), *key]
        )

    # -- whole tables (files, folders, APIs) ---------------------------------------------

    def append(self, schema: str, name: str, data: pa.Table) -> int:
        """Add `data`'s rows to the table (made from its columns when missing; columns it
        brings that the table lacks are added first). Inside `transaction`."""
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        target = f"{quote(schema)}.{quote(name)}"
        self.con.register("__aiser_rows", data)
        try:
            if not self.has_table(schema, name):
                self.con.execute(f"CREATE TABLE {target} AS SELECT * FROM __aiser_rows LIMIT 0")
            have = {
                row[0]
                for row in self.con.execute(
                    "SELECT column_name FROM duckdb_columns() WHERE schema_name = $1 "
                    "AND table_name = $2",
                    [schema, name],
                ).fetchall()
            }
            kinds = self.con.execute("DESCRIBE SELECT * FROM __aiser_rows").fetchall()
            for column, kind, *_ in kinds:
                if column not in have:
                    self.con.execute(f"ALTER TABLE {target} ADD COLUMN {quote(column)} {kind}")
            self.con.execute(f"INSERT INTO {target} BY NAME SELECT * FROM __aiser_rows")
        finally:
            self.con.unregister("__aiser_rows")
        return data.num_rows

    def replace(self, schema: str, name: str, data: pa.Table) -> int:
        """The table's rows become `data`'s. Inside `transaction`."""
        self.con.execute(f"CREATE SCHEMA IF NOT EXISTS {quote(schema)}")
        target = f"{quote(schema)}.{quote(name)}"
        self._with(
            "__aiser_rows", data, f"CREATE OR REPLACE TABLE {target} AS SELECT * FROM __aiser_rows"
        )
        return data.num_rows

    def _with(self, name: str, data: Any, statement: str) -> None:
        self.con.register(name, data)
        try:
            self.con.execute(statement)
        finally:
            self.con.unregister(name)

    def close(self) -> None:
        self.con.close()


def _by_name(values: tuple[object, ...], names: list[str], wanted: list[str]) -> tuple[object, ...]:
    found = dict(zip(names, values, strict=True))
    return tuple(found.get(name) for name in wanted)


def _text_columns(names: list[str], rows: list[Any]) -> dict[str, Any]:
    """Columns of text values (the source's text form) as Arrow strings."""
    import pyarrow as pa

    return {
        name: pa.array([row[i] for row in rows], type=pa.string()) for i, name in enumerate(names)
    }


def _key_match(spec: Spec, alias: str) -> str:
    columns = {c.name: c for c in spec.columns}
    return " AND ".join(
        f"{spec.qualified}.{quote(k)} = {columns[k].from_text(f'{alias}.{quote(k)}')}"
        for k in spec.key
    )


def quote(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect="duckdb")
