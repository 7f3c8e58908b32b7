"""Query results kept for the next identical question, in memory and as Arrow IPC files under
``$AISER_HOME/cache``, each tier bounded in bytes and emptied least recently used first.

An entry is found by its key (the normalised query, where it ran, its parameters and row
limit) and is only good for one version of what it read: the files' paths, sizes and
modification times, the snapshot of a lake table or the fetch of an API table behind a DuckDB
table, or (for databases, which cannot say cheaply whether they changed) the connection's
write count in this kernel plus a time to live. Other DuckDB tables are not cached: they
are read where they are, fast, and can change without a trace.
Writing through the Session to a connection makes its entries unreachable at once.
"""

from __future__ import annotations

import contextlib
import glob
import os
import threading
import time
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.engines.arrowfile import read_table, write_table
from aiser_jupyter.engines.transpile import digest

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.engines.catalog import Source
    from aiser_jupyter.engines.connection import Connection
    from aiser_jupyter.engines.router import RoutePlan

MIB = 1 << 20
SUFFIX = ".arrow"
CREATED = b"aiser.created"
SCALARS = (str, int, float, bool, type(None))


@dataclass(frozen=True)
class Version:
    """What a cached answer is good for: `tag` must match, and it expires after `ttl` seconds
    (None: never, the tag alone says when the sources change)."""

    tag: str
    ttl: float | None


@dataclass
class CacheStats:
    hits: int
    misses: int
    stores: int
    evictions: int
    memory_entries: int
    memory_bytes: int
    disk_entries: int
    disk_bytes: int

    def __str__(self) -> str:
        asked = self.hits + self.misses
        rate = f"{self.hits / asked:.0%}" if asked else "n/a"
        return (
            f"{self.hits} hits, {self.misses} misses ({rate}), {self.stores} stored, "
            f"{self.evictions} evicted; memory {self.memory_entries} entries "
            f"{self.memory_bytes / MIB:.1f} MiB; disk {self.disk_entries} entries "
            f"{self.disk_bytes / MIB:.1f} MiB"
        )


@dataclass
class _Entry:
    version: str
    table: pa.Table
    created: float
    nbytes: int


