"""PostgreSQL change data capture into DuckDB, through logical replication.

The server must run with ``wal_level=logical`` and the user needs the REPLICATION
attribute (or to be a superuser) and to own the tables (for the publication). A stream:

1. creates a publication of its tables and a replication slot with the built-in
   ``pgoutput`` plugin (no server package to install), then copies the tables through ADBC
   in one REPEATABLE READ transaction begun after the slot, recording the slot's start as
   its position. Changes committed between the slot and the copy come again from the slot
   and are applied by key, so they land once;
2. polls ``pg_logical_slot_peek_binary_changes`` (whole transactions, in commit order),
   skips transactions at or before its position (applied before a crash, not yet
   confirmed to the slot), folds the rest into each key's last state, and applies them in
   one DuckDB transaction together with the new position;
3. only then advances the slot (``pg_replication_slot_advance``), so a kill at any point
   resumes with nothing lost or doubled.

On disconnect the slot and publication are dropped unless ``keep_slot=True``. Tables need
a primary key or a replica identity (``REPLICA IDENTITY FULL`` keys a table by all its
columns).
"""

from __future__ import annotations

import time
from collections import deque
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.security.secrets import redact_url
from aiser_jupyter.sources import pgoutput
from aiser_jupyter.sources.replica import Column, Patch, Spec, TableChanges
from aiser_jupyter.sources.worker import Stream, TableStatus

if TYPE_CHECKING:
    from aiser_jupyter.sources.replica import Replica

TYPES = {
    16: "BOOLEAN", 20: "BIGINT", 21: "SMALLINT", 23: "INTEGER", 26: "BIGINT", 700: "REAL",
    701: "DOUBLE", 25: "VARCHAR", 1043: "VARCHAR", 1042: "VARCHAR", 19: "VARCHAR",
    1082: "DATE", 1114: "TIMESTAMP", 1184: "TIMESTAMPTZ", 1083: "TIME", 2950: "UUID",
    114: "JSON", 3802: "JSON", 1186: "INTERVAL", 17: "BLOB",
}  # fmt: skip
"""PostgreSQL type oid -> DuckDB type; others are kept as text (VARCHAR)."""
NATIVE = {16, 20, 21, 23, 700, 701, 25, 1043, 1082, 1114, 1184}
"""Types ADBC reads as plain Arrow; the copy asks for the others as text, as the stream
sends them, so both reach DuckDB through the same conversion."""
SESSION = (
    "SET DateStyle = ISO",
    "SET TimeZone = 'UTC'",
    "SET IntervalStyle = postgres",
    "SET extra_float_digits = 3",
)
"""Text forms DuckDB reads back exactly."""
TABLES_SQL = """
SELECT c.oid::int8, n.nspname::text, c.relname::text, a.attname::text, a.atttypid::int8,
       a.atttypmod::int8,
       (c.relreplident = 'f' OR a.attnum = ANY (coalesce(
          (SELECT i.indkey::int2[] FROM pg_index i WHERE i.indrelid = c.oid AND
           CASE WHEN c.relreplident = 'i' THEN i.indisreplident ELSE i.indisprimary END),
          '{}'::int2[]))) AS is_key
FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum > 0 AND NOT a.attisdropped
WHERE c.relkind IN ('r', 'p') AND n.nspname NOT IN ('pg_catalog', 'information_schema')
ORDER BY c.oid, a.attnum
"""
BATCH = 20_000
"""Changes one peek asks for (whole transactions: a big one comes entire)."""


def duck_column(name: str, type_oid: int, modifier: int) -> Column:
    if type_oid == 1700:  # numeric(p, s): the modifier packs both, offset by 4
        precision, scale = ((modifier - 4) >> 16) & 0xFFFF, (modifier - 4) & 0xFFFF
        kind = f"DECIMAL({precision}, {scale})" if 0 < precision <= 38 else "DOUBLE"
        return Column(name, kind)
    if type_oid == 17:  # bytea's text form is \x and hex digits
        return Column(name, "BLOB", "from_hex(substr({}, 3))")
    return Column(name, TYPES.get(type_oid, "VARCHAR"))


