"""The live part: watches that re-run when the tables they read change, or on an interval.

A watch's run never overlaps itself: a change heard while it runs marks it pending, and
however many changes come in meanwhile, one more run follows (bursts coalesce). Runs go
where the notebook's own code runs when there is such a place: in a kernel, the kernel's
event loop (between cells, never during one), so a re-run never meets a cell's query on
the same DuckDB connection (DuckDB 2 refuses a second call on a busy connection). Outside a
kernel (a script, ``aiser alerts run``, tests) one worker thread of the Live runs them,
one at a time, for the same reason.
"""

from __future__ import annotations

import asyncio
import contextlib
import queue
import threading
import time
from collections.abc import Callable, Iterable
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError
from aiser_jupyter.live.tables import tables_read, touches
from aiser_jupyter.security.secrets import redact

if TYPE_CHECKING:
    import pandas as pd

Listener = Callable[[str], object]


class LiveError(AiserError):
    """A live watch that cannot be made: a bad interval, nothing to watch."""


def seconds(value: Any) -> float | None:
    """Seconds from ``"5s"``, ``"2m"``, ``"500ms"``, ``"1h"``, ``"1d"``, a number or a
    timedelta; None for None. Anything else, zero or less is a LiveError."""
    if value is None or value == "":
        return None
    if isinstance(value, timedelta):
        total = value.total_seconds()
    elif isinstance(value, int | float) and not isinstance(value, bool):
        total = float(value)
    else:
        text = str(value).strip().lower()
        units = (("ms", 0.001), ("min", 60), ("s", 1), ("m", 60), ("h", 3600), ("d", 86400))
        unit = next(((u, size) for u, size in units if text.endswith(u)), ("", 1))
        number = text[: len(text) - len(unit[0])].strip()
        try:
            total = float(number) * unit[1]
        except ValueError:
            raise LiveError(f"{value!r} is not a duration (say '30s', '5m' or '1h')") from None
    if total <= 0:
        raise LiveError(f"{value!r}: a duration must be more than zero")
    return total


class Watch:
    """One live thing: the tables it reads, how to re-run it, what to do with the answer."""

    def __init__(
        self,
        live: Live,
        key: str,
        tables: frozenset[str],
        run: Callable[[], Any],
        show: Callable[[Any], object] | None,
        interval: float | None,
        on_error: Callable[[Exception], object] | None,
    ):
        self.key, self.tables, self.interval = key, tables, interval
        self.runs = 0
        self.errors = 0
        self.last_run: datetime | None = None
        self.last_error: str | None = None
        self._live, self._run, self._show, self._on_error = live, run, show, on_error
        self._loop = _kernel_loop()
        self._lock = threading.Condition()
        self._busy = self._pending = False
        self._stopped = threading.Event()
        self._ticker: threading.Thread | None = None

    @property
    def stopped(self) -> bool:
        return self._stopped.is_set()

    def trigger(self) -> None:
        """Re-run soon; if a run is in flight, once more after it (never twice at once)."""
        with self._lock:
            if self._stopped.is_set():
                return
            if self._busy:
                self._pending = True
                return
            self._busy = True
        self._live._submit(self._loop, self._once)

    def wait(self, timeout: float = 10.0) -> bool:
        """Wait until no run is in flight or pending; False if `timeout` passed first."""
        deadline = time.monotonic() + timeout
        with self._lock:
            while self._busy:
                left = deadline - time.monotonic()
                if left <= 0:
                    return False
                self._lock.wait(left)
        return True

    def stop(self) -> None:
        """No more runs (one in flight finishes, but shows nothing)."""
        self._stopped.set()
        with self._lock:
            self._pending = False
            self._lock.notify_all()

    def _start(self) -> None:
        if self.interval:
            self._ticker = threading.Thread(
                target=self._tick, name=f"aiser-live-tick-{self.key}", daemon=True
            )
            self._ticker.start()

    def _tick(self) -> None:
        while not self._stopped.wait(self.interval):
            self.trigger()

    def _once(self) -> None:
        try:
            if not self._stopped.is_set():
                value = self._run()
                if self._show is not None and not self._stopped.is_set():
                    self._show(value)
                self.runs += 1
                self.last_error = None
        except Exception as exc:  # a failed re-run is reported, never raised into a thread
            self.errors += 1
            self.last_error = redact(str(exc))
            if self._on_error is not None:
                with contextlib.suppress(Exception):
                    self._on_error(exc)
        self.last_run = datetime.now()
        with self._lock:
            again = self._pending and not self._stopped.is_set()
            self._pending = False
            self._busy = again
            if not again:
                self._lock.notify_all()
        if again:
            self._live._submit(self._loop, self._once)


