"""Arrow IPC files as the product keeps them on disk: sealed (AES-256-GCM) when a key is set.

The result cache and the rollup snapshots read and write through these two functions, so
encryption at rest is one boundary, not a concern of the cache. Without a key a file is
memory-mapped (a hit copies nothing); with one it is read, decrypted and opened in memory.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from aiser_jupyter.security.atrest import is_sealed, seal, unseal
from aiser_jupyter.security.keys import ring

if TYPE_CHECKING:
    import pyarrow as pa


def read_table(path: str | os.PathLike[str]) -> pa.Table:
    """The table in an IPC file. A file the keys in force cannot open (sealed without a key,
    plain with one) raises ``pa.ArrowInvalid``, as any unreadable file does; a sealed file
    whose key is not given raises EncryptionKeyError."""
    import pyarrow as pa

    keys = ring()
    if keys is None:
        with pa.memory_map(os.fspath(path)) as source:
            return pa.ipc.open_file(source).read_all()
    with open(path, "rb") as file:
        data = file.read()
    if not is_sealed(data):
        raise pa.ArrowInvalid(f"{path} is not sealed with the key in force")
    plain = unseal(data, keys, os.fspath(path))
    return pa.ipc.open_file(pa.py_buffer(plain)).read_all()


def write_table(path: str | os.PathLike[str], table: pa.Table) -> None:
    """Write `table` to `path` as an IPC file (sealed with the key new files get, if any)."""
    import pyarrow as pa

    keys = ring()
    if keys is None:
        with pa.OSFile(os.fspath(path), "wb") as sink, pa.ipc.new_file(sink, table.schema) as out:
            out.write_table(table)
        return
    sink = pa.BufferOutputStream()
    with pa.ipc.new_file(sink, table.schema) as out:
        out.write_table(table)
    with open(path, "wb") as file:
        file.write(seal(sink.getvalue().to_pybytes(), keys.writing))
