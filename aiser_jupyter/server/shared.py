"""Answers, running queries and data versions shared by every server process through Redis.

``aiser serve --cache redis://HOST:PORT/DB`` (or ``AISER_CACHE_URL``) puts this tier behind
each process's own cache (jobs.py), so that processes on one machine or many behind a load
balancer answer a query once between them:

- an answer is kept under ``aiser:answer:<key>`` for the cache's time to live, with the
  tables it read and their versions when it was made;
- a query being computed holds ``aiser:lock:<key>`` (``SET NX`` with an expiry, renewed
  while it runs) whose value names the run; whoever else asks waits for ``aiser:done:<run>``
  instead of running it again (and says "Continue wait" meanwhile, as Cube does);
- a table's version (``aiser:versions``, a hash) changes when a process hears that its rows
  changed, and is published on ``aiser:changed`` so every process drops what it read.

Redis is a cache, never a dependency: when it cannot be reached each call fails fast, the
process answers from its own cache and computes for itself, logs one warning per outage,
and tries Redis again a few seconds later.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import time
import uuid
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import orjson

if TYPE_CHECKING:
    from aiser_jupyter.server.metrics import Metrics

log = logging.getLogger("aiser_jupyter.server")

PREFIX = "aiser:"
LOCK_SECONDS = 30.0
"""A running query's lock lives this long past its last renewal (its process died: others
take over after this)."""
RENEW_SECONDS = 10.0
PICKUP_SECONDS = 300.0
"""How long a finished run's answer waits for those who asked while it ran."""
RETRY_SECONDS = 2.0
"""After a failed call, Redis is left alone this long (calls fail at once meanwhile)."""
POLL_SECONDS = (0.005, 0.01, 0.02, 0.05)
"""Waits between looks at another process's run, growing to the last."""
TIMEOUT_SECONDS = 1.0

RELEASE = """if redis.call('get', KEYS[1]) == ARGV[1] then return redis.call('del', KEYS[1]) end
return 0"""

Entry = tuple[bytes, tuple[str, ...], tuple[str, ...]]
"""A cached answer: its body, the tables it read and their versions when it was made."""


class Unavailable(Exception):
    """Redis did not answer; the caller goes on alone."""


