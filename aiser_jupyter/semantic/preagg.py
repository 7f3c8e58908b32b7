"""Pre-aggregations: rollups materialised in a local DuckDB cache, and queries answered from them.

A rollup stores, per its dimensions and time grain, the parts each measure can be
re-aggregated from (a sum, a count, a min, a max; an average as sum and count).
A query is answered from a rollup only when that gives the same numbers as the
raw data: its members are in the rollup, its grain is the rollup's or coarser
(non-additive measures need the exact grain), and its date range falls on the
rollup's grain boundaries.
"""

from __future__ import annotations

import hashlib
import time
import warnings
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from aiser_jupyter.semantic.compiler import Compiler, compile_query
from aiser_jupyter.semantic.dates import DateRangeError, date_range
from aiser_jupyter.semantic.filters import timestamp
from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.members import quoted
from aiser_jupyter.semantic.model import Cube, Member, SemanticModel
from aiser_jupyter.semantic.query import Query, TimeDimension
from aiser_jupyter.semantic.shared_rollups import SharedRollups

if TYPE_CHECKING:
    from pathlib import Path

    import pyarrow as pa

ROLLS_UP_TO = {
    "second": {"second", "minute", "hour", "day", "week", "month", "quarter", "year"},
    "minute": {"minute", "hour", "day", "week", "month", "quarter", "year"},
    "hour": {"hour", "day", "week", "month", "quarter", "year"},
    "day": {"day", "week", "month", "quarter", "year"},
    "week": {"week"},
    "month": {"month", "quarter", "year"},
    "quarter": {"quarter", "year"},
    "year": {"year"},
}
"""Which query grains a rollup grain can be re-aggregated to (weeks do not fit in months)."""
PARTS = {
    "count": [("", "SUM")],
    "sum": [("", "SUM")],
    "running_total": [("", "SUM")],
    "min": [("", "MIN")],
    "max": [("", "MAX")],
    "avg": [("__sum", "SUM"), ("__count", "SUM")],
    "count_distinct_approx": [("", "DISTINCT_SET")],
}
"""Stored parts of each measure type and how each part re-aggregates; others need exact grain.
An approximate distinct count is stored as its group's set of distinct values, which merges
across groups (and so counts exactly)."""
REFRESH_CHECK_SECONDS = 10.0
"""A refresh key's SQL runs at most this often, so a hit stays a cheap local query."""
DEFAULT_EVERY = timedelta(hours=1)
"""Without a refresh_key, a rollup is rebuilt when it is an hour old (and when its definition
changes)."""
UNITS = {"second": 1, "minute": 60, "hour": 3600, "day": 86400, "week": 604800}


@dataclass
class Rollup:
    cube: str
    name: str
    measures: list[str]
    dimensions: list[str]
    time_dimension: str | None
    granularity: str | None
    partition_granularity: str | None
    refresh_every: timedelta | None
    refresh_sql: str | None
    kind: str = "rollup"
    incremental: bool = False
    """Refreshes rebuild only the partitions inside `update_window` (Cube's incremental)."""
    update_window: timedelta | None = None
    exact: bool = False
    """Answers only queries at its own grain (its dimensions multiply its cube's rows)."""
    checked_at: float = field(default=0.0, repr=False)
    definitions: dict[str, tuple[str, str]] = field(default_factory=dict, repr=False)
    """Build SQL and its hash per dialect, made once per loaded model."""

    def multiplied(self, model: SemanticModel) -> bool:
        """Whether its dimensions reach across a one_to_many join, repeating its cube's rows.
        Such a rollup holds each group's exact numbers and answers only its own grain."""
        compiler = Compiler(model, Query(), "duckdb")
        edges = self.joins(compiler)[1]
        return bool(edges) and compiler.multiplied(self.cube, edges)

    def joins(self, compiler: Compiler) -> tuple[str, list[tuple[str, str]]]:
        """The join tree from its cube to the cubes of its dimensions."""
        needed = [self.cube]
        for name in [*self.dimensions, *([self.time_dimension] if self.time_dimension else [])]:
            compiler._cubes_of(compiler.model.member(name), needed)
        return compiler.join_tree(needed)

    def definition(self, model: SemanticModel, dialect: str) -> tuple[str, str]:
        if dialect not in self.definitions:
            sql = build_select(model, self, dialect).sql(dialect=dialect)
            self.definitions[dialect] = (sql, hashlib.sha256(sql.encode()).hexdigest())
        return self.definitions[dialect]

    @property
    def full_name(self) -> str:
        return f"{self.cube}.{self.name}"

    @property
    def table(self) -> str:
        return f"{self.cube}__{self.name}"


