"""Where a query runs, in what SQL, and why.

The tables a query reads (sqlglot) are looked up in the connections' catalogs. One owner:
the whole query goes to it, transpiled from the user's dialect to its own. Several: DuckDB
joins them, each foreign table read by its own engine with the query's filters and columns
(federation.py). Too big for the owner (a size estimate over its kind's ``max_bytes``) while
a bigger engine, such as Spark, is connected: that one. ``engine=`` overrides. When more than
one engine could run a query and each has run its shape before, the faster median wins.
A query the catalogs cannot place runs where it was addressed, as written.
"""

from __future__ import annotations

import statistics
import time
from collections import defaultdict, deque
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiser_jupyter.engines.catalog import Catalog, RoutingError, Source, resolve
from aiser_jupyter.engines.federation import VOLATILE, Pull, plan_federation, run_federated
from aiser_jupyter.engines.registry import engine_kind, estimate
from aiser_jupyter.engines.transpile import normalised, parse, shape, to_dialect

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from aiser_jupyter.engines.connection import Connection

AS_WRITTEN, PUSHDOWN, FEDERATE, SCALE_OUT = "as written", "pushdown", "federate", "scale out"
TIMINGS_KEPT = 20
MISSING_SECONDS = 30.0


@dataclass
class Step:
    """SQL one engine received."""

    connection: str
    engine: str
    dialect: str
    sql: str
    role: str


@dataclass
class RoutePlan:
    """The router's decision for one query, with its reasons and the SQL each engine got."""

    decision: str
    """``as written``, ``pushdown``, ``federate`` or ``scale out``."""
    connection: str
    """The connection that runs the final query."""
    engine: str
    dialect: str
    sql: str
    """The final query, in `dialect` (``:name`` parameters not yet bound)."""
    reasons: list[str]
    steps: list[Step]
    sources: list[Source]
    input_dialect: str
    shape: str
    """Queries that differ only in literals share a shape (and their timings)."""
    query: str
    """The normalised query: with the sources' versions, the cache's key."""
    pulls: list[Pull] = field(default_factory=list, repr=False)
    candidates: list[str] = field(default_factory=list)
    is_query: bool = True
    """False for statements that may change something: never cached, and they make the
    cache's entries for their connection stale."""
    volatile: bool = False
    """It calls a function whose answer changes by itself (now, random…)."""
    cached: bool = False
    cache_age: float | None = None
    """Seconds since a cached answer was computed."""
    elapsed: float | None = None

    def explain(self) -> str:
        """The plan as `%%sql --explain` shows it."""
        lines = [f"{self.decision} → {self.connection} ({self.engine})"]
        lines += [f"  · {reason}" for reason in self.reasons]
        if self.cached and self.cache_age is not None:
            lines.append(f"  · answered from the cache, computed {self.cache_age:.1f} s ago")
        for step in self.steps:
            lines += ["", f"-- {step.role}: {step.connection} ({step.dialect})", step.sql]
        return "\n".join(lines)

    __str__ = explain

    def _repr_html_(self) -> str:
        import html

        return f"<pre>{html.escape(self.explain())}</pre>"


@dataclass(frozen=True)
class Host:
    """The DuckDB that federates and owns files: its name, and how to open it."""

    name: str
    open: Callable[[], Connection]


class Timings:
    """How long each connection took for each query shape: the last few runs, compared by
    median so one slow run (a cold cache) does not decide."""

    def __init__(self) -> None:
        self._runs: dict[tuple[str, str], deque[float]] = defaultdict(
            lambda: deque(maxlen=TIMINGS_KEPT)
        )

    def record(self, query_shape: str, connection: str, seconds: float) -> None:
        self._runs[(query_shape, connection)].append(seconds)

    def median(self, query_shape: str, connection: str) -> tuple[float, int] | None:
        runs = self._runs.get((query_shape, connection))
        return (statistics.median(runs), len(runs)) if runs else None


