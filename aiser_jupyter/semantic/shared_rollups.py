"""Rollups built once for every process: Parquet files in one folder, (re)built under a lock.

With ``preaggregation_shared`` set (``AISER_PREAGGREGATION_SHARED``: a folder that every
server process, or every machine on a shared file system, reads and writes), the first
process that needs a rollup takes the rollup's file lock, builds it and writes it as a new
Parquet file, then its description (``<table>.json``: definition, refresh key value, when
built, which file); processes that wanted it meanwhile wait on the lock, find it built and
read that file. A refresh takes the lock again and writes a new file; a reader moves to it
when it next looks, and the file before the previous one is removed.
"""

from __future__ import annotations

import contextlib
import json
import os
import uuid
from collections.abc import Iterator
from datetime import datetime
from pathlib import Path
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    import pyarrow as pa

KEPT_FILES = 2
"""A rollup's newest files kept: the current one and the one readers may still be on."""


class Built:
    """One built rollup as its description says: what it was built from, when, where."""

    def __init__(self, definition: str, refresh: str | None, built_at: datetime, path: Path):
        self.definition = definition
        self.refresh = refresh
        self.built_at = built_at
        self.path = path

    @property
    def state(self) -> tuple[str, str | None, datetime]:
        """As the store keeps a rollup's state: (definition, refresh value, built at)."""
        return self.definition, self.refresh, self.built_at


class SharedRollups:
    """The folder of shared rollup files."""

    def __init__(self, folder: str | os.PathLike[str]):
        self.folder = Path(folder).expanduser()
        self.folder.mkdir(parents=True, exist_ok=True)

    def built(self, table: str) -> Built | None:
        """The rollup's current file, or None (never built, or its file is gone)."""
        try:
            about = json.loads((self.folder / f"{table}.json").read_text(encoding="utf-8"))
        except (OSError, ValueError):
            return None
        path = self.folder / about["file"]
        if not path.exists():
            return None
        built_at = datetime.fromisoformat(about["built_at"])
        return Built(about["definition"], about["refresh"], built_at, path)

    @contextlib.contextmanager
    def lock(self, table: str) -> Iterator[None]:
        """Hold the rollup's lock (an exclusive ``flock``: other processes wait)."""
        import fcntl

        with open(self.folder / f"{table}.lock", "a+b") as handle:
            fcntl.flock(handle, fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(handle, fcntl.LOCK_UN)

    def write(self, table: str, data: pa.Table, definition: str, refresh: str | None) -> Built:
        """Write a new file of the rollup, then its description (each atomically); the
        caller holds the lock."""
        import pyarrow.parquet as pq

        name = f"{table}-{uuid.uuid4().hex}.parquet"
        partial = self.folder / f".{name}.tmp"
        pq.write_table(data, partial)
        os.replace(partial, self.folder / name)
        built = Built(definition, refresh, datetime.now(), self.folder / name)
        about = {
            "definition": definition,
            "refresh": refresh,
            "built_at": built.built_at.isoformat(),
            "file": name,
        }
        described = self.folder / f".{table}.json.{uuid.uuid4().hex}.tmp"
        described.write_text(json.dumps(about), encoding="utf-8")
        os.replace(described, self.folder / f"{table}.json")
        self._prune(table)
        return built

    def _prune(self, table: str) -> None:
        files = sorted(self.folder.glob(f"{table}-*.parquet"), key=lambda p: p.stat().st_mtime)
        for old in files[:-KEPT_FILES]:
            with contextlib.suppress(OSError):
                old.unlink()
