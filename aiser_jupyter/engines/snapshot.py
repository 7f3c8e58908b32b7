"""A DuckDB database kept on disk as one sealed snapshot, for when a key is set.

DuckDB 2.0 writes encrypted databases securely only with its httpfs extension (OpenSSL),
which a machine without network access cannot install; so an encrypted DuckDB file (the
rollups) is opened in memory from a sealed snapshot of its tables and written back whole,
atomically, after each change. Fine for rollups, which are small by design.
"""

from __future__ import annotations

import os
from pathlib import Path
from typing import Any

from aiser_jupyter.security.atrest import MAGIC, is_sealed, read_file, write_file
from aiser_jupyter.security.keys import EncryptionKeyError, ring

TABLES_SQL = (
    "SELECT table_name FROM duckdb_tables() WHERE database_name = current_database()"
    " AND schema_name = 'main' ORDER BY table_name"
)


def sealed_path(database: str) -> bool:
    """Whether `database` is kept as a sealed snapshot: a file, with a key set. A sealed
    file without a key, or a plain DuckDB file with one, is an EncryptionKeyError."""
    if database in ("", ":memory:"):
        return False
    path = Path(database).expanduser()
    head = path.read_bytes()[: len(MAGIC)] if path.is_file() else b""
    keyed = ring() is not None
    if not keyed and is_sealed(head):
        raise EncryptionKeyError(
            f"{database} is encrypted: set AISER_ENCRYPTION_KEY (or the key file) to open it"
        )
    if keyed and head and not is_sealed(head):
        raise EncryptionKeyError(
            f"{database} is a plain DuckDB file, but an encryption key is set: delete it (its "
            "rollups are rebuilt, encrypted) or unset the key"
        )
    return keyed


def load(con: Any, database: str) -> None:
    """Create the snapshot's tables in `con` (an empty DuckDB), if the snapshot exists."""
    import pyarrow as pa

    path = Path(database).expanduser()
    if not path.is_file():
        return
    packed = pa.ipc.open_stream(pa.py_buffer(read_file(path))).read_all()
    for name, blob in zip(packed["name"].to_pylist(), packed["ipc"].to_pylist(), strict=True):
        quoted = '"' + name.replace('"', '""') + '"'
        con.register("aiser_snapshot_table", pa.ipc.open_stream(pa.py_buffer(blob)).read_all())
        try:
            con.execute(f"CREATE OR REPLACE TABLE {quoted} AS SELECT * FROM aiser_snapshot_table")
        finally:
            con.unregister("aiser_snapshot_table")


def save(con: Any, database: str) -> None:
    """Write every table of `con` to the sealed snapshot (atomically, durably)."""
    import pyarrow as pa

    names, blobs = [], []
    for (name,) in con.execute(TABLES_SQL).fetchall():
        quoted = '"' + name.replace('"', '""') + '"'
        table = con.sql(f"SELECT * FROM {quoted}").to_arrow_table()
        sink = pa.BufferOutputStream()
        with pa.ipc.new_stream(sink, table.schema) as out:
            out.write_table(table)
        names.append(name)
        blobs.append(sink.getvalue().to_pybytes())
    packed = pa.table({"name": pa.array(names, pa.string()), "ipc": pa.array(blobs, pa.binary())})
    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, packed.schema) as out:
        out.write_table(packed)
    path = Path(database).expanduser()
    path.parent.mkdir(parents=True, exist_ok=True)
    write_file(os.fspath(path), sink.getvalue().to_pybytes(), durable=True)
