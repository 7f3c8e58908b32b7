"""Members as SQL: dimensions, measures (leaf aggregates or formulas over other measures),
measure filters, case dimensions, each resolved through Cube's references."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlglot import exp

from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.model import Cube, Member, SemanticModel
from aiser_jupyter.semantic.query import Query
from aiser_jupyter.semantic.references import Snippet, render

AGGREGATES = {
    "sum": exp.Sum,
    "avg": exp.Avg,
    "min": exp.Min,
    "max": exp.Max,
    "running_total": exp.Sum,
}


def quoted(name: str) -> exp.Identifier:
    return exp.to_identifier(name, quoted=True)


class MemberSQL:
    """The SQL of a model's members for one query, in one dialect."""

    def __init__(
        self, model: SemanticModel, query: Query, dialect: str, now: datetime | None = None
    ):
        self.model, self.query, self.dialect, self.now = model, query, dialect, now
        self._dims: dict[str, exp.Expression] = {}
        self.time_order: exp.Expression | None = None
        """For running totals: the query's first time dimension with a granularity."""
        self.partition: list[exp.Expression] = []
        """For running totals: the query's other dimensions."""

    def _resolver(self, cube: Cube, measure_of=None):
        def resolve(path: tuple[str, ...]) -> exp.Expression:
            if path == ("CUBE",):
                return quoted(cube.name)
            if len(path) == 1 and path[0] not in cube.members:
                return quoted(path[0])  # another cube's alias
            owner = cube if len(path) == 1 or path[0] == "CUBE" else self.model.cubes[path[0]]
            member = owner.members[path[-1]]
            if member.kind == "measure":
                if measure_of is None:
                    raise ModelError(
                        f"{member.full_name} is a measure; a dimension or join cannot refer to it",
                        member=member.full_name,
                    )
                return measure_of(member)
            return self.dimension(member)

        return resolve

    def dimension(self, member: Member) -> exp.Expression:
        if member.full_name not in self._dims:
            cube = self.model.cubes[member.cube]
            if member.case is not None:
                expression = self._case(cube, member)
            else:
                expression = render(member.sql, self._resolver(cube), cube.name, self.dialect)
            self._dims[member.full_name] = expression
        return self._dims[member.full_name].copy()

    def _case(self, cube: Cube, member: Member) -> exp.Expression:
        def label(value: Any) -> exp.Expression:
            if isinstance(value, dict) and "sql" in value:
                return render(
                    Snippet.scan(str(value["sql"])), self._resolver(cube), cube.name, self.dialect
                )
            return exp.Literal.string(str(value))

        case = exp.Case()
        for branch in member.case.get("when") or []:
            test = render(
                Snippet.scan(str(branch["sql"])), self._resolver(cube), cube.name, self.dialect
            )
            case = case.when(test, label(branch.get("label")))
        otherwise = member.case.get("else")
        if otherwise is not None:
            case = case.else_(
                label(otherwise.get("label") if isinstance(otherwise, dict) else otherwise)
            )
        return case

    def local_time(self, member: Member) -> exp.Expression:
        """A time dimension as a plain timestamp in the query's timezone (dates and timestamps
        with a zone alike), so every engine truncates it the same way."""
        value = self.dimension(member)
        if self.query.timezone.upper() == "UTC":
            return exp.cast(value, exp.DataType.build("timestamp"))
        zoned = exp.cast(value, exp.DataType.build("timestamptz"))
        return exp.AtTimeZone(this=zoned, zone=exp.Literal.string(self.query.timezone))

    def filters_of(self, member: Member) -> exp.Expression | None:
        cube = self.model.cubes[member.cube]
        parts = [render(f, self._resolver(cube), cube.name, self.dialect) for f in member.filters]
        return exp.and_(*parts) if parts else None

    def aggregate(self, member: Member) -> exp.Expression:
        """A leaf measure over the rows of its cube (measure filters inside the aggregate)."""
        cube = self.model.cubes[member.cube]
        value = (
            render(member.sql, self._resolver(cube), cube.name, self.dialect)
            if (member.sql)
            else None
        )
        if not member.is_aggregate:
            return value  # a number measure written over columns: it aggregates by itself
        if value is None:  # count: Cube counts the primary key, so outer-joined gaps count 0
            key = cube.primary_key
            value = self.dimension(key) if key is not None else None
        test = self.filters_of(member)
        if test is not None:
            value = exp.Case().when(test, value if value is not None else exp.Literal.number(1))
        if member.type == "count":
            return exp.Count(this=value if value is not None else exp.Star())
        if member.type == "count_distinct" or (
            member.type == "count_distinct_approx" and self.dialect == "postgres"
        ):
            return exp.Count(this=exp.Distinct(expressions=[value]))
        if member.type == "count_distinct_approx":
            return exp.ApproxDistinct(this=value)
        return AGGREGATES[member.type](this=value)

    def referenced(self, cube: Cube, path: tuple[str, ...]) -> Member | None:
        """The member a reference path names, or None for a cube alias."""
        owner = cube if len(path) == 1 or path[0] == "CUBE" else self.model.cubes[path[0]]
        return owner.members.get(path[-1]) if path != ("CUBE",) else None

    def is_leaf(self, member: Member) -> bool:
        """Computed from rows (an aggregate, or a number measure over columns) vs from measures."""
        if member.is_aggregate:
            return True
        cube = self.model.cubes[member.cube]
        targets = [self.referenced(cube, path) for path in member.sql.refs]
        return not targets or any(t is None or t.kind != "measure" for t in targets)

    def measure(self, member: Member, leaf_of) -> exp.Expression:
        """A measure's expression, with its leaves given by `leaf_of` (inline or a column)."""
        if self.is_leaf(member):
            expression = leaf_of(member)
            if member.type == "running_total" and self.time_order is not None:
                expression = exp.Window(
                    this=exp.Sum(this=expression),
                    partition_by=self.partition_by(),
                    order=exp.Order(expressions=[self.time_order]),
                )
            return expression
        cube = self.model.cubes[member.cube]
        return render(
            member.sql,
            self._resolver(cube, lambda m: self.measure(m, leaf_of)),
            cube.name,
            self.dialect,
        )

    def leaves(self, member: Member) -> list[Member]:
        if self.is_leaf(member):
            return [member]
        cube = self.model.cubes[member.cube]
        return [
            leaf for path in member.sql.refs for leaf in self.leaves(self.referenced(cube, path))
        ]

    def _cubes_of(self, member: Member, into: list[str]) -> None:
        """The cube of `member` and every cube its SQL reaches, in order of appearance."""
        if member.cube not in into:
            into.append(member.cube)
        cube = self.model.cubes[member.cube]
        for snippet in (member.sql, *member.filters):
            for path in snippet.refs if snippet else ():
                owner = cube if len(path) == 1 or path[0] == "CUBE" else self.model.cubes[path[0]]
                if len(path) == 1 and path[0] in self.model.cubes and path[0] not in cube.members:
                    if path[0] not in into:
                        into.append(path[0])
                elif path[-1] in owner.members:
                    self._cubes_of(owner.members[path[-1]], into)
