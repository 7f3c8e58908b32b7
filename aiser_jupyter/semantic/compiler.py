"""A Cube query compiled to one sqlglot SELECT, with numbers that stay right under joins.

Measures of a cube that a join would multiply (its rows fan out over a
``one_to_many`` join) are aggregated separately, on that cube's primary keys, and
joined back on the query's dimensions, as Cube does. Everything else is one
plain ``SELECT … GROUP BY``.
"""

from __future__ import annotations

from collections import deque
from datetime import datetime
from functools import lru_cache
from typing import Any

from sqlglot import exp

from aiser_jupyter.semantic.filters import condition
from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.members import MemberSQL, quoted
from aiser_jupyter.semantic.model import Cube, Member, SemanticModel
from aiser_jupyter.semantic.query import Query, QueryFormatError
from aiser_jupyter.semantic.references import render

INVERSE = {"one_to_many": "many_to_one", "many_to_one": "one_to_many", "one_to_one": "one_to_one"}
MAIN = ""
"""The group of measures that no join multiplies."""


class Compiler(MemberSQL):
    """Joins the cubes a query needs and assembles its SELECT (plain, keyed or ungrouped)."""

    masks: dict[str, str] | None = None
    """Personal-data dimensions shown masked: full name → mode (``semantic.masking``)."""

    def shown(self, member: Member) -> exp.Expression:
        """A dimension as the query's output shows it: masked when a policy says so."""
        mode = (self.masks or {}).get(member.full_name)
        if mode is None:
            return self.dimension(member)
        from aiser_jupyter.semantic.masking import mask_sql

        return mask_sql(self.dimension(member), mode, member.meta.get("pii"))

    # -- joins ---------------------------------------------------------------------

    def table(self, cube: Cube) -> exp.Expression:
        return _cube_table(cube.sql_table, cube.sql, cube.name, self.dialect).copy()

    def join_tree(self, needed: list[str]) -> tuple[str, list[tuple[str, str]]]:
        """A root and the (parent, child) joins reaching every needed cube, as Cube picks them:
        the first needed cube from which declared joins reach all the others."""
        for root in needed:
            parent: dict[str, str | None] = {root: None}
            queue = deque([root])
            while queue:
                name = queue.popleft()
                for target in self.model.cubes[name].joins:
                    if target not in parent:
                        parent[target] = name
                        queue.append(target)
            if all(n in parent for n in needed):
                edges: list[tuple[str, str]] = []
                for name in needed:
                    path = []
                    while parent[name] is not None:
                        path.append((parent[name], name))
                        name = parent[name]
                    edges += [e for e in reversed(path) if e not in edges]
                return root, edges
        raise ModelError(
            f"cannot join {', '.join(needed)}: no join path connects them "
            "(declare a join between these cubes in the model)"
        )

    def multiplied(self, cube: str, edges: list[tuple[str, str]]) -> bool:
        """Whether joining along `edges` repeats rows of `cube` (a one_to_many step away)."""
        seen, stack = {cube}, [cube]
        while stack:
            here = stack.pop()
            for parent, child in edges:
                relationship = self.model.cubes[parent].joins[child].relationship
                step = (
                    (child, relationship)
                    if parent == here
                    else ((parent, INVERSE[relationship]) if child == here else None)
                )
                if step is None or step[0] in seen:
                    continue
                if step[1] == "one_to_many":
                    return True
                seen.add(step[0])
                stack.append(step[0])
        return False

    def from_joins(self, root: str, edges: list[tuple[str, str]]) -> exp.Select:
        select = exp.select().from_(self.table(self.model.cubes[root]), copy=False)
        for parent, child in edges:
            cube = self.model.cubes[parent]
            on = render(cube.joins[child].sql, self._resolver(cube), cube.name, self.dialect)
            join = exp.Join(this=self.table(self.model.cubes[child]), on=on, side="LEFT")
            select.append("joins", join)
        return select

    # -- the query -----------------------------------------------------------------

    def _members(self, names: list[str], kind: str) -> list[tuple[str, Member]]:
        members = []
        for name in names:
            member = self.model.member(name)
            if member.kind != kind:
                raise QueryFormatError(f"{name} is a {member.kind}, not a {kind}")
            members.append((name, member))
        return members

    def _filter_members(self, raw: Any) -> list[Member]:
        if isinstance(raw, dict):
            found = [
                m
                for key in ("and", "or")
                for item in raw.get(key, [])
                for m in self._filter_members(item)
            ]
            name = raw.get("member") or raw.get("dimension")
            return found + ([self.model.member(name)] if name else [])
        return [m for item in raw for m in self._filter_members(item)]

    def leaves_and_cubes(self) -> tuple[list[Member], list[str]]:
        """The leaf measures the query needs, and every cube it touches (in order met)."""
        q = self.query
        filter_members = self._filter_members(q.filters)
        measures = [self.model.member(m) for m in q.measures]
        leaves: list[Member] = []
        for member in measures + [m for m in filter_members if m.kind == "measure"]:
            leaves += [leaf for leaf in self.leaves(member) if leaf not in leaves]
        needed: list[str] = []
        for member in [
            *leaves,
            *(self.model.member(d) for d in q.dimensions),
            *(self.model.member(t.dimension) for t in q.time_dimensions),
            *filter_members,
            *(self.model.member(s) for s in q.segments),
        ]:
            self._cubes_of(member, needed)
        if not needed:
            raise QueryFormatError("a query needs at least one measure or dimension")
        roots = [root for root in self._view_roots() if root in needed]
        return leaves, roots[:1] + [n for n in needed if n not in roots[:1]]

    def _view_roots(self) -> list[str]:
        """The cubes the query's view members start from (their join path's first cube): as in
        Cube, a view's joins start there, whichever member comes first."""
        q = self.query
        names = [
            *q.measures,
            *q.dimensions,
            *(t.dimension for t in q.time_dimensions),
            *q.segments,
        ]
        roots = []
        for name in names:
            view = self.model.views.get(name.split(".")[0])
            entry = view.members.get(name.split(".", 1)[-1]) if view is not None else None
            if entry is not None and entry[1]:
                roots.append(entry[1][0])
        return roots

    def compile(self, *, for_total: bool = False) -> exp.Select:
        q = self.query
        dimensions = self._members(q.dimensions, "dimension")
        measures = self._members(q.measures, "measure")
        times = [(td, self.model.member(td.dimension)) for td in q.time_dimensions]
        outputs: list[tuple[str, exp.Expression]] = [(n, self.shown(m)) for n, m in dimensions]
        where: list[exp.Expression] = []
        for td, member in times:
            if member.type != "time":
                raise QueryFormatError(f"{td.dimension} is not a time dimension")
            if td.granularity:
                outputs.append(
                    (
                        td.alias,
                        exp.TimestampTrunc(
                            this=self.local_time(member), unit=exp.var(td.granularity.upper())
                        ),
                    )
                )
            if td.date_range is not None:
                where.append(
                    condition(
                        {
                            "member": td.dimension,
                            "operator": "inDateRange",
                            "values": td.date_range
                            if isinstance(td.date_range, list)
                            else [td.date_range],
                        },
                        lambda name: (self.dimension(self.model.member(name)), "time", False),
                        self._measure_filter,
                        now=self.now,
                        timezone=q.timezone,
                    )[0]
                )
        segments = [self.model.member(s) for s in q.segments]
        for segment in segments:
            if segment.kind != "segment":
                raise QueryFormatError(f"{segment.full_name} is not a segment")
            cube = self.model.cubes[segment.cube]
            where.append(render(segment.sql, self._resolver(cube), cube.name, self.dialect))

        leaves, needed = self.leaves_and_cubes()
        root, edges = self.join_tree(needed)
        groups: dict[str, list[Member]] = {}
        for leaf in leaves:
            key = leaf.cube if (edges and self.multiplied(leaf.cube, edges)) else MAIN
            groups.setdefault(key, []).append(leaf)
        single = not q.ungrouped and set(groups) <= {MAIN}
        if q.ungrouped:
            select = self._ungrouped(root, edges, outputs, measures, where)
        elif single:
            select = self._single(root, edges, outputs, measures, where)
        else:
            select = self._keyed(root, edges, outputs, measures, where, groups)
        if for_total:
            return exp.select(exp.Count(this=exp.Star()).as_("total")).from_(select.subquery("q"))
        select = select.order_by(*self._order(outputs, measures), copy=False)
        if q.limit is not None:
            select = select.limit(q.limit, copy=False)
        if q.offset:
            select = select.offset(q.offset, copy=False)
        return select

    def _measure_filter(self, name: str) -> exp.Expression:
        member = self.model.member(name)
        return self.filters_of(member) or exp.true()

    def _having(self, leaf_of) -> list[exp.Expression]:
        """Conditions of the query's filters: (where-side, having-side) by what they touch."""

        def lookup(name: str) -> tuple[exp.Expression, str, bool]:
            member = self.model.member(name)
            if member.kind == "measure":
                return self.measure(member, leaf_of), "number", True
            return self.dimension(member), member.type, False

        return [
            condition(f, lookup, self._measure_filter, now=self.now, timezone=self.query.timezone)
            for f in self.query.filters
        ]

    def _single(self, root, edges, outputs, measures, where) -> exp.Select:
        self.time_order, self.partition = self._window_keys(outputs)
        select = self.from_joins(root, edges)
        for alias, expression in outputs:
            select = select.select(exp.alias_(expression, quoted(alias), copy=False), copy=False)
        for name, member in measures:
            select = select.select(
                exp.alias_(self.measure(member, self.aggregate), quoted(name), copy=False),
                copy=False,
            )
        conditions = self._having(self.aggregate)
        where = where + [c for c, is_measure in conditions if not is_measure]
        having = [c for c, is_measure in conditions if is_measure]
        if where:
            select = select.where(exp.and_(*where), copy=False)
        if outputs and measures:
            select = select.group_by(*[expression.copy() for _, expression in outputs], copy=False)
        elif outputs:
            select = select.distinct(copy=False)
        if having:
            select = select.having(exp.and_(*having), copy=False)
        return select

    def _ungrouped(self, root, edges, outputs, measures, where) -> exp.Select:
        def row_value(member: Member) -> exp.Expression:
            cube = self.model.cubes[member.cube]
            if member.sql is None:
                return exp.Literal.number(1)
            return render(member.sql, self._resolver(cube), cube.name, self.dialect)

        self.time_order, self.partition = None, []
        select = self.from_joins(root, edges)
        for alias, expression in outputs:
            select = select.select(exp.alias_(expression, quoted(alias), copy=False), copy=False)
        for name, member in measures:
            select = select.select(
                exp.alias_(self.measure(member, row_value), quoted(name), copy=False), copy=False
            )
        conditions = self._having(row_value)
        where = where + [c for c, _ in conditions]
        return select.where(exp.and_(*where), copy=False) if where else select

    def _keyed(self, root, edges, outputs, measures, where, groups) -> exp.Select:
        """Each multiplied cube aggregated on its primary keys, then joined on the dimensions."""
        dims = [(f"d{i}", expression) for i, (_, expression) in enumerate(outputs)]
        conditions = [(c, m) for c, m in self._having(self.aggregate)]
        row_where = where + [c for c, is_measure in conditions if not is_measure]
        columns: dict[str, tuple[str, str]] = {}
        ctes: list[tuple[str, exp.Select]] = []
        for index, (key, leaves) in enumerate(groups.items()):
            name = f"q{index}"
            if key == MAIN:
                group = self.from_joins(root, edges)
                group = group.select(
                    *[exp.alias_(e.copy(), d, copy=False) for d, e in dims], copy=False
                )
                if row_where:
                    group = group.where(exp.and_(*[c.copy() for c in row_where]), copy=False)
                group_by = [e.copy() for _, e in dims]
            else:
                cube = self.model.cubes[key]
                keys = self.from_joins(root, edges).distinct(copy=False)
                keys = keys.select(
                    *[exp.alias_(e.copy(), d, copy=False) for d, e in dims],
                    exp.alias_(self.dimension(cube.primary_key), "__pk", copy=False),
                    copy=False,
                )
                if row_where:
                    keys = keys.where(exp.and_(*[c.copy() for c in row_where]), copy=False)
                on = exp.EQ(
                    this=exp.column("__pk", "__keys"), expression=self.dimension(cube.primary_key)
                )
                group = (
                    exp.select(*[exp.column(d, "__keys").as_(d) for d, _ in dims])
                    .from_(keys.subquery("__keys"))
                    .join(self.table(cube), on=on, join_type="left", copy=False)
                )
                group_by = [exp.column(d, "__keys") for d, _ in dims]
            for leaf in leaves:
                column = f"m{len(columns)}"
                columns[leaf.full_name] = (name, column)
                group = group.select(
                    exp.alias_(self.aggregate(leaf), column, copy=False), copy=False
                )
            if group_by:
                group = group.group_by(*group_by, copy=False)
            ctes.append((name, group))

        def leaf_column(member: Member) -> exp.Expression:
            cte, column = columns[member.full_name]
            return exp.column(column, cte)

        if dims:
            union = None
            for name, _ in ctes:
                part = exp.select(*[exp.column(d) for d, _ in dims]).from_(name)
                union = part if union is None else exp.union(union, part, distinct=True)
            select = exp.select(
                *[
                    exp.column(d, "keys").as_(quoted(alias))
                    for (d, _), (alias, _) in zip(dims, outputs, strict=True)
                ]
            ).from_("keys")
            for name, _ in ctes:
                on = exp.and_(
                    *[
                        exp.NullSafeEQ(this=exp.column(d, "keys"), expression=exp.column(d, name))
                        for d, _ in dims
                    ]
                )
                select = select.join(name, on=on, join_type="left", copy=False)
            ctes.append(("keys", union))
        else:
            select = exp.select().from_(ctes[0][0])
            for name, _ in ctes[1:]:
                select = select.join(name, join_type="cross", copy=False)
        for name, group in ctes:
            select = select.with_(name, as_=group, copy=False)
        keyed_outputs = [
            (alias, exp.column(d, "keys")) for (d, _), (alias, _) in zip(dims, outputs, strict=True)
        ]
        self.time_order, self.partition = self._window_keys(keyed_outputs)
        for name, member in measures:
            select = select.select(
                exp.alias_(self.measure(member, leaf_column), quoted(name), copy=False), copy=False
            )
        having = [c for c, is_measure in self._having(leaf_column) if is_measure]
        if having:
            select = select.where(exp.and_(*having), copy=False)
        return select

    def _window_keys(self, outputs) -> tuple[exp.Expression | None, list]:
        """For running totals: the first time dimension with a granularity, and the other dims."""
        granular = {td.alias for td in self.query.time_dimensions if td.granularity}
        time = next((e for alias, e in outputs if alias in granular), None)
        others = [e.copy() for alias, e in outputs if alias not in granular]
        return (time.copy() if time is not None else None), others

    def partition_by(self) -> list[exp.Expression]:
        return [e.copy() for e in self.partition]

    def _order(self, outputs, measures) -> list[exp.Ordered]:
        aliases = [alias for alias, _ in outputs] + [name for name, _ in measures]
        order = self.query.order
        if not order:
            granular = [td.alias for td in self.query.time_dimensions if td.granularity]
            if granular:
                order = [(granular[0], False)]
            elif measures:
                order = [(measures[0][0], True)]
            elif outputs:
                order = [(outputs[0][0], False)]
        ordered = []
        for name, descending in order:
            alias = (
                name
                if name in aliases
                else next(
                    (
                        td.alias
                        for td in self.query.time_dimensions
                        if td.dimension == name and td.granularity
                    ),
                    None,
                )
            )
            if alias is None:
                raise QueryFormatError(f"cannot order by {name}: it is not in the query")
            ordered.append(
                exp.Ordered(
                    this=exp.column(quoted(alias)),
                    desc=descending,
                    nulls_first=self._nulls_first(descending),
                )
            )
        return ordered

    def _nulls_first(self, descending: bool) -> bool:
        """NULLs where the engine puts them by default, as Cube leaves them (PostgreSQL: first
        when descending), so that no NULLS FIRST/LAST is written."""
        from sqlglot.dialects.dialect import Dialect

        ordering = Dialect.get_or_raise(self.dialect).NULL_ORDERING
        if ordering == "nulls_are_large":
            return descending
        return ordering == "nulls_are_small" and not descending


@lru_cache(maxsize=1024)
def _cube_table(sql_table: str | None, sql: str | None, name: str, dialect: str) -> exp.Expression:
    """A cube's table (or subquery), aliased by its name; parsed once per dialect."""
    if sql_table:
        return exp.to_table(sql_table, dialect=dialect).as_(quoted(name))
    import sqlglot

    return exp.Subquery(
        this=sqlglot.parse_one(sql, read=dialect), alias=exp.TableAlias(this=quoted(name))
    )


def compile_query(
    model: SemanticModel,
    raw: dict[str, Any],
    dialect: str = "duckdb",
    now: datetime | None = None,
    *,
    for_total: bool = False,
) -> exp.Select:
    """The sqlglot SELECT answering a Cube REST query on `model`."""
    query = raw if isinstance(raw, Query) else Query.parse(raw)
    return Compiler(model, query, dialect, now).compile(for_total=for_total)


def to_sql(model: SemanticModel, query: dict[str, Any], dialect: str = "duckdb") -> str:
    """The SQL that answers a Cube REST query on `model`, in `dialect` (duckdb, postgres,
    spark, …)."""
    return compile_query(model, query, dialect).sql(dialect=dialect, pretty=True, copy=False)