class ResultCache:
    """Results by key and version; `directory` None keeps them in memory only."""

    def __init__(
        self,
        directory: str | os.PathLike[str] | None,
        memory_bytes: int = 512 * MIB,
        disk_bytes: int = 4096 * MIB,
    ):
        self.directory = Path(directory) if directory is not None else None
        self.memory_bytes = memory_bytes
        self.disk_bytes = disk_bytes
        self._memory: OrderedDict[str, _Entry] = OrderedDict()
        self._lock = threading.Lock()
        self._counts = {"hits": 0, "misses": 0, "stores": 0, "evictions": 0}

    def get(self, key: str, version: Version) -> tuple[pa.Table, float] | None:
        """The table stored under `key` for `version` and its age in seconds, or None."""
        now = time.time()
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None and entry.version != version.tag:
                self._drop_memory(key)
                entry = None
            if entry is None:
                entry = self._read_disk(key, version.tag)
                if entry is not None:
                    self._keep_in_memory(key, entry)
            if entry is not None and version.ttl is not None and now - entry.created > version.ttl:
                self._drop_memory(key)
                self._remove_files(key)
                entry = None
            if entry is None:
                self._counts["misses"] += 1
                return None
            self._memory.move_to_end(key)
            self._counts["hits"] += 1
            return entry.table, now - entry.created

    def put(self, key: str, version: Version, table: pa.Table) -> bool:
        """Keep `table`; False when it is larger than half the memory budget (not kept)."""
        nbytes = table.get_total_buffer_size()
        if nbytes > self.memory_bytes // 2:
            return False
        entry = _Entry(version.tag, table, time.time(), nbytes)
        with self._lock:
            self._keep_in_memory(key, entry)
            self._write_disk(key, entry)
            self._counts["stores"] += 1
        return True

    def peek(self, key: str) -> pa.Table | None:
        """The table kept under `key` (any version), without counting a hit: for an export."""
        with self._lock:
            entry = self._memory.get(key)
            if entry is not None:
                return entry.table
            for path in self._key_files(key):
                with contextlib.suppress(OSError, ValueError):
                    return read_table(path)
        return None

    def drop(self, key: str) -> bool:
        """Forget the entry under `key`, on disk too; whether there was one."""
        with self._lock:
            held = self._memory.pop(key, None) is not None or bool(self._key_files(key))
            self._remove_files(key)
        return held

    def _key_files(self, key: str) -> list[str]:
        if self.directory is None:
            return []
        return glob.glob(str(self.directory / f"{glob.escape(key)}-*{SUFFIX}"))

    def clear(self) -> int:
        """Forget every entry, on disk too; how many there were."""
        with self._lock:
            files = self._files()
            keys = set(self._memory) | {path.name.split("-")[0] for path in files}
            self._memory.clear()
            for path in files:
                with contextlib.suppress(OSError):
                    path.unlink()
        return len(keys)

    def stats(self) -> CacheStats:
        with self._lock:
            files = self._files()
            sizes = [_size(path) for path in files]
            return CacheStats(
                **self._counts,
                memory_entries=len(self._memory),
                memory_bytes=sum(e.nbytes for e in self._memory.values()),
                disk_entries=len(files),
                disk_bytes=sum(sizes),
            )

    # -- memory tier -----------------------------------------------------------------

    def _keep_in_memory(self, key: str, entry: _Entry) -> None:
        self._memory[key] = entry
        self._memory.move_to_end(key)
        used = sum(e.nbytes for e in self._memory.values())
        while used > self.memory_bytes and len(self._memory) > 1:
            _, oldest = self._memory.popitem(last=False)
            used -= oldest.nbytes
            self._counts["evictions"] += 1

    def _drop_memory(self, key: str) -> None:
        self._memory.pop(key, None)

    # -- disk tier -------------------------------------------------------------------

    def _path(self, key: str, version: str) -> Path:
        assert self.directory is not None
        return self.directory / f"{key}-{version}{SUFFIX}"

    def _files(self) -> list[Path]:
        if self.directory is None or not self.directory.is_dir():
            return []
        return [p for p in self.directory.iterdir() if p.name.endswith(SUFFIX)]

    def _read_disk(self, key: str, version: str) -> _Entry | None:
        """The entry from its file (memory-mapped, so a hit copies nothing), marked as used."""
        if self.directory is None:
            return None
        import pyarrow as pa

        path = self._path(key, version)
        try:
            table = read_table(path)
            os.utime(path)
        except (OSError, pa.ArrowInvalid):
            return None
        created = float((table.schema.metadata or {}).get(CREATED, b"0"))
        table = table.replace_schema_metadata(_without_created(table.schema.metadata))
        return _Entry(version, table, created, table.get_total_buffer_size())

    def _write_disk(self, key: str, entry: _Entry) -> None:
        """Write the entry's file (atomically: other kernels may share the folder), drop the
        key's older versions, then the least recently used files while over the budget."""
        if self.directory is None:
            return
        import pyarrow as pa

        self._remove_files(key)
        self.directory.mkdir(parents=True, exist_ok=True)
        path = self._path(key, entry.version)
        partial = path.with_name(f".{path.name}.{os.getpid()}.tmp")
        metadata = {**(entry.table.schema.metadata or {}), CREATED: str(entry.created).encode()}
        table = entry.table.replace_schema_metadata(metadata)
        try:
            write_table(partial, table)
            os.replace(partial, path)
        except (OSError, pa.ArrowException):  # a type IPC cannot hold: memory only
            with contextlib.suppress(OSError):
                partial.unlink()
            return
        self._evict_disk()

    def _remove_files(self, key: str) -> None:
        if self.directory is None:
            return
        for name in glob.glob(str(self.directory / f"{glob.escape(key)}-*{SUFFIX}")):
            with contextlib.suppress(OSError):
                os.unlink(name)

    def _evict_disk(self) -> None:
        files = sorted(self._files(), key=_mtime)
        total = sum(_size(p) for p in files)
        while total > self.disk_bytes and len(files) > 1:
            oldest = files.pop(0)
            total -= _size(oldest)
            with contextlib.suppress(OSError):
                oldest.unlink()
            self._counts["evictions"] += 1