class Router:
    """Places queries on the Session's connections; keeps their catalogs and timings."""

    def __init__(self) -> None:
        self.timings = Timings()
        self._catalogs: dict[str, tuple[Connection, Catalog]] = {}
        self._missing: dict[str, float] = {}
        """Names no catalog had at the last reading, and when: a DataFrame in the notebook
        that DuckDB finds by name is read as a table every time, and must not make every
        query read every catalog again."""

    def forget(self, connection: str | None = None) -> None:
        """Read the catalog of `connection` (every one when None) again on next use."""
        self._missing.clear()
        if connection is None:
            self._catalogs.clear()
        else:
            self._catalogs.pop(connection, None)

    def catalogs(self, connections: dict[str, Connection]) -> dict[str, Catalog]:
        """Each connection's catalog; one that cannot be read (a server down) is empty until
        the catalogs are read again, so it never stops queries elsewhere."""
        known = {}
        for name, connection in connections.items():
            held = self._catalogs.get(name)
            if held is None or held[0] is not connection:
                try:
                    catalog = Catalog.read(connection)
                except Exception:  # its own queries will say what is wrong
                    catalog = Catalog()
                held = self._catalogs[name] = (connection, catalog)
            known[name] = held[1]
        return known

    def route(
        self,
        sql: str,
        addressed: Connection,
        connections: dict[str, Connection],
        host: Host,
        *,
        engine: str | None = None,
        dialect: str | None = None,
    ) -> RoutePlan:
        """Decide where `sql` runs. `addressed` is the connection the user named (or the
        current one); `host` the DuckDB that federates and owns files (opened only when a
        plan needs it); `dialect` is what the SQL is written in (default: the addressed
        connection's)."""
        from sqlglot import exp

        written_in = dialect or addressed.engine.dialect
        try:
            tree = parse(sql, written_in)
        except RoutingError as exc:
            return self._unread(sql, written_in, addressed, engine, str(exc))
        plan = RoutePlan(
            AS_WRITTEN,
            addressed.name,
            addressed.kind,
            addressed.engine.dialect,
            sql,
            [],
            [],
            [],
            written_in,
            shape(sql, written_in),
            normalised(tree),
        )
        plan.volatile = any(type(node).__name__ in VOLATILE for node in tree.walk())
        if not isinstance(tree, exp.Query):
            plan.is_query = False
            plan.reasons.append(f"it is not a query, so it runs on {addressed.name} as written")
            return self._finish(plan, tree, addressed, engine)
        tables = [t for t in tree.find_all(exp.Table) if not _is_cte(t)]
        found = self._resolve(tables, addressed, connections, host)
        if found is None:
            plan.reasons.append(
                f"not every table it reads is in a catalog, so it runs on {addressed.name} "
                "as written"
            )
            return self._finish(plan, tree, addressed, engine)
        plan.sources = list(dict.fromkeys(found.values()))
        owners = list(dict.fromkeys(s.connection for s in plan.sources)) or [addressed.name]
        if len(owners) > 1 or host.name in owners or engine in (host.name, "duckdb"):
            host.open()
        candidates = self._candidates(owners, plan.sources, connections, host.name)
        plan.candidates = [name for name, _ in candidates]
        choice, reason = self._choose(candidates, owners, plan, connections, engine)
        plan.reasons.append(reason)
        target = connections[choice]
        decision = dict(candidates)[choice]
        if decision == FEDERATE:
            self._federate(plan, tree, tables, found, target, connections)
        elif decision == SCALE_OUT:
            self._scale_out(plan, tree, tables, found, target)
        else:
            self._push(plan, tree, target, sql)
        return plan

    def _unread(
        self, sql: str, written_in: str, addressed: Connection, engine: str | None, why: str
    ) -> RoutePlan:
        """SQL sqlglot cannot read (a syntax error, several statements) goes to the addressed
        database as written, which says what it makes of it; it cannot be transpiled."""
        if written_in != addressed.engine.dialect:
            raise RoutingError(f"{why} (needed to write it in {addressed.engine.dialect})")
        plan = RoutePlan(
            AS_WRITTEN,
            addressed.name,
            addressed.kind,
            written_in,
            sql,
            [f"sqlglot could not read it, so it runs on {addressed.name} as written"],
            [Step(addressed.name, addressed.kind, written_in, sql, "the whole query")],
            [],
            written_in,
            shape(sql, written_in),
            sql,
            is_query=False,
        )
        if engine not in (None, addressed.name, addressed.kind):
            raise RoutingError(f"Only {addressed.name} can run this: {why}")
        return plan

    def _finish(
        self, plan: RoutePlan, tree: exp.Expression, addressed: Connection, engine: str | None
    ) -> RoutePlan:
        """A plan that runs on the addressed connection (an override elsewhere is refused)."""
        if engine not in (None, addressed.name, addressed.kind):
            raise RoutingError(f"Only {addressed.name} can run this: {plan.reasons[0]}.")
        self._push(plan, tree, addressed, plan.sql)
        return plan

    def _resolve(
        self,
        tables: list[exp.Table],
        addressed: Connection,
        connections: dict[str, Connection],
        host: Host,
    ) -> dict[int, Source] | None:
        """Each table's source; None when one is unknown even after reading the catalogs again
        (which is done at most every MISSING_SECONDS for the same unknown name)."""
        now = time.monotonic()
        for attempt in range(2):
            catalogs = self.catalogs(connections)
            found = {id(t): resolve(t, addressed, connections, catalogs, host.name) for t in tables}
            unknown = {t.name.lower() for t in tables if found[id(t)] is None}
            if not unknown:
                return found  # type: ignore[return-value]
            recent = all(
                now - self._missing.get(n, -MISSING_SECONDS) < MISSING_SECONDS for n in unknown
            )
            if attempt == 0 and not recent:
                self.forget()
            else:
                for name in unknown:
                    self._missing.setdefault(name, now)
                return None
        return None

    def _candidates(
        self,
        owners: list[str],
        sources: list[Source],
        connections: dict[str, Connection],
        host: str,
    ) -> list[tuple[str, str]]:
        """(connection, how) for each connection that could run the query, the rule's first;
        the host federates only once it is open (a query on another database alone does not
        open it, unless asked to run there)."""
        found: list[tuple[str, str]] = []
        if len(owners) == 1:
            found.append((owners[0], PUSHDOWN))
        if host in connections and (len(owners) > 1 or owners[0] != host):
            found.append((host, FEDERATE))
        if all(s.kind == "files" for s in sources) and sources:
            for name, connection in connections.items():
                kind = engine_kind(connection.kind)
                if kind.reads_files and name not in owners:
                    found.append((name, SCALE_OUT))
        return found

    def _choose(
        self,
        candidates: list[tuple[str, str]],
        owners: list[str],
        plan: RoutePlan,
        connections: dict[str, Connection],
        engine: str | None,
    ) -> tuple[str, str]:
        """The connection to run on and the sentence that says why."""
        where = _where(plan.sources)
        if engine is not None:
            for name, _ in candidates:
                if engine in (name, connections[name].kind):
                    return name, f"--engine {engine} chose {name}; {where}"
            able = ", ".join(name for name, _ in candidates) or "none"
            raise RoutingError(f"{engine} cannot run this query ({where}); can: {able}.")
        first = candidates[0][0]
        bigger = self._by_size(candidates, plan, connections)
        if bigger is not None:
            return bigger
        timed = self._by_timings(candidates, plan)
        if timed is not None:
            return timed
        if len(owners) > 1:
            return first, f"{where}, so DuckDB joins them"
        if candidates[0][1] == FEDERATE:
            return first, f"{where}, which DuckDB reads"
        return first, f"{where}, so the whole query runs there"

    def _by_size(
        self, candidates: list[tuple[str, str]], plan: RoutePlan, connections: dict[str, Connection]
    ) -> tuple[str, str] | None:
        """A bigger engine when the input is over what the rule's choice handles."""
        first = connections[candidates[0][0]]
        limit = engine_kind(first.kind).max_bytes
        bigger = [
            name
            for name, _ in candidates
            if engine_kind(connections[name].kind).scale > engine_kind(first.kind).scale
        ]
        if limit is None or not bigger:
            return None
        size = estimate(plan.sources, connections)
        if size is None or size <= limit:
            return None
        choice = max(bigger, key=lambda n: engine_kind(connections[n].kind).scale)
        return choice, (
            f"it reads about {_bytes(size)}, over the {_bytes(limit)} "
            f"{first.kind} is set to handle, so it runs on {choice}"
        )

    def _by_timings(
        self, candidates: list[tuple[str, str]], plan: RoutePlan
    ) -> tuple[str, str] | None:
        """The fastest by median, when every candidate has run this shape before."""
        if len(candidates) < 2:
            return None
        medians = {name: self.timings.median(plan.shape, name) for name, _ in candidates}
        if any(m is None for m in medians.values()):
            return None
        choice = min(medians, key=lambda n: medians[n][0])  # type: ignore[index]
        told = ", ".join(
            f"{name} {m[0] * 1000:.0f} ms (median of {m[1]})"  # type: ignore[index]
            for name, m in medians.items()
        )
        return choice, f"queries of this shape took {told}, so it runs on {choice}"

    def _push(self, plan: RoutePlan, tree: exp.Expression, target: Connection, sql: str) -> None:
        """The whole query on `target`, transpiled unless it is already in its dialect."""
        same = plan.input_dialect == target.engine.dialect
        plan.decision = AS_WRITTEN if same and target.name == plan.connection else PUSHDOWN
        plan.connection, plan.engine, plan.dialect = target.name, target.kind, target.engine.dialect
        dates = frozenset(
            name.lower()
            for source in plan.sources
            for name, kind in source.columns
            if kind.lower() == "date"
        )
        plan.sql = sql if same else to_dialect(tree, target.engine.dialect, dates)
        if not same:
            plan.reasons.append(
                f"transpiled from {plan.input_dialect} to {target.engine.dialect} by sqlglot"
            )
        plan.steps = [Step(target.name, target.kind, plan.dialect, plan.sql, "the whole query")]

    def _federate(
        self,
        plan: RoutePlan,
        tree: exp.Expression,
        tables: list[exp.Table],
        found: dict[int, Source],
        host: Connection,
        connections: dict[str, Connection],
    ) -> None:
        mapping = {
            id(t): (
                s,
                None if s.connection == host.name else connections[s.connection].engine.dialect,
            )
            for t in tables
            if (s := found[id(t)])
        }
        outer, pulls, notes = plan_federation(tree, mapping)
        plan.decision, plan.connection, plan.engine = FEDERATE, host.name, host.kind
        plan.dialect, plan.pulls = "duckdb", pulls
        plan.sql = to_dialect(outer, "duckdb")
        plan.reasons += notes
        for pull in pulls:
            read = "every column" if pull.columns is None else f"{pull.columns} columns"
            filters = f"{pull.filters} filter{'s' * (pull.filters != 1)} pushed down"
            plan.steps.append(
                Step(
                    pull.source.connection,
                    connections[pull.source.connection].kind,
                    pull.dialect,
                    pull.sql,
                    f"reads {pull.source.label} ({read}, {filters})",
                )
            )
        plan.steps.append(Step(host.name, host.kind, "duckdb", plan.sql, "joins them in DuckDB"))

    def _scale_out(
        self,
        plan: RoutePlan,
        tree: exp.Expression,
        tables: list[exp.Table],
        found: dict[int, Source],
        target: Connection,
    ) -> None:
        """Files read by the bigger engine itself (``engine.read``), the query in its dialect."""
        mapping = {id(t): (found[id(t)], target.engine.dialect) for t in tables}
        outer, pulls, _ = plan_federation(tree, mapping)
        plan.decision, plan.connection, plan.engine = SCALE_OUT, target.name, target.kind
        plan.dialect, plan.pulls = target.engine.dialect, pulls
        plan.sql = to_dialect(outer, target.engine.dialect)
        plan.steps = [Step(target.name, target.kind, plan.dialect, plan.sql, "the whole query")]

    def execute(
        self,
        plan: RoutePlan,
        sql: str,
        params: Any,
        limit: int | None,
        connections: dict[str, Connection],
    ) -> pa.Table | None:
        """Run `plan` (its final SQL as bound: `sql`, `params`) and time it for its shape."""
        target = connections[plan.connection]
        started = time.perf_counter()
        if plan.decision == FEDERATE:
            table = run_federated(plan.pulls, sql, params, limit, target, connections)
        elif plan.decision == SCALE_OUT:
            for pull in plan.pulls:
                target.engine.read(pull.name, list(pull.source.files))  # type: ignore[attr-defined]
            table = target.engine.execute(sql, params, limit)
        else:
            table = target.engine.execute(sql, params, limit)
        plan.elapsed = time.perf_counter() - started
        self.timings.record(plan.shape, plan.connection, plan.elapsed)
        return table