def _member_name(cube: str, name: str) -> str:
    name = str(name)
    if name.startswith("CUBE."):
        return f"{cube}.{name[5:]}"
    return name if "." in name else f"{cube}.{name}"


def _every(text: str | None, where: str) -> timedelta | None:
    if not text:
        return None
    amount, _, unit = str(text).strip().partition(" ")
    unit = unit.strip().rstrip("s")
    if not amount.isdigit() or unit not in UNITS:
        raise ModelError(
            f"refresh_key every {text!r}: expected e.g. '1 hour' or '30 minutes'", member=where
        )
    return timedelta(seconds=int(amount) * UNITS[unit])


def rollups(model: SemanticModel) -> list[Rollup]:
    """Every pre-aggregation of the model, its member names checked."""
    found = []
    for cube in model.cubes.values():
        for raw in cube.pre_aggregations:
            name = raw.get("name")
            where = f"{cube.name}.{name}"
            kind = str(raw.get("type", "rollup")).lower()
            if kind not in ("rollup", "original_sql"):
                raise ModelError(
                    f"pre-aggregation type {kind!r} is not supported (rollup, original_sql)",
                    member=where,
                )
            refresh = raw.get("refresh_key") or raw.get("refreshKey") or {}
            time_dimension = raw.get("time_dimension") or raw.get("timeDimension")
            rollup = Rollup(
                cube=cube.name,
                name=name,
                measures=[_member_name(cube.name, m) for m in raw.get("measures") or []],
                dimensions=[_member_name(cube.name, d) for d in raw.get("dimensions") or []],
                time_dimension=_member_name(cube.name, time_dimension) if time_dimension else None,
                granularity=raw.get("granularity"),
                partition_granularity=raw.get("partition_granularity")
                or raw.get("partitionGranularity"),
                incremental=bool(refresh.get("incremental", False)),
                update_window=_every(
                    refresh.get("update_window") or refresh.get("updateWindow"), where
                ),
                refresh_every=_every(refresh.get("every"), where)
                or (None if refresh.get("sql") else DEFAULT_EVERY),
                refresh_sql=refresh.get("sql"),
                kind=kind,
            )
            for member in [
                *rollup.measures,
                *rollup.dimensions,
                *([rollup.time_dimension] if rollup.time_dimension else []),
            ]:
                model.member(member)  # unknown members are a ModelError naming them
            rollup.exact = kind == "rollup" and rollup.multiplied(model)
            if rollup.incremental and not (rollup.time_dimension and rollup.partition_granularity):
                raise ModelError(
                    "an incremental refresh_key needs a time_dimension and a partition_granularity",
                    member=where,
                )
            if rollup.time_dimension and not rollup.granularity:
                raise ModelError("a rollup with a time_dimension needs a granularity", member=where)
            found.append(rollup)
    return found


