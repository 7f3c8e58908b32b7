"""Where memory is kept: a SQLite file in WAL mode (the default) or a PostgreSQL database.

Both hold one table, ``aiser_memory``, read and written by `Memory` with the same
portable SQL (``?`` placeholders, ``RETURNING``). They differ only in what cannot be
portable: the schema, full-text ranking (SQLite FTS5 BM25 with porter stemming;
PostgreSQL ``ts_rank`` over an English ``tsvector``) and how an erase is made
physical. Conversation turns are recalled by recency, so they are not indexed.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator, Sequence
from contextlib import AbstractContextManager, contextmanager
from pathlib import Path
from typing import Any, Protocol

from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.atrest import connect_sqlite, sqlite_errors
from aiser_jupyter.security.secrets import redact, redact_url

COLUMNS = (
    "id, kind, text, term, role, conversation_id, sql, query, worked, error, redacted, created_at,"
    " connection, confirmed_at"
)
BUSY_TIMEOUT_S = 30.0
_TABLE_COLUMNS = """
    kind TEXT NOT NULL, text TEXT NOT NULL, term TEXT, role TEXT, conversation_id TEXT,
    sql TEXT, query TEXT, worked INTEGER, error TEXT,
    redacted INTEGER NOT NULL DEFAULT 0, created_at TEXT NOT NULL"""
_INDEXES = [
    "CREATE INDEX aiser_memory_kind ON aiser_memory (kind, id)",
    "CREATE INDEX aiser_memory_conversation ON aiser_memory (conversation_id, id)",
]
# Version 2: where an episode's SQL ran, and when the user confirmed the answer (reused then).
_FEEDBACK = [
    "ALTER TABLE aiser_memory ADD COLUMN connection TEXT",
    "ALTER TABLE aiser_memory ADD COLUMN confirmed_at TEXT",
]
# Version 3: whose entry it is (GDPR's data subject: the requester, else the OS user).
_SUBJECT = [
    "ALTER TABLE aiser_memory ADD COLUMN subject TEXT",
    "CREATE INDEX aiser_memory_subject ON aiser_memory (subject, id)",
]

# One list of statements per schema version: entry i takes a store from version i to i + 1.
SQLITE_MIGRATIONS = [
    [
        f"CREATE TABLE aiser_memory (id INTEGER PRIMARY KEY AUTOINCREMENT, {_TABLE_COLUMNS})",
        *_INDEXES,
        "CREATE VIRTUAL TABLE aiser_memory_fts USING fts5(text, term, sql, content='aiser_memory',"
        " content_rowid='id', tokenize='porter unicode61 remove_diacritics 2')",
        "CREATE TRIGGER aiser_memory_indexed AFTER INSERT ON aiser_memory WHEN new.kind <> 'turn'"
        " BEGIN INSERT INTO aiser_memory_fts (rowid, text, term, sql)"
        " VALUES (new.id, new.text, new.term, new.sql); END",
        "CREATE TRIGGER aiser_memory_unindexed AFTER DELETE ON aiser_memory WHEN old.kind <> 'turn'"
        " BEGIN INSERT INTO aiser_memory_fts (aiser_memory_fts, rowid, text, term, sql)"
        " VALUES ('delete', old.id, old.text, old.term, old.sql); END",
    ],
    _FEEDBACK,
    _SUBJECT,
]
POSTGRES_MIGRATIONS = [
    [
        "CREATE TABLE aiser_memory (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY,"
        f" {_TABLE_COLUMNS}, tsv tsvector GENERATED ALWAYS AS (CASE WHEN kind = 'turn' THEN NULL"
        " ELSE setweight(to_tsvector('english', text), 'A') || setweight(to_tsvector('english',"
        " coalesce(term, '') || ' ' || coalesce(sql, '')), 'B') END) STORED)",
        *_INDEXES,
        "CREATE INDEX aiser_memory_tsv ON aiser_memory USING gin (tsv)",
    ],
    _FEEDBACK,
    _SUBJECT,
]
_POSTGRES_LOCK = 0x61697365726D656D  # pg_advisory_xact_lock key: one memory writer at a time


class MemoryFailed(AiserError):
    """The memory store could not be opened, read or written."""


class Backend(Protocol):
    """What `Memory` needs from a store: SQL, transactions, ranked matching, erasing."""

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]: ...

    def transaction(self) -> AbstractContextManager[None]: ...

    def match(
        self, terms: list[str], kinds: Sequence[str], question_only: bool, worked_only: bool, k: int
    ) -> list[tuple[Any, ...]]:
        """Rows (`COLUMNS` then a score, higher is closer) matching any of `terms`, best first."""
        ...

    def forget(self, entry_id: int) -> bool: ...

    def clear(self) -> int: ...

    def close(self) -> None: ...


def migrate(backend: Backend, steps: list[list[str]]) -> None:
    """Create or upgrade the schema; the version table says how far a store has come."""
    with backend.transaction():
        backend.fetch("CREATE TABLE IF NOT EXISTS aiser_memory_schema (version INTEGER NOT NULL)")
        version = backend.fetch("SELECT max(version) FROM aiser_memory_schema")[0][0] or 0
        if version > len(steps):
            raise MemoryFailed(
                f"This memory store has schema version {version}, written by a newer "
                f"aiser-jupyter; this one knows up to version {len(steps)}."
            )
        for number, step in enumerate(steps[version:], start=version + 1):
            for statement in step:
                backend.fetch(statement)
            backend.fetch("INSERT INTO aiser_memory_schema (version) VALUES (?)", (number,))


def _kinds_clause(kinds: Sequence[str], worked_only: bool, prefix: str = "") -> str:
    marks = ", ".join("?" * len(kinds))
    return f"{prefix}kind IN ({marks})" + (f" AND {prefix}worked = 1" if worked_only else "")


class SQLiteBackend:
    """A SQLite file in WAL mode: readers never wait, writers queue on a busy timeout.

    Writes run in ``BEGIN IMMEDIATE`` transactions, so a writer takes the lock up front
    and waits its turn instead of failing on a lock upgrade. ``secure_delete`` zeroes
    what is deleted, and erasing checkpoints the WAL so no copy is left behind.
    """

    def __init__(self, path: str):
        self.path = path
        try:
            if path != ":memory:":
                Path(path).parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect_sqlite(
                path, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._wal()
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA secure_delete = ON")
        except (OSError, *sqlite_errors()) as exc:
            raise MemoryFailed(f"Cannot open the memory store {path}: {exc}") from None
        self._lock = threading.RLock()
        migrate(self, SQLITE_MIGRATIONS)

    def _wal(self) -> None:
        """Switch to WAL. Two processes creating the file at once may find it locked, and
        SQLite does not always wait on its busy timeout for this: so wait here."""
        deadline = time.monotonic() + BUSY_TIMEOUT_S
        while True:
            try:
                self._conn.execute("PRAGMA journal_mode = WAL")
                return
            except sqlite_errors() as exc:
                if "locked" not in str(exc) or time.monotonic() > deadline:
                    raise
                time.sleep(0.01)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        with self._lock:
            try:
                return self._conn.execute(sql, tuple(params)).fetchall()
            except sqlite_errors() as exc:
                raise MemoryFailed(f"Memory store {self.path}: {exc}") from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self.fetch("BEGIN IMMEDIATE")
            try:
                yield
            except BaseException:
                self._conn.rollback()
                raise
            self.fetch("COMMIT")

    def match(
        self, terms: list[str], kinds: Sequence[str], question_only: bool, worked_only: bool, k: int
    ) -> list[tuple[Any, ...]]:
        phrases = " OR ".join(f'"{term}"' for term in terms)  # terms are letters and digits only
        expression = f"text : ({phrases})" if question_only else phrases
        columns = ", ".join(f"m.{name.strip()}" for name in COLUMNS.split(","))
        return self.fetch(
            f"SELECT {columns}, -bm25(aiser_memory_fts, 1.0, 0.5, 0.5) AS score"
            " FROM aiser_memory_fts JOIN aiser_memory AS m ON m.id = aiser_memory_fts.rowid"
            f" WHERE aiser_memory_fts MATCH ? AND {_kinds_clause(kinds, worked_only, 'm.')}"
            " ORDER BY score DESC, m.id DESC LIMIT ?",
            (expression, *kinds, k),
        )

    def forget(self, entry_id: int) -> bool:
        """Delete one entry and merge the full-text index, so none of its words stay behind."""
        with self.transaction():
            gone = self.fetch("DELETE FROM aiser_memory WHERE id = ? RETURNING id", (entry_id,))
            if gone:
                self.fetch("INSERT INTO aiser_memory_fts (aiser_memory_fts) VALUES ('optimize')")
        self._checkpoint()
        return bool(gone)

    def clear(self) -> int:
        """Delete everything, empty the full-text index, and rewrite the file without it."""
        with self.transaction():
            count = self.fetch("SELECT count(*) FROM aiser_memory")[0][0]
            self.fetch("DELETE FROM aiser_memory")
            self.fetch("INSERT INTO aiser_memory_fts (aiser_memory_fts) VALUES ('delete-all')")
        self.fetch("VACUUM")
        self._checkpoint()
        return int(count)

    def _checkpoint(self) -> None:
        """Copy the WAL into the database and truncate it: old page images hold erased text."""
        self.fetch("PRAGMA wal_checkpoint(TRUNCATE)")

    def close(self) -> None:
        with self._lock:
            self._conn.close()


class PostgresBackend:
    """A PostgreSQL database through ADBC; writers take a transaction-scoped advisory lock.

    The lock keeps writers one at a time, as in SQLite, so that a schema migration or
    a glossary replacement never interleaves with another client's.
    """

    def __init__(self, url: str):
        from adbc_driver_postgresql import dbapi

        from aiser_jupyter.engines.direct import libpq_url, server_message

        self._error, self._message = dbapi.Error, server_message
        self.url = redact_url(url)
        try:
            self._conn = dbapi.connect(libpq_url(url), autocommit=True)
        except dbapi.Error as exc:
            raise MemoryFailed(
                f"Cannot open the memory store {self.url}: {server_message(exc)}"
            ) from None
        self._lock = threading.RLock()
        migrate(self, POSTGRES_MIGRATIONS)

    def fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        pieces = sql.split("?")  # our own statements: every ? is a placeholder
        numbered = pieces[0] + "".join(f"${i}{piece}" for i, piece in enumerate(pieces[1:], 1))
        with self._lock, self._conn.cursor() as cursor:
            try:
                cursor.execute(numbered, tuple(params) or None)
                return cursor.fetchall() if cursor.description else []
            except self._error as exc:
                message = f"Memory store {self.url}: {self._message(exc)}"
                raise MemoryFailed(redact(message)) from None

    @contextmanager
    def transaction(self) -> Iterator[None]:
        with self._lock:
            self.fetch("BEGIN")
            try:
                self.fetch("SELECT 1 FROM pg_advisory_xact_lock(?)", (_POSTGRES_LOCK,))
                yield
            except BaseException:
                self.fetch("ROLLBACK")
                raise
            self.fetch("COMMIT")

    def match(
        self, terms: list[str], kinds: Sequence[str], question_only: bool, worked_only: bool, k: int
    ) -> list[tuple[Any, ...]]:
        weight = ":A" if question_only else ""  # weight A is the text (the question) alone
        query = " | ".join(f"{term}{weight}" for term in terms)  # letters and digits only
        return self.fetch(
            f"SELECT {COLUMNS}, ts_rank(tsv, q) AS score"
            " FROM aiser_memory, to_tsquery('english', ?) AS q"
            f" WHERE tsv @@ q AND {_kinds_clause(kinds, worked_only)}"
            " ORDER BY score DESC, id DESC LIMIT ?",
            (query, *kinds, k),
        )

    def forget(self, entry_id: int) -> bool:
        with self.transaction():
            gone = self.fetch("DELETE FROM aiser_memory WHERE id = ? RETURNING id", (entry_id,))
        return bool(gone)

    def clear(self) -> int:
        """TRUNCATE gives the table new files and drops the old ones, so rows are not left dead."""
        with self.transaction():
            count = self.fetch("SELECT count(*) FROM aiser_memory")[0][0]
            self.fetch("TRUNCATE aiser_memory")
        return int(count)

    def close(self) -> None:
        with self._lock:
            self._conn.close()