class SharedCache:
    """The Redis tier: answers, running queries' locks and tables' versions, by key."""

    def __init__(self, url: str, metrics: Metrics, *, ttl: float, namespace: str = ""):
        import redis.asyncio as aioredis

        self.url = url
        self.ttl = ttl
        self.metrics = metrics
        self.prefix = f"{PREFIX}{namespace}:" if namespace else PREFIX
        self.client = aioredis.Redis.from_url(
            url, socket_timeout=TIMEOUT_SECONDS, socket_connect_timeout=TIMEOUT_SECONDS
        )
        self._release = self.client.register_script(RELEASE)
        self._down_until = 0.0
        self._down = False

    # -- answers ---------------------------------------------------------------------

    async def get(self, key: str) -> Entry | None:
        """The answer kept under `key`, whatever its versions (the caller checks them)."""
        value = await self._call(lambda r: r.get(self._key("answer", key)))
        entry = None if value is None else _decode(value)
        self.metrics.shared_lookup(entry is not None)
        return entry

    async def put(self, key: str, entry: Entry) -> None:
        if self.ttl > 0:
            value = _encode(entry)
            with contextlib.suppress(Unavailable):
                await self._call(
                    lambda r: r.set(self._key("answer", key), value, px=int(self.ttl * 1000))
                )

    # -- runs ------------------------------------------------------------------------

    async def claim(self, key: str) -> tuple[bool, str | None]:
        """(True, run) when this process is to run `key`'s query, else (False, the run of
        the process running it); (False, None) when that run ended meanwhile."""
        run = uuid.uuid4().hex
        lock = self._key("lock", key)
        if await self._call(lambda r: r.set(lock, run, nx=True, px=int(LOCK_SECONDS * 1000))):
            return True, run
        other = await self._call(lambda r: r.get(lock))
        return False, other.decode() if other is not None else None

    async def hold(self, key: str, run: str, work: asyncio.Future[Any]) -> None:
        """Renew the lock of `run` until `work` is done (a long query keeps its lock)."""
        lock = self._key("lock", key)
        while not work.done():
            await asyncio.wait([work], timeout=RENEW_SECONDS)
            if not work.done():
                with contextlib.suppress(Unavailable):
                    await self._call(lambda r: r.pexpire(lock, int(LOCK_SECONDS * 1000)))

    async def finish(self, key: str, run: str, entry: Entry | None) -> None:
        """`run` is over: its answer (None: it failed) for those waiting, the lock freed."""
        lock = self._key("lock", key)
        with contextlib.suppress(Unavailable):
            if entry is not None:
                value = _encode(entry)
                await self._call(
                    lambda r: r.set(self._key("done", run), value, px=int(PICKUP_SECONDS * 1000))
                )
            await self._call(lambda r: self._release(keys=[lock], args=[run], client=r))

    async def wait(self, key: str, run: str) -> Entry | None:
        """The answer of another process's `run`, once it is done; None when the run ended
        without one (it failed, or its process died and the lock expired): run it here."""
        lock = self._key("lock", key)
        done = self._key("done", run)
        attempt = 0
        while True:
            value = await self._call(lambda r: r.get(done))
            if value is not None:
                return _decode(value)
            holder = await self._call(lambda r: r.get(lock))
            if holder is None or holder.decode() != run:
                value = await self._call(lambda r: r.get(done))
                return None if value is None else _decode(value)
            await asyncio.sleep(POLL_SECONDS[min(attempt, len(POLL_SECONDS) - 1)])
            attempt += 1

    # -- data versions ---------------------------------------------------------------

    async def versions(self) -> dict[str, str]:
        """Every table's version as Redis knows it."""
        got = await self._call(lambda r: r.hgetall(self._key("versions")))
        return {k.decode(): v.decode() for k, v in got.items()}

    async def changed(self, table: str, version: str) -> None:
        """Tell every process that `table`'s rows changed (its new `version`)."""

        async def publish(r: Any) -> None:
            async with r.pipeline(transaction=False) as pipe:
                pipe.hset(self._key("versions"), table, version)
                pipe.publish(self._key("changed"), f"{table}\x1f{version}")
                await pipe.execute()

        with contextlib.suppress(Unavailable):
            await self._call(publish)

    async def listen(self, heard: Callable[[str, str], None]) -> None:
        """Call `heard(table, version)` for every change any process publishes, until
        cancelled; across outages (missed changes are read back from the hash)."""
        while True:
            pubsub = self.client.pubsub(ignore_subscribe_messages=True)
            try:
                await pubsub.subscribe(self._key("changed"))
                for table, version in (await self.versions()).items():
                    heard(table, version)
                async for message in pubsub.listen():
                    table, _, version = message["data"].decode().partition("\x1f")
                    heard(table, version)
            except asyncio.CancelledError:
                raise
            except Exception as exc:  # Redis went away: wait, then listen again
                self._failed(exc)
                await asyncio.sleep(RETRY_SECONDS)
            finally:
                with contextlib.suppress(Exception):
                    await pubsub.aclose()

    async def close(self) -> None:
        with contextlib.suppress(Exception):
            await self.client.aclose()

    # -- plumbing --------------------------------------------------------------------

    def _key(self, kind: str, key: str = "") -> str:
        return f"{self.prefix}{kind}:{key}" if key else f"{self.prefix}{kind}"

    async def _call(self, op: Callable[[Any], Any]) -> Any:
        """`op(client)` awaited; Unavailable when Redis is down or does not answer."""
        if self._down and time.monotonic() < self._down_until:
            raise Unavailable
        try:
            result = await op(self.client)
        except Exception as exc:
            from redis.exceptions import RedisError

            if not isinstance(exc, RedisError | OSError | asyncio.TimeoutError):
                raise
            self._failed(exc)
            raise Unavailable from None
        if self._down:
            self._down = False
            log.warning("shared cache %s is reachable again", self._where())
        return result

    def _failed(self, exc: BaseException) -> None:
        self.metrics.shared_errors.inc()
        self._down_until = time.monotonic() + RETRY_SECONDS
        if not self._down:
            self._down = True
            log.warning(
                "shared cache %s unreachable (%s): answering from this process's own cache",
                self._where(),
                type(exc).__name__,
            )

    def _where(self) -> str:
        from aiser_jupyter.security.secrets import redact

        return redact(self.url)


def _encode(entry: Entry) -> bytes:
    body, tables, stamp = entry
    return orjson.dumps([tables, stamp]) + b"\n" + body


def _decode(value: bytes) -> Entry:
    head, _, body = value.partition(b"\n")
    tables, stamp = orjson.loads(head)
    return body, tuple(tables), tuple(stamp)
