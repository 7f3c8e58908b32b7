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