def _without_created(metadata: dict[bytes, bytes] | None) -> dict[bytes, bytes] | None:
    kept = {k: v for k, v in (metadata or {}).items() if k != CREATED}
    return kept or None


def _size(path: Path) -> int:
    try:
        return path.stat().st_size
    except OSError:
        return 0


def _mtime(path: Path) -> float:
    try:
        return path.stat().st_mtime
    except OSError:
        return 0.0


# -- keys and versions ---------------------------------------------------------------------


def cache_key(
    plan: RoutePlan, params: Any, limit: int | None, connections: dict[str, Connection]
) -> str | None:
    """The key of `plan` run with `params` and `limit`; None when a parameter is not a plain
    value (a frame, an object) whose identity would not say whether it changed. Connections
    count by URL too (without secrets): the disk tier is shared by every kernel."""
    values = list(params.values()) if isinstance(params, dict) else list(params or [])
    if any(not isinstance(v, SCALARS) for v in values):
        return None
    where = {plan.connection, *(s.connection for s in plan.sources)}
    urls = sorted(f"{name}={connections[name].display_url}" for name in where)
    parts = [plan.query, plan.input_dialect, plan.decision, repr(values), repr(limit), *urls]
    parts += [s.label for s in plan.sources]
    return digest("\x1f".join(parts))


def version(
    plan: RoutePlan,
    connections: dict[str, Connection],
    writes: dict[str, int],
    ttl: float,
    external: Mapping[str, Any],
) -> tuple[Version | None, str]:
    """The version of everything `plan` reads, or None and the reason it cannot be cached.
    `external` holds the lake and API tables behind DuckDB tables, by name: their
    ``version`` (a snapshot id, a fetch time) changes exactly when their rows do."""
    from aiser_jupyter.engines.registry import engine_kind

    if not plan.sources:
        return None, "not cached: it reads no table whose version the cache can check"
    if plan.volatile:
        return None, "not cached: it calls a function whose answer changes (now, random…)"
    tags, expires = [], False
    for source in plan.sources:
        connection = connections[source.connection]
        kind = engine_kind(connection.kind)
        if source.kind == "files":
            tags.append(_files_tag(source, connection))
        elif kind.federates and source.name in external:
            tags.append(f"{source.name}@{external[source.name].version}")
        elif kind.federates:
            return None, f"not cached: {source.label} is a DuckDB table, read fast where it is"
        elif ttl <= 0:
            return None, f"not cached: {source.label} is a database table and cache_ttl is 0"
        else:
            tags.append(f"{source.label}@{writes.get(source.connection, 0)}")
            expires = True
    return Version(digest("\x1f".join(tags)), ttl if expires else None), ""


def _files_tag(source: Source, connection: Connection) -> str:
    """Paths, sizes and modification times of the files (a view's definition read again, in
    case it was replaced since the router's catalog was read)."""
    files = source.files
    if connection.kind == "duckdb" and source.schema is not None:
        from aiser_jupyter.engines.catalog import VIEWS_SQL, files_of_view

        rows = connection.engine.con.execute(  # type: ignore[attr-defined]
            f"SELECT sql FROM ({VIEWS_SQL}) WHERE schema_name = $1 AND view_name = $2",
            [source.schema, source.name],
        ).fetchall()
        files = files_of_view(rows[0][0]) if rows else ()
    stats = []
    for pattern in files:
        for path in sorted(glob.glob(os.path.expanduser(pattern))) or [pattern]:
            try:
                info = os.stat(path)
                stats.append(f"{path}:{info.st_size}:{info.st_mtime_ns}")
            except OSError:
                stats.append(f"{path}:missing")
    return "|".join(stats)
