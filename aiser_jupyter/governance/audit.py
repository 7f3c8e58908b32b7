"""The audit log: every query, who ran it, where, what it returned or why it was refused.

Append-only: the database refuses updates and deletes (triggers), and each entry carries a
SHA-256 hash over its content and the previous entry's hash, so an edit made behind the
triggers' back (or a deleted row) shows up in `AuditLog.verify`. SQLite in WAL mode by
default (``$AISER_HOME/audit.db``); a ``postgresql://`` URL keeps it in PostgreSQL (ADBC).
"""

from __future__ import annotations

import hashlib
import json
import threading
import warnings
from collections import deque
from collections.abc import Iterator, Sequence
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError
from aiser_jupyter.governance.ages import parse_age
from aiser_jupyter.governance.shred import (
    PERSONAL,
    SUBJECTS_SQL,
    SubjectKey,
    new_subject_key,
    open_field,
    seal_field,
)
from aiser_jupyter.security.atrest import connect_sqlite, sqlite_errors
from aiser_jupyter.security.context import subject_of
from aiser_jupyter.security.secrets import redact, redact_url

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.security.context import SecurityContext

GENESIS = "0" * 64
FIELDS = (
    "at, who, tenant, groups_, kind, connection, engine, sql, rows_, duration_ms, outcome, reason"
)
_COLUMNS = """at TEXT NOT NULL, who TEXT, tenant TEXT, groups_ TEXT, kind TEXT NOT NULL,
    connection TEXT, engine TEXT, sql TEXT, rows_ BIGINT, duration_ms DOUBLE PRECISION,
    outcome TEXT NOT NULL, reason TEXT, prev_hash TEXT NOT NULL, hash TEXT NOT NULL"""
SQLITE_SCHEMA = [
    f"CREATE TABLE IF NOT EXISTS aiser_audit (id INTEGER PRIMARY KEY AUTOINCREMENT, {_COLUMNS})",
    "CREATE INDEX IF NOT EXISTS aiser_audit_at ON aiser_audit (at)",
    SUBJECTS_SQL,
    "CREATE TRIGGER IF NOT EXISTS aiser_audit_no_update BEFORE UPDATE ON aiser_audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
    "CREATE TRIGGER IF NOT EXISTS aiser_audit_no_delete BEFORE DELETE ON aiser_audit"
    " BEGIN SELECT RAISE(ABORT, 'the audit log is append-only'); END",
]
POSTGRES_SCHEMA = [
    "CREATE TABLE IF NOT EXISTS aiser_audit"
    f" (id bigint GENERATED ALWAYS AS IDENTITY PRIMARY KEY, {_COLUMNS})",
    "CREATE INDEX IF NOT EXISTS aiser_audit_at ON aiser_audit (at)",
    "ALTER TABLE aiser_audit ADD COLUMN IF NOT EXISTS subject TEXT",
    SUBJECTS_SQL,
    "CREATE OR REPLACE FUNCTION aiser_audit_append_only() RETURNS trigger LANGUAGE plpgsql AS"
    " $f$ BEGIN RAISE EXCEPTION 'the audit log is append-only'; END $f$",
    "CREATE OR REPLACE TRIGGER aiser_audit_append_only BEFORE UPDATE OR DELETE ON aiser_audit"
    " FOR EACH ROW EXECUTE FUNCTION aiser_audit_append_only()",
]
_POSTGRES_LOCK = 0x6169736572617564  # one writer at a time keeps the hash chain a chain
BUSY_TIMEOUT_S = 30.0


class AuditFailed(AiserError):
    """The audit log could not be opened, written or read, or it was tampered with."""


@dataclass(frozen=True)
class AuditEntry:
    """One audited query. `outcome` is ``allowed``, ``refused`` (a policy or the SQL guard
    said no; `reason` says why) or ``failed`` (the database raised; `reason` is its error)."""

    id: int
    at: str
    user: str | None
    tenant: str | None
    groups: str | None
    kind: str
    connection: str | None
    engine: str | None
    sql: str | None
    rows: int | None
    duration_ms: float | None
    outcome: str
    reason: str | None
    hash: str


def redact_sql(text: str) -> str:
    """SQL with registered secrets hidden, and passwords in URLs written as string literals
    (``ATTACH 'postgresql://u:pw@h/db'``) shown as ``***``."""
    if "://" not in text:  # no URL, no literal to look for: spare the parse
        return redact(text)
    import sqlglot
    from sqlglot import exp

    try:
        literals = [
            node.this
            for statement in sqlglot.parse(text, error_level=sqlglot.ErrorLevel.IGNORE)
            if statement is not None
            for node in statement.find_all(exp.Literal)
            if node.is_string and "://" in node.this
        ]
    except sqlglot.errors.SqlglotError:
        literals = []
    for literal in literals:
        text = text.replace(literal, redact_url(literal))
    return redact(text)


