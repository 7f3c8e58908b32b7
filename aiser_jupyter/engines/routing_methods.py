"""The router's and the result cache's half of Session: ``route``, ``run_routed``,
``cache_stats``, ``cache_clear``.

A mixin like the semantic layer's: it uses Session's connections and its ``_run`` (which
records the history and hides secrets); the routed plan reaches ``_run`` as an engine whose
``execute`` looks in the cache, runs the plan, and keeps the answer.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiser_jupyter.engines.router import FEDERATE, PUSHDOWN, SCALE_OUT, Host, RoutePlan, Router

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.cache import CacheStats, ResultCache
    from aiser_jupyter.result import Result
    from aiser_jupyter.sources.connection import Connection

CACHE_DEFAULTS = {"cache": "on", "cache_ttl": 0, "cache_memory_mb": 512, "cache_disk_mb": 4096}
"""Settings the cache reads (``AISER_CACHE``…), with the values used until Settings has them.
``cache_ttl`` is for database results, which cannot say whether they changed: 0 keeps none
(a re-run cell shows today's rows); files, lakes and APIs are cached by their version."""


@dataclass
class RoutedEngine:
    """A plan as an engine, so that ``Session._run`` runs and records it like any query."""

    kind: str
    dialect: str
    paramstyle: str
    run: Callable[[str, Any, int | None], pa.Table | None]

    def execute(self, sql: str, params: Any = None, limit: int | None = None) -> pa.Table | None:
        return self.run(sql, params, limit)


class RoutingMethods:
    """Session methods that place queries on engines and answer repeats from the cache."""

    settings: Settings
    connections: dict[str, Connection]
    connection: Callable[[str | None], Connection]
    default_duckdb: Callable[[], Connection]
    on_change: Callable[[Callable[[str], object]], Callable[[], None]]
    _run: Callable[..., Result]

    @property
    def router(self) -> Router:
        """The Session's router (its catalogs are read again when connections change)."""
        router = self.__dict__.get("_router")
        if router is None:
            router = self.__dict__["_router"] = Router()
            self.on_change(lambda what: router.forget() if what == "connections" else None)
        return router

    @property
    def result_cache(self) -> ResultCache:
        """Results in memory and under ``$AISER_HOME/cache``, bounded by the cache settings."""
        cache = self.__dict__.get("_result_cache")
        if cache is None:
            from aiser_jupyter.config import home
            from aiser_jupyter.engines.cache import MIB, ResultCache

            cache = self.__dict__["_result_cache"] = ResultCache(
                home() / "cache",
                memory_bytes=int(self._setting("cache_memory_mb")) * MIB,
                disk_bytes=int(self._setting("cache_disk_mb")) * MIB,
            )
        return cache

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
        addressed = self.connection(connection)
        host = Host(self.settings.default_connection, self.default_duckdb)
        return self.router.route(
            sql, addressed, self.connections, host, engine=engine, dialect=dialect
        )

    def run_routed(
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
        target = self.connections[plan.connection]
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
        result = self._run(_as(target, executor), "sql", sql, prepare, limit, list(notes or []))
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

        writes: dict[str, int] = self.__dict__.setdefault("_writes", {})
        enabled = use_cache and str(self._setting("cache")).lower() not in ("off", "0", "false")
        key = (
            cache_key(plan, values, limit, self.connections) if enabled and plan.is_query else None
        )
        current = None
        if key is not None:
            ttl = float(self._setting("cache_ttl"))
            external = getattr(self, "external_tables", {})  # LakeMethods' lake and API tables
            current, _ = version(plan, self.connections, writes, ttl, external)
        if key is not None and current is not None:
            hit = self.result_cache.get(key, current)
            if hit is not None:
                plan.cached, plan.cache_age = True, hit[1]
                return hit[0]
        table = self.router.execute(plan, sql, values, limit, self.connections)
        if not plan.is_query:
            writes[plan.connection] = writes.get(plan.connection, 0) + 1
            self.router.forget(plan.connection)
        elif key is not None and current is not None and table is not None:
            self.result_cache.put(key, current, table)
        return table

    def _setting(self, name: str) -> Any:
        return getattr(self.settings, name, CACHE_DEFAULTS[name])


def _as(target: Connection, engine: RoutedEngine) -> Connection:
    """`target` under its own name, with the plan as its engine."""
    from aiser_jupyter.sources.connection import Connection

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
