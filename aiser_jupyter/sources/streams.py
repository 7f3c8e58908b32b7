"""Live tables: sources kept up to date in the embedded DuckDB by background threads.

``Streams(duckdb, changed)`` owns them. ``start`` opens a stream on a target (a PostgreSQL
URL: change data capture, ``pg_stream``; a growing NDJSON/CSV file or a folder receiving
Parquet files: ``file_streams``; an HTTP API polled on an interval: ``api_stream``), makes
its first copy in the caller's thread (so a wrong URL or a missing table is an error
there), then runs it in a daemon thread: poll, apply a batch in one DuckDB transaction,
``changed("data:<schema>.<table>")``, again. A source that fails (a server gone, a file
removed) is retried with exponential backoff; its state says ``retrying`` and its last
error says why, until it answers again. ``frame`` is what ``Session.streams()`` shows.
"""

from __future__ import annotations

import atexit
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.sources.worker import Stream, TableStatus, first_line

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.engines.connection import Connection

COLUMNS = [
    "stream", "table", "kind", "state", "rows_applied", "lag_s", "behind",
    "last_applied", "retries", "last_error",
]  # fmt: skip


class Streams:
    """The Session's live tables, by stream name."""

    def __init__(
        self, duckdb: Callable[[], Connection], changed: Callable[[str], None] = lambda w: None
    ):
        self.duckdb = duckdb
        self.changed = changed
        self.streams: dict[str, Stream] = {}

    def __contains__(self, name: object) -> bool:
        return name in self.streams

    def start(self, target: str, name: str, **options: Any) -> Stream:
        """Open a live stream of `target` into schema `name` of the embedded DuckDB. A stream
        already there under that name (a cell run again) is stopped first, keeping its slot
        and position, so the new one goes on where it was when it reads the same tables."""
        from aiser_jupyter.sources.replica import Replica

        if name in self.streams:
            self.stop(name, finish=False)
        duck = self.duckdb()
        [[database]] = duck.engine.con.execute("SELECT current_database()").fetchall()  # type: ignore[attr-defined]
        if database.lower() == name.lower():
            raise ConnectionFailed(
                f"The embedded DuckDB file is called {database!r} too: NAME.table would be "
                "ambiguous, choose another name"
            )
        replica = Replica(duck.engine.con.cursor(), name)  # type: ignore[attr-defined]
        stream = _kind(target)(target, name, replica, self.changed, **options)
        try:
            stream.start()
        except Exception:
            stream.close()
            replica.close()
            raise
        if not self.streams:  # a kernel that exits (not killed) drops its slots too
            atexit.register(self.close)
        self.streams[name] = stream
        return stream

    def stop(self, name: str, *, finish: bool = True) -> None:
        """Stop stream `name`; with `finish`, remove what the source kept for it too."""
        stream = self.streams.pop(name)
        stream.stop()
        if finish:
            stream.finish()
        stream.replica.close()

    def frame(self) -> pd.DataFrame:
        """Per table: rows applied, lag in seconds, how much is behind, state, last error."""
        import pandas as pd

        rows = []
        for stream in self.streams.values():
            for label, status in stream.tables.items() or {"": TableStatus()}.items():
                applied = status.last_applied
                rows.append(
                    {
                        "stream": stream.name,
                        "table": label,
                        "kind": stream.kind,
                        "state": stream.state,
                        "rows_applied": status.rows_applied,
                        "lag_s": round(status.lag_s, 3),
                        "behind": stream.behind,
                        "last_applied": pd.Timestamp(applied, unit="s") if applied else pd.NaT,
                        "retries": stream.retries,
                        "last_error": stream.last_error,
                    }
                )
        return pd.DataFrame(rows, columns=COLUMNS)

    def close(self) -> None:
        """Stop every stream (each finishes as its options say). A source that cannot be
        reached to finish (a slot left on a server that is down) is a warning, not an error:
        closing goes on."""
        import warnings

        atexit.unregister(self.close)
        for name in list(self.streams):
            try:
                self.stop(name)
            except Exception as exc:
                warnings.warn(f"Live stream {name!r}: {first_line(exc)}", stacklevel=2)


def _kind(target: str) -> Callable[..., Stream]:
    """What makes the kind of stream `target` calls for."""
    lowered = target.lower()
    if lowered.startswith(("postgresql://", "postgres://", "postgresql+adbc://")):
        from aiser_jupyter.sources.pg_stream import PostgresStream

        return PostgresStream
    if lowered.startswith(("http://", "https://")):
        from aiser_jupyter.sources.api_stream import ApiStream

        return ApiStream
    if "://" in lowered:
        raise ConnectionFailed(
            f"No live stream for {target.split('://')[0]}:// sources: PostgreSQL URLs, "
            "files, folders and HTTP APIs can be live"
        )
    from aiser_jupyter.sources.file_streams import file_stream

    return file_stream
