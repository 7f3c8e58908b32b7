"""An HTTP JSON API polled on an interval, as a live table (``sources.http_api.HttpApi``
reads it: pagination, rate limits and its own retries as for a plain API table).

Each poll reads every page afresh; when the records differ from the last poll's, they
replace the table's rows in one transaction and the listeners hear of it; when they are
the same, nothing is written and nobody is told.
"""

from __future__ import annotations

import hashlib
import time
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.sources.worker import Stream

if TYPE_CHECKING:
    import pyarrow as pa


class ApiStream(Stream):
    kind = "api"
    interval = 5.0
    max_backoff = 60.0

    def __init__(self, url: str, *stream: Any, table: str = "api", **options: Any):
        """`stream`: the name, replica and listener every Stream takes; `options`: the
        loop's (``interval``, ``max_backoff``) and HttpApi's (``records``, ``paginate`` …)."""
        from aiser_jupyter.sources.http_api import HttpApi

        loop = {k: options.pop(k) for k in ("interval", "max_backoff") if k in options}
        super().__init__(*stream, **loop)
        self.table = table
        options = {"progress": False, "retries": 1, **options, "cache_ttl": 0}
        try:
            self.api = HttpApi(url, name=self.table, **options)
        except TypeError as exc:  # an option HttpApi does not take
            raise ConnectionFailed(f"Unknown option for a live API: {exc}") from None
        self.digest: str | None = None

    def open(self) -> None:
        self.digest = self.replica.position()
        if self.digest is None or not self.replica.has_table(self.name, self.table):
            self.poll()

    def poll(self) -> bool:
        started = time.time()
        data = self.api.fetch(refresh=True)
        digest = _digest(data)
        if digest == self.digest:
            self.caught_up()
            return False
        with self.replica.transaction(digest):
            rows = self.replica.replace(self.name, self.table, data)
        self.digest = digest
        self.applied(f"{self.name}.{self.table}".lower(), rows, time.time() - started)
        return False


def _digest(data: pa.Table) -> str:
    """The records' fingerprint: their schema and values, in Arrow's IPC form."""
    import pyarrow as pa

    sink = pa.BufferOutputStream()
    with pa.ipc.new_stream(sink, data.schema) as writer:
        writer.write_table(data)
    return hashlib.sha256(sink.getvalue().to_pybytes()).hexdigest()