def _bytes(size: float) -> str:
    """1000 B, 3.4 MiB, 52.0 GiB."""
    if size < 1024:
        return f"{size:.0f} B"
    for unit in ("KiB", "MiB"):
        size /= 1024
        if size < 1024:
            return f"{size:.1f} {unit}"
    return f"{size / 1024:.1f} GiB"


def _where(sources: list[Source]) -> str:
    """'it reads orders from pg and sales from duckdb' for the reasons."""
    if not sources:
        return "it reads no table"
    by_owner: dict[str, list[str]] = {}
    for source in sources:
        by_owner.setdefault(source.connection, []).append(source.name)
    parts = [f"{', '.join(names)} from {owner}" for owner, names in by_owner.items()]
    return "it reads " + " and ".join(parts)


def _is_cte(table: exp.Table) -> bool:
    """Whether `table` names a CTE of an enclosing WITH (not a table of any connection)."""
    from sqlglot import exp

    if table.db or not isinstance(table.this, exp.Identifier):
        return False
    node: exp.Expression | None = table
    while node is not None:
        with_ = node.args.get("with_") or node.args.get("with")
        if with_ is not None and any(
            cte.alias_or_name.lower() == table.name.lower() for cte in with_.expressions
        ):
            return True
        node = node.parent
    return False
