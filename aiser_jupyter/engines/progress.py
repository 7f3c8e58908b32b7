"""One line of progress for work that takes more than a moment (Spark stages, API pages).

Quick work shows nothing: the line appears only once `delay` seconds have passed, is
rewritten in place, and is wiped when the work ends, so a finished cell keeps only its result.
"""

from __future__ import annotations

import sys
import threading
import time
from collections.abc import Callable
from typing import Any, TextIO

ProgressCallback = Callable[[Any], object]
"""Called with a progress report (its ``str`` is the line a user reads)."""


class ProgressLine:
    """A callback that prints reports to `stream` on one line, after `delay` seconds."""

    def __init__(self, delay: float = 1.0, stream: TextIO | None = None):
        self.delay = delay
        self.stream = stream
        self._started = time.monotonic()
        self._width = 0
        self._lock = threading.Lock()

    def __call__(self, report: Any) -> None:
        if time.monotonic() - self._started < self.delay:
            return
        text = str(report)
        with self._lock:
            out = self.stream or sys.stdout
            out.write("\r" + text.ljust(self._width))
            out.flush()
            self._width = max(self._width, len(text))

    def close(self) -> None:
        """Wipe the line, if one was printed."""
        with self._lock:
            if self._width:
                out = self.stream or sys.stdout
                out.write("\r" + " " * self._width + "\r")
                out.flush()
                self._width = 0


def progress_callback(progress: bool | ProgressCallback | None) -> ProgressCallback | None:
    """What a `progress` argument means: True, a fresh `ProgressLine`; a callable, itself;
    False or None, no progress."""
    if progress is True:
        return ProgressLine()
    return progress or None


class QueryWatch:
    """How a long query is doing, asked of the database by one thread that wakes a few times
    a second: a query under `delay` seconds costs nothing but two assignments.

    ``probe()`` returns the share done in percent, or a negative number when unknown.
    """

    def __init__(self, name: str, probe: Callable[[], float], delay: float = 1.0):
        self.name = name
        self.probe = probe
        self.delay = delay
        self._since: float | None = None
        self._line: ProgressLine | None = None
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def begin(self) -> None:
        self._since = time.monotonic()
        if self._thread is None:
            self._thread = threading.Thread(target=self._watch, name="aiser-progress", daemon=True)
            self._thread.start()

    def end(self) -> None:
        with self._lock:
            self._since = None
            if self._line is not None:
                self._line.close()
                self._line = None

    def _watch(self) -> None:
        while True:
            time.sleep(min(0.25, self.delay))
            with self._lock:
                since = self._since
                if since is None or time.monotonic() - since < self.delay:
                    continue
                try:
                    done = self.probe()
                except Exception:  # the query ended between the check and the probe
                    continue
                self._line = self._line or ProgressLine(delay=0)
                share = f"{done:.0f}% · " if done >= 0 else ""
                self._line(f"{self.name}: {share}{time.monotonic() - since:.0f} s")