class RollupCompiler(Compiler):
    """Compiles a query against a rollup table instead of the raw cubes."""

    def __init__(self, model: SemanticModel, query: Query, rollup: Rollup, table: str):
        super().__init__(model, query, "duckdb")
        self.rollup, self.table_name = rollup, table

    def column(self, name: str) -> exp.Column:
        return exp.column(quoted(name), table=quoted("rollup"))

    def dimension(self, member: Member) -> exp.Expression:
        if member.full_name == self.rollup.time_dimension:
            return self.column(f"{member.full_name}.{self.rollup.granularity}")
        return self.column(member.full_name)

    def local_time(self, member: Member) -> exp.Expression:
        return self.dimension(member)

    def aggregate(self, member: Member) -> exp.Expression:
        parts = None if self.rollup.exact else PARTS.get(member.type)
        if parts is None:  # exact grain: one rollup row per group
            return exp.Max(this=self.column(member.full_name))
        if parts[0][1] == "DISTINCT_SET":
            merged = exp.func("FLATTEN", exp.ArrayAgg(this=self.column(member.full_name)))
            return exp.func("LENGTH", exp.func("LIST_DISTINCT", merged, dialect="duckdb"))
        values = [exp.func(how, self.column(member.full_name + suffix)) for suffix, how in parts]
        if member.type == "count":  # a sum of counts is still a count, not a HUGEINT
            return exp.cast(values[0], exp.DataType.build("bigint"))
        return (
            values[0]
            if len(values) == 1
            else exp.Div(
                this=values[0], expression=exp.func("NULLIF", values[1], exp.Literal.number(0))
            )
        )

    def join_tree(self, needed: list[str]) -> tuple[str, list[tuple[str, str]]]:
        return self.rollup.cube, []

    def from_joins(self, root: str, edges: list[tuple[str, str]]) -> exp.Select:
        return exp.select().from_(exp.to_table(self.table_name).as_(quoted("rollup")))


def _leaves(compiler: Compiler, members: list[Member]) -> list[Member]:
    found: list[Member] = []
    for member in members:
        found += [leaf for leaf in compiler.leaves(member) if leaf not in found]
    return found


def matches(
    model: SemanticModel, query: Query, rollup: Rollup, now: datetime | None = None
) -> bool:
    """Whether `rollup` gives exactly the numbers the raw data would for `query`."""
    if rollup.kind != "rollup" or query.ungrouped or query.segments:
        return False
    compiler = Compiler(model, query, "duckdb")
    filters = compiler._filter_members(query.filters)
    if any(f.get("operator") == "measureFilter" for f in _flat(query.filters)):
        return False
    measures = [model.member(m) for m in query.measures] + [
        m for m in filters if m.kind == "measure"
    ]
    leaves = _leaves(compiler, measures)
    if any(leaf.full_name not in rollup.measures for leaf in leaves):
        return False
    dimensions = set(query.dimensions) | {m.full_name for m in filters if m.kind != "measure"}
    if not {model.member(d).full_name for d in dimensions} <= set(rollup.dimensions):
        return False
    grains = []
    for td in query.time_dimensions:
        if model.member(td.dimension).full_name != rollup.time_dimension:
            return False
        if td.granularity:
            if td.granularity not in ROLLS_UP_TO[rollup.granularity]:
                return False
            grains.append(td.granularity)
        if td.date_range is not None and not _aligned(td, rollup, query.timezone, now):
            return False
    if rollup.exact or any(PARTS.get(leaf.type) is None for leaf in leaves):
        exact = set(query.dimensions) == set(rollup.dimensions) and (
            grains == [rollup.granularity] if rollup.time_dimension else not grains
        )
        if not exact:
            return False
    return True


