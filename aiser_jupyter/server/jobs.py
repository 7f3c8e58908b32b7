"""Running queries for many clients: Sessions in worker threads, a result cache, one run per query.

A Session is not thread-safe, so each worker thread owns one Session for its life; the event
loop only awaits. Identical queries in flight at once share one run, answers are cached by
query and security context (size-bounded LRU with a TTL), and a query still running after
`continue_wait` seconds is reported as such so that Cube clients ask again.
"""

from __future__ import annotations

import asyncio
import queue
import threading
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

if TYPE_CHECKING:
    from aiser_jupyter.server.metrics import Metrics
    from aiser_jupyter.sessions import Session

T = TypeVar("T")

PICKUP_SECONDS = 300.0
"""How long an answer whose waiters all gave up ('Continue wait') is kept for their retry."""


class SessionPool:
    """Worker threads, each bound to one Session for its life."""

    def __init__(self, sessions: list[Session], *, owned: bool):
        self.sessions = sessions
        self._owned = owned
        self._idle: queue.SimpleQueue[Session] = queue.SimpleQueue()
        for session in sessions:
            self._idle.put(session)
        self._local = threading.local()
        self._executor = ThreadPoolExecutor(
            max_workers=len(sessions), thread_name_prefix="aiser-query", initializer=self._bind
        )

    def _bind(self) -> None:
        self._local.session = self._idle.get()

    def run(self, work: Callable[[Session], T]) -> asyncio.Future[T]:
        """`work(session)` in a worker thread, as a future of the running event loop."""
        loop = asyncio.get_running_loop()
        return loop.run_in_executor(self._executor, lambda: work(self._local.session))

    def close(self) -> None:
        self._executor.shutdown(wait=True, cancel_futures=True)
        if self._owned:
            for session in self.sessions:
                session.close()


class Answers:
    """Cached, shared, time-boxed answers; used from the event loop thread only."""

    def __init__(
        self,
        pool: SessionPool,
        metrics: Metrics,
        *,
        cache_size: int,
        cache_ttl: float,
        continue_wait: float,
    ):
        from cachetools import TTLCache

        self.pool = pool
        self.metrics = metrics
        self.continue_wait = continue_wait
        self.cache: TTLCache | None = (
            TTLCache(cache_size, cache_ttl) if cache_size > 0 and cache_ttl > 0 else None
        )
        self._pickup: TTLCache = TTLCache(max(cache_size, 64), PICKUP_SECONDS)
        self._running: dict[str, asyncio.Future[Any]] = {}
        self._given_up: set[str] = set()
        self._generation = 0

    def clear(self) -> None:
        """Forget every cached answer (the model changed); runs still going are not joined,
        and what they give is not kept."""
        if self.cache is not None:
            self.cache.clear()
        self._pickup.clear()
        self._running.clear()
        self._generation += 1

    async def get(
        self, key: str, work: Callable[[Session], Any], *, use_cache: bool = True
    ) -> Any | None:
        """The answer for `key` (cached, or from `work` run once however many ask at once);
        None when it is still running after `continue_wait` seconds: ask again."""
        if use_cache and self.cache is not None:
            hit = self.cache.get(key)
            self.metrics.cache_lookup(hit is not None)
            if hit is not None:
                return hit
        if key in self._pickup:
            return self._pickup.pop(key)
        future = self._running.get(key)
        if future is None:
            future = self._start(key, work)
        try:
            return await asyncio.wait_for(asyncio.shield(future), self.continue_wait)
        except asyncio.TimeoutError:
            self._given_up.add(key)
            self.metrics.continue_wait.inc()
            return None

    def _start(self, key: str, work: Callable[[Session], Any]) -> asyncio.Future[Any]:
        self.metrics.in_flight.inc()
        future = self.pool.run(work)
        self._running[key] = future
        generation = self._generation
        future.add_done_callback(lambda done: self._finished(key, done, generation))
        return future

    def _finished(self, key: str, future: asyncio.Future[Any], generation: int) -> None:
        self.metrics.in_flight.dec()
        if self._running.get(key) is future:
            del self._running[key]
        given_up = key in self._given_up
        self._given_up.discard(key)
        stale = generation != self._generation
        if stale or future.cancelled() or future.exception() is not None:
            return
        if self.cache is not None:
            self.cache[key] = future.result()
        if given_up:
            self._pickup[key] = future.result()
