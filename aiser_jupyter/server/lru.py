"""A size-bounded map for the request path: least recently used out first, look-ups at the
speed of ``OrderedDict`` (C), optionally with a time to live per entry. Each operation is
one or two C calls, so worker threads may share one (an entry evicted by another thread
between them is simply gone)."""

from __future__ import annotations

import time
from collections import OrderedDict
from typing import Any


class Lru:
    """At most `size` entries; `ttl` seconds (None: no expiry) from when each was put."""

    __slots__ = ("_data", "size", "ttl")

    def __init__(self, size: int, ttl: float | None = None):
        self.size = size
        self.ttl = ttl
        self._data: OrderedDict[Any, tuple[float, Any]] = OrderedDict()

    def get(self, key: Any) -> Any | None:
        """The value under `key` (now the most recently used), or None (absent or expired)."""
        data = self._data
        item = data.get(key)
        if item is None:
            return None
        if item[0] <= time.monotonic():
            data.pop(key, None)
            return None
        try:  # noqa: SIM105 (suppress() costs a context manager on the hot path)
            data.move_to_end(key)
        except KeyError:  # another thread evicted it meanwhile: the value still answers
            pass
        return item[1]

    def put(self, key: Any, value: Any) -> None:
        data = self._data
        expires = time.monotonic() + self.ttl if self.ttl is not None else float("inf")
        data[key] = (expires, value)
        data.move_to_end(key)
        if len(data) > self.size:
            data.popitem(last=False)

    def pop(self, key: Any) -> None:
        self._data.pop(key, None)

    def clear(self) -> None:
        self._data.clear()

    def __len__(self) -> int:
        return len(self._data)