class PostgresStream(Stream):
    kind = "postgresql"
    interval = 0.1

    def __init__(
        self,
        url: str,
        name: str,
        replica: Replica,
        changed: Callable[[str], None],
        *,
        tables: list[str] | None = None,
        keep_slot: bool = False,
        slot: str | None = None,
        **loop: float,
    ):
        from aiser_jupyter.engines.direct import libpq_url
        from aiser_jupyter.sources.targets import identifier

        super().__init__(name, replica, changed, **loop)
        self.url = libpq_url(url)
        self.wanted = [t.lower() for t in tables] if tables else None
        self.keep_slot = keep_slot
        self.slot = identifier(slot or f"aiser_{name}")[:63]
        self.position = 0
        self.specs: dict[int, Spec] = {}
        self.origins: dict[int, tuple[str, str, dict[str, int]]] = {}
        """Each streamed table's schema, name and column type oids on the server."""
        self._reshaped: set[int] = set()
        """Tables whose columns changed since DuckDB's copy was last made to match."""
        self.lags: deque[float] = deque(maxlen=100_000)
        """Seconds from each transaction's commit on the server to its commit in DuckDB."""
        self._conn: Any = None
        self.resumed: str | None = None
        """The position the last open resumed from; None when it copied the tables afresh."""

    # -- opening -------------------------------------------------------------------------

    def open(self) -> None:
        self._conn = self._connect()
        [[level]] = self._rows("SELECT current_setting('wal_level')")
        if level != "logical":
            raise ConnectionFailed(
                f"{redact_url(self.url)} has wal_level={level}: change data capture needs "
                "wal_level=logical in postgresql.conf (and a server restart)"
            )
        self.specs = self._describe()
        saved = self.replica.position()
        if saved is not None and self._resumable():
            self.position, self.resumed = pgoutput.lsn_int(saved), saved
            return
        self.resumed = None
        self._copy()

    def _connect(self) -> Any:
        from adbc_driver_postgresql import dbapi

        from aiser_jupyter.engines.direct import server_message

        try:
            conn = dbapi.connect(self.url, autocommit=True)
        except dbapi.Error as exc:
            raise ConnectionFailed(
                f"Cannot connect to {redact_url(self.url)}: {server_message(exc)}"
            ) from None
        with conn.cursor() as cursor:
            for statement in SESSION:
                cursor.execute(statement)
        return conn

    def _rows(self, sql: str) -> list[tuple[Any, ...]]:
        with self._conn.cursor() as cursor:
            cursor.execute(sql)
            return cursor.fetchall() if cursor.description else []

    def _describe(self) -> dict[int, Spec]:
        """The streamed tables' columns and keys, by table oid."""
        found: dict[int, tuple[str, str, list[Column], list[str], dict[str, int]]] = {}
        for oid, schema, table, column, type_oid, modifier, is_key in self._rows(TABLES_SQL):
            entry = found.setdefault(oid, (schema, table, [], [], {}))
            entry[2].append(duck_column(column, type_oid, modifier))
            entry[4][column] = type_oid
            if is_key:
                entry[3].append(column)
        chosen: dict[int, Spec] = {}
        covered: set[str] = set()
        self.origins = {}
        for oid, (schema, table, columns, key, types) in found.items():
            names = {table.lower(), f"{schema}.{table}".lower()}
            if self.wanted is None and schema != "public":
                continue
            if self.wanted is not None and not names & set(self.wanted):
                continue
            if not key:
                raise ConnectionFailed(
                    f"{schema}.{table} has no primary key or replica identity: a live copy "
                    "needs one (or ALTER TABLE … REPLICA IDENTITY FULL)"
                )
            chosen[oid] = Spec(self.name, table, columns, key)
            self.origins[oid] = (schema, table, types)
            covered |= names
        missing = [t for t in self.wanted or [] if t not in covered]
        if missing:
            raise ConnectionFailed(f"No table {', '.join(missing)} in {redact_url(self.url)}")
        if not chosen:
            raise ConnectionFailed(f"No tables to stream in {redact_url(self.url)}")
        names = [s.name.lower() for s in chosen.values()]
        if len(set(names)) < len(names):
            raise ConnectionFailed("Two streamed tables share a name: list one of them only")
        return chosen

    def _resumable(self) -> bool:
        """The slot is still there, the publication has these tables, and so does DuckDB."""
        slots = self._rows(
            f"SELECT 1 FROM pg_replication_slots WHERE slot_name = {_literal(self.slot)}"
        )
        published = self._rows(
            "SELECT (quote_ident(schemaname) || '.' || quote_ident(tablename))::regclass::oid"
            f"::int8 FROM pg_publication_tables WHERE pubname = {_literal(self.slot)}"
        )
        have = all(self.replica.has_table(s.schema, s.name) for s in self.specs.values())
        return bool(slots) and {row[0] for row in published} == set(self.specs) and have

    def _copy(self) -> None:
        """A new publication and slot, then every table as of a snapshot taken after it."""
        slot = _literal(self.slot)
        names = ", ".join(f"{_ident(s)}.{_ident(t)}" for s, t, _ in self.origins.values())
        self._rows(
            f"SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
            f"WHERE slot_name = {slot}"
        )
        self._rows(f"DROP PUBLICATION IF EXISTS {_ident(self.slot)}")
        self._rows(f"CREATE PUBLICATION {_ident(self.slot)} FOR TABLE {names}")
        [[start]] = self._rows(
            f"SELECT lsn::text FROM pg_create_logical_replication_slot({slot}, 'pgoutput')"
        )
        self._rows("BEGIN ISOLATION LEVEL REPEATABLE READ, READ ONLY")
        try:
            with self.replica.transaction(start):
                for oid, spec in self.specs.items():
                    self.replica.create(spec)
                    with self._conn.cursor() as cursor:  # streamed: batches, not the table
                        cursor.execute(self._select(oid, spec))
                        rows = self.replica.load(spec, cursor.fetch_record_batch())
                    self.tables.setdefault(spec.label, TableStatus()).rows_applied += rows
        finally:
            self._rows("COMMIT")
        self.position = pgoutput.lsn_int(start)
        for spec in self.specs.values():
            self.changed(f"data:{spec.label}")

    def _select(self, oid: int, spec: Spec) -> str:
        """The copy's query: a column ADBC reads as plain Arrow as it is, others as text."""
        schema, table, types = self.origins[oid]
        native = {name for name, type_oid in types.items() if type_oid in NATIVE}
        columns = ", ".join(
            _ident(c.name) if c.name in native else f"{_ident(c.name)}::text AS {_ident(c.name)}"
            for c in spec.columns
        )
        return f"SELECT {columns} FROM {_ident(schema)}.{_ident(table)}"

    # -- streaming -----------------------------------------------------------------------

    def poll(self) -> bool:
        with self._conn.cursor() as cursor:
            cursor.execute(
                "SELECT data FROM pg_logical_slot_peek_binary_changes("
                f"{_literal(self.slot)}, NULL, {BATCH}, 'proto_version', '1', "
                f"'publication_names', {_literal(self.slot)})"
            )
            peeked = cursor.fetch_arrow_table()
        if peeked.num_rows == 0:
            self.caught_up()
            self._measure()
            return False
        batch, commits, end = self._fold(peeked.column("data").to_pylist())
        if batch:
            with self.replica.transaction(pgoutput.lsn_text(end)):
                for oid, changes in batch.items():
                    if oid in self._reshaped:
                        self.replica.align(changes.spec)
                    self.replica.apply(changes)
            self._reshaped -= set(batch)
            done = time.time()
            self.lags.extend(done - stamp for stamp in commits)
            for changes in batch.values():
                lag = done - min(commits) if commits else 0.0
                self.applied(changes.spec.label, len(changes), lag)
        self.position = max(self.position, end)
        self._advance(end)
        self._measure()
        return peeked.num_rows >= BATCH

    def _advance(self, end: int) -> None:
        """Tell the slot the replica has everything up to `end` (after DuckDB committed it)."""
        self._rows(
            f"SELECT end_lsn::text FROM pg_replication_slot_advance({_literal(self.slot)}, "
            f"{_literal(pgoutput.lsn_text(end))}::pg_lsn)"
        )

    def _fold(self, messages: list[bytes]) -> tuple[dict[int, TableChanges], list[float], int]:
        """The transactions after the position as each key's last state, per table; their
        commit times; the end of the last transaction seen."""
        batch: dict[int, TableChanges] = {}
        commits: list[float] = []
        end, skip = self.position, False
        for data in messages:
            message = pgoutput.decode(data)
            if isinstance(message, pgoutput.Begin):
                skip = message.final_lsn < self.position
            elif isinstance(message, pgoutput.Commit):
                end = max(end, message.end_lsn)
                if not skip:
                    commits.append(message.commit_time.timestamp())
            elif isinstance(message, pgoutput.Relation):
                self._relation(message, batch)
            elif skip or message is None:
                continue
            elif isinstance(message, pgoutput.Truncate):
                for oid in message.relations:
                    changes = self._changes(batch, oid)
                    changes.truncated = True
                    changes.rows.clear()
            else:
                self._change(message, self._changes(batch, message.relation))
        return batch, commits, end

    def _relation(self, message: pgoutput.Relation, batch: dict[int, TableChanges]) -> None:
        """A table's shape as the stream now sends it (columns added or dropped since)."""
        old = self.specs.get(message.oid)
        name = old.name if old else message.name
        columns = [duck_column(c, *t) for c, t in zip(message.columns, message.types, strict=True)]
        key = [message.columns[i] for i in message.key] or (old.key if old else [])
        spec = Spec(self.name, name, columns, key)
        if old is None or old.columns != columns:
            self._reshaped.add(message.oid)
        self.specs[message.oid] = spec
        if message.oid in batch:
            batch[message.oid].reshape(spec)

    def _changes(self, batch: dict[int, TableChanges], oid: int) -> TableChanges:
        if oid not in batch:
            batch[oid] = TableChanges(self.specs[oid])
        return batch[oid]

    def _change(self, change: pgoutput.Change, changes: TableChanges) -> None:
        spec = changes.spec
        names = [c.name for c in spec.columns]
        index = [names.index(k) for k in spec.key]
        rows = changes.rows
        if change.old_key is not None:
            old_key = tuple(change.old_key[i] for i in index)
            if change.op == "D" or old_key != _key(change, index):
                rows[old_key] = None
        if change.new is None:
            return
        new_key = _key(change, index)
        row = change.new
        if pgoutput.UNCHANGED in row:
            before = rows.get(new_key)
            if isinstance(before, tuple):
                row = tuple(
                    b if v is pgoutput.UNCHANGED else v for v, b in zip(row, before, strict=True)
                )
            else:
                sent = {
                    n: v for n, v in zip(names, row, strict=True) if v is not pgoutput.UNCHANGED
                }
                merged = {**before.values, **sent} if isinstance(before, Patch) else sent
                rows[new_key] = Patch(merged)
                return
        rows[new_key] = row

    def _measure(self) -> None:
        """WAL the slot holds that the replica has not applied yet, in bytes."""
        rows = self._rows(
            "SELECT pg_wal_lsn_diff(pg_current_wal_lsn(), confirmed_flush_lsn)::int8 "
            f"FROM pg_replication_slots WHERE slot_name = {_literal(self.slot)}"
        )
        self.behind = float(rows[0][0]) if rows and rows[0][0] is not None else None

    # -- closing -------------------------------------------------------------------------

    def close(self) -> None:
        conn, self._conn = self._conn, None
        if conn is not None:
            conn.close()

    def finish(self) -> None:
        """Drop the slot and the publication (unless kept), and forget the position."""
        if self.keep_slot:
            return
        self._conn = self._connect()
        try:
            self._rows(
                "SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots "
                f"WHERE slot_name = {_literal(self.slot)}"
            )
            self._rows(f"DROP PUBLICATION IF EXISTS {_ident(self.slot)}")
        finally:
            self.close()
        self.replica.forget()


def _key(change: pgoutput.Change, index: list[int]) -> tuple[object, ...]:
    assert change.new is not None
    return tuple(change.new[i] for i in index)


def _literal(text: str) -> str:
    from sqlglot import exp

    return exp.Literal.string(text).sql(dialect="postgres")


def _ident(name: str) -> str:
    from sqlglot import exp

    return exp.to_identifier(name, quoted=True).sql(dialect="postgres")