WRITE_BATCH = 500
"""Entries the background writer puts in one transaction at most."""
WRITE_INTERVAL_S = 0.25
"""How often the background writer looks for entries (a `flush` wakes it at once)."""


def _values(
    kind: str,
    sql: str | None,
    *,
    context: SecurityContext | None = None,
    connection: str | None = None,
    engine: str | None = None,
    rows: int | None = None,
    duration: float | None = None,
    outcome: str = "allowed",
    reason: str | None = None,
    at: str | None = None,
) -> list[Any]:
    """One entry's columns, secrets redacted, in the order of FIELDS."""
    return [
        at or datetime.now(timezone.utc).isoformat(timespec="microseconds"),
        context.user if context else None,
        context.tenant if context else None,
        ",".join(context.groups) if context and context.groups else None,
        kind,
        connection,
        engine,
        None if sql is None else redact_sql(sql),
        rows,
        None if duration is None else round(duration * 1000, 3),
        outcome,
        None if reason is None else redact(reason),
    ]


def _digest(prev: str, values: Sequence[Any]) -> str:
    body = json.dumps([prev, *values], default=str, separators=(",", ":"))
    return hashlib.sha256(body.encode()).hexdigest()


class AuditLog:
    """An append-only, hash-chained log of queries (`record`, `entries`, `export`, `verify`)."""

    def __init__(self, target: str | Path):
        self.target = str(target)
        self._lock = threading.RLock()
        self._pending: deque[tuple[str, str | None, dict[str, Any]]] = deque()
        self._wake = threading.Event()
        self._written = threading.Condition()
        self._busy = False
        self._closing = False
        self._writer: threading.Thread | None = None
        self._subject_keys: dict[tuple[str, str], SubjectKey] = {}
        self.failures: list[str] = []
        """Entries the background writer could not write (why), for `flush` to report."""
        if self.target.startswith(("postgresql://", "postgres://")):
            self._open_postgres()
        else:
            self._open_sqlite()

    def _open_sqlite(self) -> None:
        self.shown = self.target
        try:
            if self.target != ":memory:":
                Path(self.target).parent.mkdir(parents=True, exist_ok=True)
            self._conn: Any = connect_sqlite(
                self.target, timeout=BUSY_TIMEOUT_S, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA synchronous = NORMAL")
            self._conn.execute("PRAGMA secure_delete = ON")
        except (OSError, *sqlite_errors()) as exc:
            raise AuditFailed(f"Cannot open the audit log {self.target}: {exc}") from None
        self._errors: tuple[type[Exception], ...] = sqlite_errors()
        self._begin, self._mark = "BEGIN IMMEDIATE", "?"
        with self._transaction():
            for statement in SQLITE_SCHEMA:
                self._fetch(statement)
            names = [row[1] for row in self._fetch("PRAGMA table_info(aiser_audit)")]
            if "subject" not in names:  # a log from before personal fields were sealed
                self._fetch("ALTER TABLE aiser_audit ADD COLUMN subject TEXT")

    def _open_postgres(self) -> None:
        from adbc_driver_postgresql import dbapi

        from aiser_jupyter.engines.direct import libpq_url, server_message

        self.shown = redact_url(self.target)
        try:
            self._conn = dbapi.connect(libpq_url(self.target), autocommit=True)
        except dbapi.Error as exc:
            raise AuditFailed(
                redact(f"Cannot open the audit log {self.shown}: {server_message(exc)}")
            ) from None
        self._errors, self._begin, self._mark = (dbapi.Error,), "BEGIN", "$"
        with self._transaction():
            self._fetch("SELECT 1 FROM pg_advisory_xact_lock(?)", (_POSTGRES_LOCK,))
            for statement in POSTGRES_SCHEMA:
                self._fetch(statement)

    def _fetch(self, sql: str, params: Sequence[Any] = ()) -> list[tuple[Any, ...]]:
        args: Any = tuple(params)
        if self._mark == "$":  # our own statements: every ? is a placeholder
            pieces = sql.split("?")
            sql = pieces[0] + "".join(f"${i}{p}" for i, p in enumerate(pieces[1:], 1))
            args = args or None
        with self._lock:
            try:
                cursor = self._conn.cursor()
                try:
                    cursor.execute(sql, args)
                    return cursor.fetchall() if cursor.description else []
                finally:
                    cursor.close()
            except self._errors as exc:
                raise AuditFailed(redact(f"Audit log {self.shown}: {exc}")) from None

    @contextmanager
    def _transaction(self) -> Iterator[None]:
        with self._lock:
            self._fetch(self._begin)
            try:
                yield
            except BaseException:
                self._fetch("ROLLBACK")
                raise
            self._fetch("COMMIT")

    def record(self, kind: str, sql: str | None, **fields: Any) -> AuditEntry:
        """Append one entry now; `fields` as `_values` takes them (context, connection,
        engine, rows, duration in seconds, outcome, reason, at). Secrets are redacted."""
        return self._append([(kind, sql, fields)])[0]

    def _append(self, items: Sequence[tuple[str, str | None, dict[str, Any]]]) -> list[AuditEntry]:
        """Entries chained and written in one transaction."""
        rows = [_values(kind, sql, **fields) for kind, sql, fields in items]
        marks = ", ".join("?" * (len(rows[0]) + 3))
        written = []
        with self._transaction():
            if self._mark == "$":
                self._fetch("SELECT 1 FROM pg_advisory_xact_lock(?)", (_POSTGRES_LOCK,))
            last = self._fetch("SELECT hash FROM aiser_audit ORDER BY id DESC LIMIT 1")
            prev = last[0][0] if last else GENESIS
            for values in rows:
                stored = self._sealed(values)
                digest = _digest(prev, stored)
                (entry_id,) = self._fetch(
                    f"INSERT INTO aiser_audit ({FIELDS}, subject, prev_hash, hash)"
                    f" VALUES ({marks}) RETURNING id",
                    (*stored, prev, digest),
                )[0]
                written.append(AuditEntry(int(entry_id), *values, digest))
                prev = digest
        return written

    def _sealed(self, values: list[Any]) -> list[Any]:
        """An entry's values as stored: personal fields sealed with the key of its subject
        (the user, else the OS user) and day, the subject's id last."""
        who = values[1] or subject_of(None)
        key = self._subject_key(who, values[0][:10])
        stored = list(values)
        for position in PERSONAL:
            stored[position] = seal_field(key.key, stored[position])
        return [*stored, key.subject]

    def _subject_key(self, who: str, day: str) -> SubjectKey:
        """The key of `who` on `day`, made on their first entry of the day."""
        found = self._subject_keys.get((who, day))
        if found is None:
            rows = self._fetch(
                "SELECT subject, key FROM aiser_audit_subjects WHERE who = ? AND day = ?",
                (who, day),
            )
            if rows:
                found = SubjectKey(rows[0][0], who, day, bytes.fromhex(rows[0][1]))
            else:
                found = new_subject_key(who, day)
                self._fetch(
                    "INSERT INTO aiser_audit_subjects (subject, who, day, key) VALUES (?, ?, ?, ?)",
                    (found.subject, who, day, found.key.hex()),
                )
            self._subject_keys[(who, day)] = found
        return found

    def erase(self, who: str) -> int:
        """Destroy every key of `who` (crypto-shredding): their entries stay in the chain, their
        personal fields read ``[erased]`` for ever. How many entries that made unreadable."""
        return self._shred("who = ?", (who,))

    def retire(self, before: datetime | timedelta | str) -> int:
        """Destroy the keys of the days before `before` (retention), as `erase` does."""
        return self._shred("day < ?", (_since(before)[:10],))

    def _shred(self, where: str, params: tuple[Any, ...]) -> int:
        self.flush()
        with self._transaction():
            subjects = self._fetch(
                f"SELECT subject FROM aiser_audit_subjects WHERE {where}", params
            )
            count = 0
            for (subject,) in subjects:
                count += self._fetch(
                    "SELECT count(*) FROM aiser_audit WHERE subject = ?", (subject,)
                )[0][0]
            self._fetch(f"DELETE FROM aiser_audit_subjects WHERE {where}", params)
        self._subject_keys.clear()
        if self._mark == "?":
            self._fetch("PRAGMA wal_checkpoint(TRUNCATE)")  # no old page keeps a key
        return int(count)

    def submit(self, kind: str, sql: str | None, **fields: Any) -> None:
        """`record` later, on a background thread that wakes a few times a second: a query
        neither waits for the log's disk nor wakes a thread (the time is taken now).
        Readers of the log `flush` first."""
        fields.setdefault("at", datetime.now(timezone.utc).isoformat(timespec="microseconds"))
        self._pending.append((kind, sql, fields))
        if self._writer is None:
            with self._lock:
                if self._writer is None:
                    self._writer = threading.Thread(
                        target=self._write, name="aiser-audit", daemon=True
                    )
                    self._writer.start()

    def flush(self) -> None:
        """Wait until every submitted entry is written; warn about any that could not be."""
        if self._writer is not None:
            self._wake.set()
            with self._written:
                self._written.wait_for(lambda: not self._pending and not self._busy)
        if self.failures:
            failed, self.failures = self.failures, []
            warnings.warn(
                f"not audited: {len(failed)} entries could not be written ({failed[-1]})",
                RuntimeWarning,
                stacklevel=2,
            )

    def _write(self) -> None:
        """Write what was submitted, in batches, until the log closes."""
        while True:
            self._wake.wait(WRITE_INTERVAL_S)
            self._wake.clear()
            while self._pending:
                with self._written:
                    self._busy = True
                items = [
                    self._pending.popleft() for _ in range(min(WRITE_BATCH, len(self._pending)))
                ]
                try:
                    self._append(items)
                except AiserError as exc:
                    self.failures.extend(str(exc) for _ in items)
                finally:
                    with self._written:
                        self._busy = False
                        self._written.notify_all()
            with self._written:
                self._written.notify_all()
            if self._closing:
                return

    def entries(
        self,
        since: datetime | timedelta | str | None = None,
        *,
        user: str | None = None,
        limit: int | None = None,
    ) -> list[AuditEntry]:
        """Entries in the order they were written; `since` a time, an ISO text, or an age."""
        self.flush()
        where, params = ["1 = 1"], []
        if since is not None:
            where.append("at >= ?")
            params.append(_since(since))
        if user is not None:
            where.append(
                "(who = ? OR subject IN (SELECT subject FROM aiser_audit_subjects WHERE who = ?))"
            )
            params.extend([user, user])
        rows = self._fetch(
            f"SELECT id, {FIELDS}, subject, hash FROM aiser_audit WHERE {' AND '.join(where)}"
            " ORDER BY id" + (f" LIMIT {int(limit)}" if limit is not None else ""),
            params,
        )
        keys = {
            subject: bytes.fromhex(key)
            for subject, key in self._fetch("SELECT subject, key FROM aiser_audit_subjects")
        }
        entries = []
        for row in rows:
            values = list(row[1:-2])
            key = keys.get(row[-2])
            for position in PERSONAL:
                values[position] = open_field(key, values[position])
            entries.append(AuditEntry(row[0], *values, row[-1]))
        return entries

    def frame(self, since: datetime | timedelta | str | None = None, **kwargs: Any) -> pd.DataFrame:
        import pandas as pd

        columns = list(AuditEntry.__dataclass_fields__)
        return pd.DataFrame([asdict(e) for e in self.entries(since, **kwargs)], columns=columns)

    def export(self, path: str | Path, since: datetime | timedelta | str | None = None) -> int:
        """Write the entries as JSON lines (one object per entry); how many were written."""
        entries = self.entries(since)
        with open(path, "w", encoding="utf-8") as out:
            for entry in entries:
                out.write(json.dumps(asdict(entry), default=str) + "\n")
        return len(entries)

    def verify(self) -> int:
        """Check the hash chain from the first entry; the number of entries checked. Raises
        AuditFailed naming the first entry whose content or place in the chain was changed."""
        self.flush()
        rows = self._fetch(
            f"SELECT id, {FIELDS}, subject, prev_hash, hash FROM aiser_audit ORDER BY id"
        )
        prev = GENESIS
        for row in rows:
            entry_id, values, stored_prev, stored = row[0], row[1:-2], row[-2], row[-1]
            if values[-1] is None:  # written before personal fields were sealed
                values = values[:-1]
            if stored_prev != prev or _digest(prev, values) != stored:
                raise AuditFailed(
                    f"Audit log {self.shown}: entry {entry_id} was altered (or one before it cut)"
                )
            prev = stored
        return len(rows)

    def close(self) -> None:
        if self._writer is not None:
            self._closing = True
            self._wake.set()
            self._writer.join()
            self._writer = None
        with self._lock:
            self._conn.close()


def _since(value: datetime | timedelta | str) -> str:
    """A lower time bound in UTC: from a time, an ISO text, an age, or an age as text (``2h``)."""
    if isinstance(value, str):
        value = parse_age(value) or value
    if isinstance(value, timedelta):
        value = datetime.now(timezone.utc) - value
    if isinstance(value, str):
        try:
            value = datetime.fromisoformat(value)
        except ValueError:
            raise AuditFailed(
                f"since: expected an ISO date or time, or an age such as 2h or 7d; got {value!r}"
            ) from None
    if value.tzinfo is None:
        value = value.astimezone()
    return value.astimezone(timezone.utc).isoformat(timespec="microseconds")
