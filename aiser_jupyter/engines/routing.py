"""The router part: where a query runs (pushed down, federated in DuckDB, scaled out to
Spark), and the result cache that answers a repeat whose sources have not changed.

``Routing(settings, sources, executor)`` reads the connections from `sources` (anything
with ``connections``, ``connection``, ``default_duckdb`` and ``external_tables``: the
``ConnectionSource`` protocol, which ``sources.Sources`` meets) and
runs through `executor` (an ``Executor``: history, secrets hidden), the routed plan
reaching it as an engine whose ``execute`` looks in the cache, runs the plan, and keeps
the answer. ``forget`` is called when the connections change (their catalogs are read
again).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any, Protocol

from aiser_jupyter.engines.connection import Connection
from aiser_jupyter.engines.router import FEDERATE, PUSHDOWN, SCALE_OUT, Host, RoutePlan, Router
from aiser_jupyter.security.context import current as current_context
from aiser_jupyter.security.context import subject_of

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.cache import CacheStats, ResultCache
    from aiser_jupyter.engines.execute import Executor
    from aiser_jupyter.engines.owners import CacheOwners
    from aiser_jupyter.result import Result

CACHE_DEFAULTS = {"cache": "on", "cache_ttl": 0, "cache_memory_mb": 512, "cache_disk_mb": 4096}
"""Settings the cache reads (``AISER_CACHE``…), with the values used until Settings has them.
``cache_ttl`` is for database results, which cannot say whether they changed: 0 keeps none
(a re-run cell shows today's rows); files, lakes and APIs are cached by their version."""


class ConnectionSource(Protocol):
    """What the router reads of the connections (``sources.Sources`` is one)."""

    connections: dict[str, Connection]
    external_tables: dict[str, Any]

    def connection(self, name: str | None = None) -> Connection: ...

    def default_duckdb(self) -> Connection: ...


@dataclass
class RoutedEngine:
    """A plan as an engine, so that the executor runs and records it like any query."""

    kind: str
    dialect: str
    paramstyle: str
    run: Callable[[str, Any, int | None], pa.Table | None]

    def execute(self, sql: str, params: Any = None, limit: int | None = None) -> pa.Table | None:
        return self.run(sql, params, limit)


class Routing:
    """Places queries on engines and answers repeats from the cache."""

    def __init__(self, settings: Settings, sources: ConnectionSource, executor: Executor):
        self.settings = settings
        self.sources = sources
        self.executor = executor
        self.planner = Router()
        """The planner (``engines.router.Router``), with its per-connection catalogs."""
        self._result_cache: ResultCache | None = None
        self._writes: dict[str, int] = {}
        self.requester: Callable[[], str] = lambda: subject_of(current_context())
        """Whose query runs now (GDPR's data subject); the Session sets it."""
        self._owners: CacheOwners | None = None

    @property
    def cache_owners(self) -> CacheOwners:
        """Who asked for each cached answer (``$AISER_HOME/cache-owners.db``)."""
        if self._owners is None:
            from aiser_jupyter.config import home
            from aiser_jupyter.engines.owners import CacheOwners

            self._owners = CacheOwners(home() / "cache-owners.db")
        return self._owners

    def forget(self, what: str = "connections") -> None:
        """A change event: when the connections changed, their catalogs are read again."""
        if what == "connections":
            self.planner.forget()

    @property
    def result_cache(self) -> ResultCache:
        """Results in memory and under ``$AISER_HOME/cache``, bounded by the cache settings."""
        if self._result_cache is None:
            from aiser_jupyter.config import home
            from aiser_jupyter.engines.cache import MIB, ResultCache

            self._result_cache = ResultCache(
                home() / "cache",
                memory_bytes=int(self._setting("cache_memory_mb")) * MIB,
                disk_bytes=int(self._setting("cache_disk_mb")) * MIB,
            )
        return self._result_cache

    def route(
        self,
        sql: str,
        connection: str | None = None,
        engine: str | None = None,
        dialect: str | None = None,
    ) -> RoutePlan:
        """Where `sql` would run and why, and the SQL each engine would get; runs nothing.

        `connection` is where the query is addressed (default: the current one), `engine` a
        connection name or engine kind that must run it, `dialect` what it is written in
        (default: the addressed connection's)."""
        addressed = self.sources.connection(connection)
        host = Host(self.settings.default_connection, self.sources.default_duckdb)
        return self.planner.route(
            sql, addressed, self.sources.connections, host, engine=engine, dialect=dialect
        )

    def run(
        self,
        sql: str,
        connection: str | None = None,
        params: Mapping[str, Any] | Sequence[Any] | None = None,
        *,
        engine: str | None = None,
        dialect: str | None = None,
        limit: int | None = None,
        cache: bool = True,
        notes: list[str] | None = None,
    ) -> Result:
        """Route `sql` (rendered and composed; ``:name`` binds from a `params` mapping), run it,
        answer from the cache when its sources have not changed. The Result's ``plan`` says
        where it ran and why, and whether it came from the cache."""
        from aiser_jupyter.sqltext.params import bind

        plan = self.route(sql, connection, engine, dialect)
        target = self.sources.connections[plan.connection]
        lookup: Mapping[str, Any] = params if isinstance(params, Mapping) else {}

        def prepare() -> tuple[str, Any]:
            if params is None or isinstance(params, Mapping):
                return bind(plan.sql, plan.dialect, lookup, target.engine.paramstyle)
            return plan.sql, list(params)

        kind = "+".join(dict.fromkeys([target.kind, *(s.engine for s in plan.steps)]))
        executor = RoutedEngine(
            kind,
            plan.dialect,
            target.engine.paramstyle,
            lambda final, values, rows: self._execute_plan(plan, final, values, rows, cache),
        )
        result = self.executor.run(
            _as(target, executor), "sql", sql, prepare, limit, list(notes or [])
        )
        result.notes.extend(_plan_notes(plan))
        result.plan = plan
        return result

    def cache_stats(self) -> CacheStats:
        """Hits, misses and what the result cache holds, in memory and on disk."""
        return self.result_cache.stats()

    def cache_clear(self) -> int:
        """Empty the result cache (disk too); how many entries it held."""
        return self.result_cache.clear()

    def _execute_plan(
        self, plan: RoutePlan, sql: str, values: Any, limit: int | None, use_cache: bool
    ) -> pa.Table | None:
        """The cached answer when it is still good; otherwise run the plan and keep its answer.
        A statement bumps its connection's write count, so entries that read it go stale."""
        from aiser_jupyter.engines.cache import cache_key, version

        connections = self.sources.connections
        writes = self._writes
        enabled = use_cache and str(self._setting("cache")).lower() not in ("off", "0", "false")
        key = cache_key(plan, values, limit, connections) if enabled and plan.is_query else None
        current = None
        if key is not None:
            ttl = float(self._setting("cache_ttl"))
            external = self.sources.external_tables  # lake and API tables
            current, _ = version(plan, connections, writes, ttl, external)
        if key is not None and current is not None:
            hit = self.result_cache.get(key, current)
            if hit is not None:
                plan.cached, plan.cache_age = True, hit[1]
                self.cache_owners.add(self.requester(), key)
                return hit[0]
        table = self.planner.execute(plan, sql, values, limit, connections)
        if not plan.is_query:
            writes[plan.connection] = writes.get(plan.connection, 0) + 1
            self.planner.forget(plan.connection)
        elif (
            key is not None
            and current is not None
            and table is not None
            and self.result_cache.put(key, current, table)
        ):
            self.cache_owners.add(self.requester(), key)
        return table

    def _setting(self, name: str) -> Any:
        return getattr(self.settings, name, CACHE_DEFAULTS[name])


def _as(target: Connection, engine: RoutedEngine) -> Connection:
    """`target` under its own name, with the plan as its engine."""
    return Connection(target.name, engine, target.url)  # type: ignore[arg-type]


def _plan_notes(plan: RoutePlan) -> list[str]:
    """What the caption says about the plan: where it ran unless as addressed, and the cache."""
    notes = []
    if plan.decision == FEDERATE:
        owners = dict.fromkeys(s.connection for s in plan.sources)
        notes.append(f"federated in DuckDB ({' + '.join(owners)})")
    elif plan.decision in (PUSHDOWN, SCALE_OUT):
        notes.append(f"routed to {plan.connection}")
    if plan.cached and plan.cache_age is not None:
        notes.append(f"cached, {_age(plan.cache_age)} old")
    return notes


def _age(seconds: float) -> str:
    if seconds < 60:
        return f"{seconds:.0f} s"
    if seconds < 3600:
        return f"{seconds / 60:.0f} min"
    return f"{seconds / 3600:.1f} h"
