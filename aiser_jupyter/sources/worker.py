"""The loop of one live stream: poll the source, apply, tell; retry with backoff when the
source fails, and say so (``state``, ``last_error``). Each kind of source (``pg_stream``,
``file_streams``, ``api_stream``) is a subclass; ``streams.Streams`` runs them."""

from __future__ import annotations

import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from typing import TYPE_CHECKING

from aiser_jupyter.security.secrets import redact

if TYPE_CHECKING:
    from aiser_jupyter.sources.replica import Replica


@dataclass
class TableStatus:
    rows_applied: int = 0
    lag_s: float = 0.0
    last_applied: float | None = None


class Stream:
    """One source's loop. Subclasses give `open` (connect; first copy when there is no
    position yet), `poll` (apply what is new; whether there may be more right away),
    `close` (let go of the source) and `finish` (on disconnect: drop what the source kept
    for this stream, such as a replication slot)."""

    kind = "stream"
    interval = 1.0
    """Seconds between polls when the source had nothing new (``interval=``)."""
    max_backoff = 30.0
    """The longest wait between tries at a failing source (``max_backoff=``)."""

    def __init__(
        self,
        name: str,
        replica: Replica,
        changed: Callable[[str], None],
        *,
        interval: float | None = None,
        max_backoff: float | None = None,
    ):
        self.name = name
        self.replica = replica
        self.changed = changed
        self.interval = self.interval if interval is None else interval
        self.max_backoff = self.max_backoff if max_backoff is None else max_backoff
        self.state = "starting"
        self.last_error: str | None = None
        self.retries = 0
        self.behind: float | None = None
        """How much the source holds that the replica has not applied (bytes of WAL or file)."""
        self.tables: dict[str, TableStatus] = {}
        self._stop = threading.Event()
        self._thread: threading.Thread | None = None

    # -- what a kind of stream gives -----------------------------------------------------

    def open(self) -> None:
        raise NotImplementedError

    def poll(self) -> bool:
        raise NotImplementedError

    def close(self) -> None:
        """Let go of the source's connection or files."""

    def finish(self) -> None:
        """On disconnect: remove what the source keeps for this stream."""

    # -- the loop ------------------------------------------------------------------------

    def start(self) -> None:
        """The first `open` here (its errors are the caller's), then the loop in a thread."""
        self.open()
        self.state = "running"
        self._thread = threading.Thread(target=self._run, name=f"aiser-stream-{self.name}")
        self._thread.daemon = True
        self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        """Ask the loop to stop after its current batch, and wait for it."""
        self._stop.set()
        if self._thread is not None and self._thread is not threading.current_thread():
            self._thread.join(timeout)
        self.state = "stopped"

    def applied(self, label: str, rows: int, lag: float) -> None:
        """Count a batch's rows for table `label` and tell the listeners."""
        status = self.tables.setdefault(label, TableStatus())
        status.rows_applied += rows
        status.lag_s = max(lag, 0.0)
        status.last_applied = time.time()
        self.changed(f"data:{label}")

    def caught_up(self) -> None:
        """Nothing new at the source: no table is behind it."""
        for status in self.tables.values():
            status.lag_s = 0.0

    def _run(self) -> None:
        backoff, healthy = 0.0, True
        while not self._stop.is_set():
            try:
                if not healthy:
                    self.open()
                    healthy, backoff = True, 0.0
                    self.state, self.last_error = "running", None
                more = self.poll()
            except Exception as exc:  # a source gone or refusing: retried, and said so
                healthy = False
                self.retries += 1
                self.state = "retrying"
                self.last_error = redact(f"{type(exc).__name__}: {first_line(exc)}")
                self._close_quietly()
                backoff = min(self.max_backoff, backoff * 2 if backoff else 0.25)
                self._stop.wait(backoff)
                continue
            if not more:
                self._stop.wait(self.interval)
        self._close_quietly()

    def _close_quietly(self) -> None:
        try:
            self.close()
        except Exception as exc:  # closing a dead connection may fail too; nothing to do
            self.last_error = self.last_error or first_line(exc)


def first_line(exc: BaseException) -> str:
    text = str(exc).strip()
    return text.splitlines()[0] if text else type(exc).__name__
