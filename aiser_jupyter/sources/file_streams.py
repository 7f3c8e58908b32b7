"""Files that grow and folders that fill, as live tables.

- An NDJSON or CSV file someone appends to: each poll reads from the byte offset it had
  reached, up to the last complete line (a line still being written waits for the next
  poll), and appends those rows. The offset is the stream's position, committed with the
  rows, so a restart reads on from there. A file that shrank was replaced: read afresh.
- A folder that receives Parquet files: each poll appends the files it has not read yet
  (the names read so far are the position). A file not yet whole (no footer) waits for
  the next poll.
"""

from __future__ import annotations

import io
import json
import os
import time
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.sources.worker import Stream

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.sources.replica import Replica

LINE_FILES = (".ndjson", ".jsonl", ".json", ".csv", ".tsv")
CHUNK = 64 * 1024 * 1024
"""Bytes one poll reads at most (the rest waits for the next, which comes at once)."""


def file_stream(target: str, *args: Any, table: str | None = None, **loop: float) -> Stream:
    """A TailStream for a text file, a FolderStream for a folder (or ``folder/*.parquet``)."""
    from aiser_jupyter.sources.targets import file_name

    path = Path(os.path.expanduser(target))
    if path.name.endswith("*.parquet"):
        path = path.parent
    table = table or file_name(str(path))
    if path.is_dir():
        return FolderStream(path, table, *args, **loop)
    if path.suffix.lower() in LINE_FILES:
        return TailStream(path, table, *args, **loop)
    raise ConnectionFailed(
        f"Cannot follow {target!r} live: expected an NDJSON or CSV file, or a folder that "
        "receives Parquet files"
    )


class FileStream(Stream):
    """A stream of one file or folder into table `table` of schema `name`."""

    def __init__(
        self,
        path: Path,
        table: str,
        name: str,
        replica: Replica,
        changed: Callable[[str], None],
        **loop: float,
    ):
        super().__init__(name, replica, changed, **loop)
        self.path = path
        self.table = table

    @property
    def label(self) -> str:
        return f"{self.name}.{self.table}".lower()


class TailStream(FileStream):
    """Rows appended to an NDJSON or CSV file."""

    kind = "file"
    interval = 0.5

    def __init__(self, path: Path, table: str, *args: Any, **loop: float):
        super().__init__(path, table, *args, **loop)
        self.csv = path.suffix.lower() in (".csv", ".tsv")
        self.offset = 0
        self.header = b""

    def open(self) -> None:
        if not self.path.is_file():
            raise ConnectionFailed(f"No file {str(self.path)!r} to follow")
        saved = self.replica.position()
        self.offset = int(saved) if saved is not None else 0
        if self.csv:
            with self.path.open("rb") as handle:
                self.header = handle.readline()
            self.offset = max(self.offset, len(self.header))
        if saved is None:
            self.poll()

    def poll(self) -> bool:
        size = self.path.stat().st_size
        if size < self.offset:  # replaced by a shorter file: start again
            self.offset = len(self.header)
            with self.replica.transaction(str(self.offset)) as con:
                con.execute(f"DELETE FROM {self._target()}")
        with self.path.open("rb") as handle:
            handle.seek(self.offset)
            chunk = handle.read(min(size - self.offset, CHUNK))
        whole = chunk[: chunk.rfind(b"\n") + 1]
        self.behind = float(size - self.offset - len(whole))
        if not whole.strip():
            self.caught_up()
            return False
        data = self._parse(whole)
        offset = self.offset + len(whole)
        with self.replica.transaction(str(offset)):
            rows = self.replica.append(self.name, self.table, data)
        self.offset = offset
        self.applied(self.label, rows, time.time() - self.path.stat().st_mtime)
        return len(chunk) == CHUNK

    def _parse(self, lines: bytes) -> pa.Table:
        if self.csv:
            from pyarrow import csv

            delimiter = "\t" if self.path.suffix.lower() == ".tsv" else ","
            return csv.read_csv(
                io.BytesIO(self.header + lines),
                parse_options=csv.ParseOptions(delimiter=delimiter),
            )
        from pyarrow import json as pa_json

        return pa_json.read_json(io.BytesIO(lines))

    def _target(self) -> str:
        from aiser_jupyter.sources.replica import quote

        return f"{quote(self.name)}.{quote(self.table)}"


class FolderStream(FileStream):
    """Parquet files arriving in a folder."""

    kind = "folder"

    def __init__(self, path: Path, table: str, *args: Any, **loop: float):
        super().__init__(path, table, *args, **loop)
        self.seen: set[str] = set()

    def open(self) -> None:
        if not self.path.is_dir():
            raise ConnectionFailed(f"No folder {str(self.path)!r} to follow")
        saved = self.replica.position()
        self.seen = set(json.loads(saved)) if saved else set()
        if saved is None:
            self.poll()

    def poll(self) -> bool:
        import pyarrow as pa
        import pyarrow.parquet as pq

        new = sorted(p for p in self.path.glob("*.parquet") if p.name not in self.seen)
        self.behind = float(len(new))
        read: list[tuple[str, pa.Table, float]] = []
        for file in new:
            try:
                read.append((file.name, pq.read_table(file), file.stat().st_mtime))
            except (pa.ArrowInvalid, OSError):  # still being written: next poll
                break
        if not read:
            self.caught_up()
            return False
        seen = self.seen | {name for name, _, _ in read}
        rows = 0
        with self.replica.transaction(json.dumps(sorted(seen))):
            for _, data, _ in read:
                rows += self.replica.append(self.name, self.table, data)
        self.seen = seen
        self.behind = float(len(new) - len(read))
        oldest = min(stamp for _, _, stamp in read)
        self.applied(self.label, rows, time.time() - oldest)
        return False
