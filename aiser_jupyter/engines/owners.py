"""Who asked for each cached answer, so that one person's cached answers can be exported
and erased (GDPR) without reading every entry.

A small database beside the cache (``$AISER_HOME/cache-owners.db``, encrypted like the
others when a key is set): one row per subject and cache key, written the first time that
subject gets that answer in a kernel.
"""

from __future__ import annotations

import os
import threading
from pathlib import Path
from typing import Any

from aiser_jupyter.security.atrest import connect_sqlite


class CacheOwners:
    """Subject → the cache keys of the answers they asked for."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = Path(path)
        self._seen: set[tuple[str, str]] = set()
        self._lock = threading.Lock()
        self._conn: Any = None

    def _db(self) -> Any:
        if self._conn is None:
            self.path.parent.mkdir(parents=True, exist_ok=True)
            self._conn = connect_sqlite(
                self.path, timeout=30, isolation_level=None, check_same_thread=False
            )
            self._conn.execute("PRAGMA journal_mode = WAL")
            self._conn.execute("PRAGMA secure_delete = ON")
            self._conn.execute(
                "CREATE TABLE IF NOT EXISTS owners (subject TEXT NOT NULL, key TEXT NOT NULL,"
                " PRIMARY KEY (subject, key))"
            )
        return self._conn

    def add(self, subject: str, key: str) -> None:
        """Note that `subject` got the answer under `key` (once per kernel: a set lookup after)."""
        if (subject, key) in self._seen:
            return
        with self._lock:
            self._db().execute("INSERT OR IGNORE INTO owners VALUES (?, ?)", (subject, key))
            self._seen.add((subject, key))

    def keys(self, subject: str) -> list[str]:
        with self._lock:
            rows = self._db().execute(
                "SELECT key FROM owners WHERE subject = ? ORDER BY key", (subject,)
            )
            return [row[0] for row in rows.fetchall()]

    def forget(self, subject: str) -> list[str]:
        """Drop `subject`'s rows; the keys they had."""
        keys = self.keys(subject)
        with self._lock:
            self._db().execute("DELETE FROM owners WHERE subject = ?", (subject,))
            self._db().execute("PRAGMA wal_checkpoint(TRUNCATE)")
            self._seen = {pair for pair in self._seen if pair[0] != subject}
        return keys

    def close(self) -> None:
        if self._conn is not None:
            self._conn.close()
            self._conn = None