def _kernel_loop() -> asyncio.AbstractEventLoop | None:
    """The event loop of the kernel the caller runs in (a cell), if any."""
    try:
        loop = asyncio.get_running_loop()
    except RuntimeError:
        return None
    from IPython import get_ipython

    shell = get_ipython()
    return loop if shell is not None and getattr(shell, "kernel", None) is not None else None


class Live:
    """Watches over the Session's change bus: `watch` a query, hear ``data:<table>``
    changes, re-run what reads the table."""

    def __init__(self, on_change: Callable[[Listener], Callable[[], None]]):
        self._watches: dict[str, Watch] = {}
        self._lock = threading.Lock()
        self._jobs: queue.SimpleQueue[Callable[[], None] | None] = queue.SimpleQueue()
        self._worker: threading.Thread | None = None
        self._unsubscribe = on_change(self._heard)

    def watch(
        self,
        key: str,
        reads: str | Iterable[str],
        run: Callable[[], Any],
        show: Callable[[Any], object] | None = None,
        *,
        every: Any = None,
        dialect: str | None = None,
        on_error: Callable[[Exception], object] | None = None,
    ) -> Watch:
        """Re-run `run` when a table it reads changes (`reads`: SQL to find them in, or the
        table names) and each `every` ("30s", "5m"), handing each answer to `show`. A watch
        with the same `key` (a notebook cell, an alert) is replaced."""
        interval = seconds(every)
        tables = (
            tables_read(reads, dialect)
            if isinstance(reads, str)
            else frozenset(t.lower() for t in reads)
        )
        if not tables and not interval:
            raise LiveError("nothing to watch: the query reads no table, and no interval given")
        watch = Watch(self, key, tables, run, show, interval, on_error)
        with self._lock:
            old = self._watches.pop(key, None)
            self._watches[key] = watch
        if old is not None:
            old.stop()
        watch._start()
        return watch

    def get(self, key: str) -> Watch | None:
        return self._watches.get(key)

    def stop(self, key: str | None = None) -> int:
        """Stop the watch `key` (None: all of them); how many were stopped."""
        with self._lock:
            keys = list(self._watches) if key is None else [key] if key in self._watches else []
            stopped = [self._watches.pop(k) for k in keys]
        for watch in stopped:
            watch.stop()
        return len(stopped)

    def frame(self) -> pd.DataFrame:
        """One row per watch: what it reads, its interval, runs, errors, the last of each."""
        import pandas as pd

        columns = ["key", "tables", "every_s", "runs", "errors", "last_run", "last_error"]
        return pd.DataFrame(
            [
                {
                    "key": w.key,
                    "tables": ", ".join(sorted(w.tables)),
                    "every_s": w.interval,
                    "runs": w.runs,
                    "errors": w.errors,
                    "last_run": w.last_run,
                    "last_error": w.last_error,
                }
                for w in list(self._watches.values())
            ],
            columns=columns,
        )

    def close(self) -> None:
        self.stop()
        self._unsubscribe()
        if self._worker is not None:
            self._jobs.put(None)

    def _heard(self, what: str) -> None:
        """A change event: a ``data:`` one triggers every watch reading that table."""
        if not what.startswith("data:"):
            return
        table = what[5:]
        for watch in list(self._watches.values()):
            if watch.tables and touches(table, watch.tables):
                watch.trigger()

    def _submit(self, loop: asyncio.AbstractEventLoop | None, job: Callable[[], None]) -> None:
        if loop is not None and not loop.is_closed():
            loop.call_soon_threadsafe(job)
            return
        self._jobs.put(job)
        if self._worker is None:
            with self._lock:
                if self._worker is None:
                    self._worker = threading.Thread(
                        target=self._work, name="aiser-live", daemon=True
                    )
                    self._worker.start()

    def _work(self) -> None:
        while (job := self._jobs.get()) is not None:
            job()
