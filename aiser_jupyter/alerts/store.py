"""Alert state in SQLite (WAL): per alert its last value, whether its condition held at the
last check, its last firing; and the outbox of notifications to deliver.

The database is opened in one place, `open_database`, through the product's SQLite opener
(SQLCipher when an encryption key is set). Nothing secret is written: a notification
target is kept by its position in the alert's ``notify`` list and its shown form
(``webhook:https://host/…``), never its URL, token or password; the payload holds the
alert's name, values and condition only.
"""

from __future__ import annotations

import json
import threading
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path
from typing import Any

SCHEMA = [
    """CREATE TABLE IF NOT EXISTS alert_state (
        name TEXT PRIMARY KEY, last_value TEXT, last_checked TEXT, active INTEGER NOT NULL
        DEFAULT 0, last_fired TEXT, fired INTEGER NOT NULL DEFAULT 0)""",
    """CREATE TABLE IF NOT EXISTS alert_outbox (
        id INTEGER PRIMARY KEY AUTOINCREMENT, alert TEXT NOT NULL, target INTEGER NOT NULL,
        shown TEXT NOT NULL, payload TEXT NOT NULL, created TEXT NOT NULL,
        attempts INTEGER NOT NULL DEFAULT 0, next_at TEXT NOT NULL, sent_at TEXT,
        last_error TEXT)""",
    "CREATE INDEX IF NOT EXISTS alert_outbox_pending ON alert_outbox (sent_at, next_at)",
]


def open_database(path: str | Path) -> Any:
    """The one place the alert database is opened (WAL, shared by the checking threads):
    through ``security.atrest.connect_sqlite``, so it is encrypted when a key is set."""
    from aiser_jupyter.security.atrest import connect_sqlite

    if str(path) != ":memory:":
        path = Path(path).expanduser()
        path.parent.mkdir(parents=True, exist_ok=True)
    db = connect_sqlite(path, check_same_thread=False, isolation_level=None, timeout=30)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA secure_delete = ON")
    return db


def now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


@dataclass
class State:
    """What the last check of an alert left behind."""

    last_value: Any = None
    last_checked: str | None = None
    active: bool = False
    last_fired: str | None = None
    fired: int = 0


@dataclass
class Delivery:
    """One notification of one firing to one target, sent or waiting to be."""

    id: int
    alert: str
    target: int
    shown: str
    payload: dict[str, Any]
    attempts: int
    sent_at: str | None
    last_error: str | None


class AlertStore:
    """State and outbox of the alerts, in the SQLite file at `path`."""

    def __init__(self, path: str | Path):
        self.path = path
        self._db = open_database(path)
        self._lock = threading.Lock()
        with self._lock:
            for statement in SCHEMA:
                self._db.execute(statement)

    def state(self, name: str) -> State:
        with self._lock:
            row = self._db.execute(
                "SELECT last_value, last_checked, active, last_fired, fired FROM alert_state"
                " WHERE name = ?",
                (name,),
            ).fetchone()
        if row is None:
            return State()
        return State(json.loads(row[0]) if row[0] else None, row[1], bool(row[2]), *row[3:])

    def checked(
        self,
        name: str,
        value: Any,
        active: bool,
        firing: dict[str, Any] | None,
        targets: Sequence[str],
    ) -> list[int]:
        """Record a check; with a `firing`, queue it for each of `targets` (their shown
        forms) in the same transaction, so a firing is never recorded without its
        deliveries. The outbox ids of the deliveries queued."""
        at = now()
        fired_at = at if firing is not None else None
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                self._db.execute(
                    "INSERT INTO alert_state (name, last_value, last_checked, active, last_fired,"
                    " fired) VALUES (?, ?, ?, ?, ?, ?) ON CONFLICT (name) DO UPDATE SET"
                    " last_value = excluded.last_value, last_checked = excluded.last_checked,"
                    " active = excluded.active,"
                    " last_fired = coalesce(excluded.last_fired, alert_state.last_fired),"
                    " fired = alert_state.fired + excluded.fired",
                    (name, json.dumps(value), at, int(active), fired_at, int(firing is not None)),
                )
                ids = []
                if firing is not None:
                    payload = json.dumps(firing, default=str)
                    for index, shown in enumerate(targets):
                        ids.append(
                            self._db.execute(
                                "INSERT INTO alert_outbox (alert, target, shown, payload,"
                                " created, next_at) VALUES (?, ?, ?, ?, ?, ?) RETURNING id",
                                (name, index, shown, payload, at, at),
                            ).fetchone()[0]
                        )
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return ids

    def due(self, alert: str | None = None, *, all_pending: bool = False) -> list[Delivery]:
        """Deliveries not yet sent whose next attempt is due (or all of them)."""
        sql = (
            "SELECT id, alert, target, shown, payload, attempts, sent_at, last_error"
            " FROM alert_outbox WHERE sent_at IS NULL"
        )
        params: list[Any] = []
        if not all_pending:
            sql += " AND next_at <= ?"
            params.append(now())
        if alert is not None:
            sql += " AND alert = ?"
            params.append(alert)
        with self._lock:
            rows = self._db.execute(sql + " ORDER BY id", params).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], json.loads(r[4]), *r[5:]) for r in rows]

    def delivered(self, delivery: int) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE alert_outbox SET sent_at = ?, attempts = attempts + 1, last_error = NULL"
                " WHERE id = ?",
                (now(), delivery),
            )

    def failed(self, delivery: int, error: str, next_at: str) -> None:
        with self._lock:
            self._db.execute(
                "UPDATE alert_outbox SET attempts = attempts + 1, last_error = ?, next_at = ?"
                " WHERE id = ?",
                (error, next_at, delivery),
            )

    def deliveries(self, alert: str | None = None) -> list[Delivery]:
        """Every delivery (sent or not), oldest first."""
        sql = (
            "SELECT id, alert, target, shown, payload, attempts, sent_at, last_error"
            " FROM alert_outbox"
        )
        params = [alert] if alert is not None else []
        with self._lock:
            rows = self._db.execute(
                sql + (" WHERE alert = ?" if alert else "") + " ORDER BY id", params
            ).fetchall()
        return [Delivery(r[0], r[1], r[2], r[3], json.loads(r[4]), *r[5:]) for r in rows]

    def forget(self, name: str) -> None:
        """Drop an alert's state (its undelivered notifications too)."""
        with self._lock:
            self._db.execute("DELETE FROM alert_state WHERE name = ?", (name,))
            self._db.execute(
                "DELETE FROM alert_outbox WHERE alert = ? AND sent_at IS NULL", (name,)
            )

    def close(self) -> None:
        with self._lock:
            self._db.close()
