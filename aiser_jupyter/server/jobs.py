"""Running queries for many clients: Sessions in worker threads, a result cache, one run per query.

A Session is not thread-safe, so each worker thread owns one Session for its life; the event
loop only awaits. Identical queries in flight at once share one run, answers are cached by
query and security context (size-bounded LRU with a TTL) until a table they read changes,
and a query still running after `continue_wait` seconds is reported as such so that Cube
clients ask again. With Redis (shared.py) behind, every process shares answers and runs.
"""

from __future__ import annotations

import asyncio
import os
import queue
import threading
import time
from collections.abc import Callable
from concurrent.futures import ThreadPoolExecutor
from typing import TYPE_CHECKING, Any, TypeVar

from aiser_jupyter.server.lru import Lru
from aiser_jupyter.server.shared import Entry, Unavailable

if TYPE_CHECKING:
    from aiser_jupyter.server.metrics import Metrics
    from aiser_jupyter.server.shared import SharedCache
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
    """Cached, shared, time-boxed answers; used from the event loop thread only.

    An answer is kept with the tables it read and their versions then; it is good while
    those versions stand (`data_changed` moves one). With a `shared` tier (Redis) a miss
    asks it before running, and a run is claimed there so that one process runs it.
    """

    def __init__(
        self,
        pool: SessionPool,
        metrics: Metrics,
        *,
        cache_size: int,
        cache_ttl: float,
        continue_wait: float,
        shared: SharedCache | None = None,
    ):
        from cachetools import TTLCache

        self.pool = pool
        self.metrics = metrics
        self.continue_wait = continue_wait
        self.shared = shared
        self.cache: Lru | None = (
            Lru(cache_size, cache_ttl) if cache_size > 0 and cache_ttl > 0 else None
        )
        self.versions: dict[str, str] = {}
        """Tables' versions by lowercase name; a table never changed has none."""
        self._pickup: TTLCache = TTLCache(max(cache_size, 64), PICKUP_SECONDS)
        self._running: dict[str, asyncio.Future[Any]] = {}
        self._given_up: set[str] = set()
        self._generation = 0
        self._tasks: set[asyncio.Task[Any]] = set()

    def clear(self) -> None:
        """Forget every cached answer (the model changed); runs still going are not joined,
        and what they give is not kept."""
        if self.cache is not None:
            self.cache.clear()
        self._pickup.clear()
        self._running.clear()
        self._generation += 1

    def data_changed(self, table: str) -> None:
        """`table`'s rows changed here: answers that read it are stale, in every process."""
        version = f"{time.time_ns():x}.{os.getpid()}"
        self.versions[table] = version
        if self.shared is not None:
            self._spawn(self.shared.changed(table, version))

    def heard(self, table: str, version: str) -> None:
        """Another process says `table` changed (its version now)."""
        self.versions[table] = version

    def stamp(self, tables: tuple[str, ...]) -> tuple[str, ...]:
        versions = self.versions
        return tuple([versions.get(table, "") for table in tables])

    def cached(self, key: str) -> bytes | None:
        """The body cached here for `key` while its tables are unchanged; None otherwise."""
        entry = self.cache.get(key) if self.cache is not None else None
        if entry is None:
            return None
        body, tables, stamp = entry
        if tables and stamp != self.stamp(tables):
            self.cache.pop(key)  # type: ignore[union-attr]
            return None
        return body

    async def get(
        self, key: str, work: Callable[[Session], Entry], *, use_cache: bool = True
    ) -> bytes | None:
        """The answer for `key` (cached, or from `work` run once however many ask at once,
        in this process or any other sharing the tier); None when it is still running after
        `continue_wait` seconds: ask again."""
        if use_cache and self.cache is not None:
            hit = self.cached(key)
            if hit is None and self.shared is not None:
                hit = await self._shared_hit(key)
            self.metrics.cache_lookup(hit is not None)
            if hit is not None:
                return hit
        if key in self._pickup:
            return self._pickup.pop(key)[0]
        future = self._running.get(key)
        if future is None:
            future = self._start(key, work)
        try:
            entry = await asyncio.wait_for(asyncio.shield(future), self.continue_wait)
        except asyncio.TimeoutError:
            self._given_up.add(key)
            self.metrics.continue_wait.inc()
            return None
        return entry[0]

    async def _shared_hit(self, key: str) -> bytes | None:
        """The shared tier's answer for `key` if its tables are unchanged (kept here too)."""
        assert self.shared is not None
        try:
            entry = await self.shared.get(key)
        except Unavailable:
            return None
        if entry is None or (entry[1] and entry[2] != self.stamp(entry[1])):
            return None
        self.cache.put(key, entry)  # type: ignore[union-attr]
        return entry[0]

    def _start(self, key: str, work: Callable[[Session], Entry]) -> asyncio.Future[Any]:
        self.metrics.in_flight.inc()
        if self.shared is None:
            future: asyncio.Future[Any] = self.pool.run(work)
        else:
            future = asyncio.ensure_future(self._run_shared(key, work))
        self._running[key] = future
        generation = self._generation
        future.add_done_callback(lambda done: self._finished(key, done, generation))
        return future

    async def _run_shared(self, key: str, work: Callable[[Session], Entry]) -> Entry:
        """Run `key`'s query once across processes: claim it, or wait for whoever holds it;
        alone (here) whenever Redis does not answer."""
        shared = self.shared
        assert shared is not None
        try:
            while True:
                mine, run = await shared.claim(key)
                if mine:
                    break
                if run is not None:
                    entry = await shared.wait(key, run)
                    if entry is not None:
                        self.metrics.shared_waits.inc()
                        return entry
        except Unavailable:
            return await self.pool.run(work)
        assert run is not None
        future = self.pool.run(work)
        holding = asyncio.ensure_future(shared.hold(key, run, future))
        try:
            entry = await future
        except BaseException:
            await shared.finish(key, run, None)
            raise
        finally:
            holding.cancel()
        await shared.finish(key, run, entry)
        await shared.put(key, entry)
        return entry

    def _finished(self, key: str, future: asyncio.Future[Any], generation: int) -> None:
        self.metrics.in_flight.dec()
        if self._running.get(key) is future:
            del self._running[key]
        given_up = key in self._given_up
        self._given_up.discard(key)
        stale = generation != self._generation
        if stale or future.cancelled() or future.exception() is not None:
            return
        entry = future.result()
        if self.cache is not None:
            self.cache.put(key, entry)
        if given_up:
            self._pickup[key] = entry

    def _spawn(self, work: Any) -> None:
        """Run a coroutine on its own (kept referenced until it ends)."""
        task = asyncio.ensure_future(work)
        self._tasks.add(task)
        task.add_done_callback(self._tasks.discard)