def _flat(filters: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [
        leaf
        for f in filters
        for leaf in (
            _flat(f.get("and", []) + f.get("or", [])) if ("and" in f or "or" in f) else [f]
        )
    ]


def _aligned(td: TimeDimension, rollup: Rollup, timezone: str, now: datetime | None) -> bool:
    value = td.date_range
    try:
        start, end = date_range(
            value
            if isinstance(value, list) and len(value) > 1
            else (value[0] if isinstance(value, list) else value),
            now=now,
            timezone=timezone,
        )
    except DateRangeError:
        return False
    return all(_truncate(t, rollup.granularity) == t for t in (start, end))


def _truncate(value: datetime, granularity: str) -> datetime:
    if granularity in ("second", "minute", "hour"):
        seconds = UNITS[granularity]
        return datetime.fromtimestamp(value.timestamp() // seconds * seconds)
    day = value.replace(hour=0, minute=0, second=0, microsecond=0)
    if granularity == "day":
        return day
    if granularity == "week":
        return day - timedelta(days=day.weekday())
    month = {"month": day.month, "quarter": (day.month - 1) // 3 * 3 + 1, "year": 1}[granularity]
    return day.replace(month=month, day=1)


class CachedCubeCompiler(Compiler):
    """Compiles a query whose one cube is read from its original_sql copy in the cache."""

    def __init__(self, model: SemanticModel, query: Query, rollup: Rollup, table: str):
        super().__init__(model, query, "duckdb")
        self.rollup, self.table_name = rollup, table

    def table(self, cube: Cube) -> exp.Expression:
        if cube.name == self.rollup.cube:
            return exp.to_table(self.table_name).as_(quoted(cube.name))
        return super().table(cube)


def serves_original_sql(model: SemanticModel, query: Query, rollup: Rollup) -> bool:
    """An original_sql copy answers queries that touch its cube alone."""
    if rollup.kind != "original_sql":
        return False
    return Compiler(model, query, "duckdb").leaves_and_cubes()[1] == [rollup.cube]


def build_select(
    model: SemanticModel, rollup: Rollup, dialect: str, since: datetime | None = None
) -> exp.Select:
    """The SQL that computes a pre-aggregation from the source: for a rollup its dimensions
    and measure parts (from `since` on, for an incremental refresh), for original_sql the
    cube's own rows."""
    if rollup.kind == "original_sql":
        compiler = Compiler(model, Query(), dialect)
        return exp.select("*").from_(compiler.table(model.cubes[rollup.cube]))
    if rollup.exact:  # each group's numbers, computed the way a query would (keyed)
        compiler = Compiler(model, Query(), dialect)
        leaves = _leaves(compiler, [model.member(m) for m in rollup.measures])
        return compile_query(
            model,
            Query(
                measures=[leaf.full_name for leaf in leaves],
                dimensions=rollup.dimensions,
                time_dimensions=[TimeDimension(rollup.time_dimension, rollup.granularity)]
                if rollup.time_dimension
                else [],
                limit=None,
            ),
            dialect,
        )
    times = (
        [TimeDimension(rollup.time_dimension, rollup.granularity)]
        if (rollup.time_dimension)
        else []
    )
    query = Query(dimensions=rollup.dimensions, time_dimensions=times, limit=None)
    compiler = Compiler(model, query, dialect)
    measures = [model.member(m) for m in rollup.measures]
    for member in measures:
        if member.cube != rollup.cube:
            raise ModelError(
                f"a rollup of {rollup.cube} cannot hold {member.full_name}", member=rollup.full_name
            )
    outputs = [(d, compiler.dimension(model.member(d))) for d in rollup.dimensions]
    if rollup.time_dimension:
        member = model.member(rollup.time_dimension)
        outputs.append(
            (
                f"{rollup.time_dimension}.{rollup.granularity}",
                exp.TimestampTrunc(
                    this=compiler.local_time(member), unit=exp.var(rollup.granularity.upper())
                ),
            )
        )
    root, edges = rollup.joins(compiler)
    if edges and compiler.multiplied(rollup.cube, edges):
        raise ModelError(
            "a rollup's dimensions may only come through many_to_one joins", member=rollup.full_name
        )
    select = compiler.from_joins(root, edges)
    for alias, expression in outputs:
        select = select.select(exp.alias_(expression, quoted(alias), copy=False), copy=False)
    for leaf in _leaves(compiler, measures):
        base = compiler.aggregate(leaf)
        if leaf.type == "avg":
            select = select.select(
                exp.alias_(
                    exp.Sum(this=base.this.copy()), quoted(leaf.full_name + "__sum"), copy=False
                ),
                exp.alias_(
                    exp.Count(this=base.this.copy()), quoted(leaf.full_name + "__count"), copy=False
                ),
                copy=False,
            )
        elif leaf.type == "count_distinct_approx":
            value = base.this if isinstance(base, exp.ApproxDistinct) else base.this.expressions[0]
            distinct = exp.ArrayAgg(this=exp.Distinct(expressions=[value.copy()]))
            select = select.select(
                exp.alias_(distinct, quoted(leaf.full_name), copy=False), copy=False
            )
        else:
            select = select.select(exp.alias_(base, quoted(leaf.full_name), copy=False), copy=False)
    if since is not None:
        start = compiler.local_time(model.member(rollup.time_dimension))
        select = select.where(exp.GTE(this=start, expression=timestamp(since)), copy=False)
    if outputs:
        select = select.group_by(*[e.copy() for _, e in outputs], copy=False)
    return select


class PreAggregationStore:
    """Rollup tables in a DuckDB file (or memory), with what each was built from and when."""

    def __init__(self, database: str = ":memory:", shared: str | None = None):
        """`shared`: a folder of rollups every process reads, built once (shared_rollups.py);
        None: this store builds its own."""
        from aiser_jupyter.engines import snapshot
        from aiser_jupyter.engines.connection import Connection
        from aiser_jupyter.engines.duckdb import DuckDBEngine

        self.snapshot = database if snapshot.sealed_path(database) else None
        """Where the rollups are kept sealed (a key is set): the DuckDB itself is in memory."""
        self.engine = DuckDBEngine(":memory:" if self.snapshot else database)
        if self.snapshot:
            snapshot.load(self.engine.con, self.snapshot)
        self._states: dict[str, tuple[str, str | None, datetime] | None] = {}
        self.shared = SharedRollups(shared) if shared and not _plaintext_refused(shared) else None
        self._attached: dict[str, Path] = {}
        self.connection = Connection("pre-aggregations", self.engine, f"duckdb:///{database}")
        self.engine.execute(
            "CREATE TABLE IF NOT EXISTS aiser_preaggregations (name VARCHAR PRIMARY KEY, "
            "table_name VARCHAR, definition VARCHAR, refresh_value VARCHAR, built_at TIMESTAMP)"
        )

    def state(self, rollup: Rollup) -> tuple[str, str | None, datetime] | None:
        """(definition hash, refresh value, built at) of a rollup's table, if it was built."""
        if rollup.full_name not in self._states:
            table = self.engine.execute(
                "SELECT definition, refresh_value, built_at FROM aiser_preaggregations "
                "WHERE name = $1",
                [rollup.full_name],
            )
            rows = table.to_pylist() if table is not None else []
            self._states[rollup.full_name] = tuple(rows[0].values()) if rows else None
        return self._states[rollup.full_name]

    def ensure(
        self, model: SemanticModel, rollup: Rollup, source: Any, *, force: bool = False
    ) -> str:
        """The rollup's table, (re)built when its definition or refresh key changed."""
        sql, definition = rollup.definition(model, source.engine.dialect)
        if self.shared is not None:
            self._ensure_shared(rollup, source, sql, definition, force)
            return rollup.table
        state = self.state(rollup)
        stale, refresh_value = self._stale(rollup, state, definition, source, force)
        if stale:
            if rollup.incremental and not force and state is not None and state[0] == definition:
                self._refresh_window(model, rollup, source, definition, refresh_value)
            else:
                self._build(rollup, source.engine.execute(sql), definition, refresh_value)
        return rollup.table

    def _stale(
        self,
        rollup: Rollup,
        state: tuple[str, str | None, datetime] | None,
        definition: str,
        source: Any,
        force: bool,
    ) -> tuple[bool, str | None]:
        """Whether the rollup built as `state` must be built again, and then its refresh
        key's value now (when it has one)."""
        refresh_value = None
        stale = force or state is None or state[0] != definition
        now = time.monotonic()
        if not stale and rollup.refresh_every is not None:
            stale = datetime.now() - state[2] >= rollup.refresh_every  # type: ignore[index]
        if not stale and rollup.refresh_sql and now - rollup.checked_at >= REFRESH_CHECK_SECONDS:
            refresh_value = _first_value(source.engine.execute(rollup.refresh_sql))
            rollup.checked_at = now
            stale = refresh_value != state[1]  # type: ignore[index]
        if stale and rollup.refresh_sql and refresh_value is None:
            refresh_value = _first_value(source.engine.execute(rollup.refresh_sql))
            rollup.checked_at = now
        return stale, refresh_value

    def _ensure_shared(
        self, rollup: Rollup, source: Any, sql: str, definition: str, force: bool
    ) -> None:
        """The rollup from the shared folder: built there (whole) under its lock by the
        first process that finds it missing or stale; a process that waited on the lock
        while another built it reads that build."""
        assert self.shared is not None
        built = self.shared.built(rollup.table)
        stale, refresh = self._stale(rollup, built and built.state, definition, source, force)
        if stale:
            with self.shared.lock(rollup.table):
                latest = self.shared.built(rollup.table)
                if latest is None or (built is not None and latest.path == built.path):
                    data = source.engine.execute(sql)
                    latest = self.shared.write(rollup.table, data, definition, refresh)
                built = latest
        assert built is not None
        if self._attached.get(rollup.table) != built.path:
            name = exp.to_identifier(rollup.table, quoted=True).sql("duckdb")
            if rollup.table not in self._attached:
                self.engine.con.execute(f"DROP TABLE IF EXISTS {name}")
            path = exp.Literal.string(str(built.path)).sql("duckdb")
            self.engine.con.execute(
                f"CREATE OR REPLACE VIEW {name} AS SELECT * FROM read_parquet({path})"
            )
            self._attached[rollup.table] = built.path
        self._states[rollup.full_name] = built.state

    def _refresh_window(
        self,
        model: SemanticModel,
        rollup: Rollup,
        source: Any,
        definition: str,
        refresh: str | None,
    ) -> None:
        """Rebuild only the partitions that `update_window` reaches (the latest one at least)."""
        since = _truncate(
            datetime.now() - (rollup.update_window or timedelta(0)), rollup.partition_granularity
        )
        dialect = source.engine.dialect
        data = source.engine.execute(build_select(model, rollup, dialect, since).sql(dialect))
        column = exp.column(quoted(f"{rollup.time_dimension}.{rollup.granularity}"))
        table = exp.to_identifier(rollup.table, quoted=True).sql("duckdb")
        delete = exp.delete(table, where=exp.GTE(this=column, expression=timestamp(since)))
        self.engine.con.execute(delete.sql("duckdb"))
        self.engine.store(rollup.table, data, append=True)
        self._record(rollup, definition, refresh)

    def _build(self, rollup: Rollup, data: pa.Table, definition: str, refresh: str | None) -> None:
        self.engine.store(rollup.table, data)
        self._record(rollup, definition, refresh)

    def _record(self, rollup: Rollup, definition: str, refresh: str | None) -> None:
        built = datetime.now()
        self.engine.con.execute(
            "INSERT OR REPLACE INTO aiser_preaggregations VALUES ($1, $2, $3, $4, $5)",
            [rollup.full_name, rollup.table, definition, refresh, built],
        )
        self._states[rollup.full_name] = (definition, refresh, built)
        if self.snapshot:
            from aiser_jupyter.engines import snapshot

            snapshot.save(self.engine.con, self.snapshot)


def _first_value(table: Any) -> str | None:
    if table is None or table.num_rows == 0:
        return None
    return str(table.column(0)[0].as_py())


def _plaintext_refused(shared: str) -> bool:
    """Shared rollups are plain Parquet files: with a key set (data at rest encrypted) they
    would leak what every other file seals, so this store builds its own, sealed, instead."""
    from aiser_jupyter.security import keys

    if keys.ring() is None:
        return False
    warnings.warn(
        f"Shared rollups in {shared} are not used: they are plain Parquet files and data at "
        "rest is encrypted (a key is set); rollups are built in this process's sealed store.",
        stacklevel=3,
    )
    return True
