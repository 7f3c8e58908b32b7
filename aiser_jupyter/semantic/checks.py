"""Everything wrong with a model, found at load time: unknown references, cycles, missing keys."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiser_jupyter.semantic.loader import ModelError

if TYPE_CHECKING:
    from aiser_jupyter.semantic.model import Cube, Member, SemanticModel


def _error(where: str, message: str, member: str) -> ModelError:
    file, _, line = where.rpartition(":")
    return ModelError(
        message, file=file or None, line=int(line) if line.isdigit() else None, member=member
    )


def check_reference(model: SemanticModel, cube: Cube, path: tuple[str, ...]) -> None:
    """A reference is ``CUBE``, a cube, a member of this cube, or ``cube.member``."""
    if len(path) == 1:
        (name,) = path
        if name == "CUBE" or name in model.cubes or name in cube.members:
            return
        raise ValueError(f"unknown reference {{{name}}}: not a member of {cube.name} nor a cube")
    if len(path) == 2:
        owner = cube if path[0] == "CUBE" else model.cubes.get(path[0])
        if owner is None:
            raise ValueError(f"unknown cube in {{{'.'.join(path)}}}")
        if path[1] not in owner.members:
            raise ValueError(
                f"unknown reference {{{'.'.join(path)}}}: {owner.name} has no member {path[1]!r}"
            )
        return
    raise ValueError(f"cannot read the reference {{{'.'.join(path)}}}")


def _member_refs(model: SemanticModel, member: Member) -> list[str]:
    """Members that `member` refers to by name (full names), for cycle detection."""
    cube = model.cubes[member.cube]
    found = []
    snippets = [s for s in (member.sql, *member.filters) if s is not None]
    for snippet in snippets:
        for path in snippet.refs:
            if len(path) == 1 and path[0] in cube.members:
                found.append(f"{cube.name}.{path[0]}")
            elif len(path) == 2:
                found.append(f"{cube.name if path[0] == 'CUBE' else path[0]}.{path[1]}")
    return found


def check(model: SemanticModel) -> None:
    for cube in model.cubes.values():
        for member in cube.members.values():
            for snippet in (member.sql, *member.filters):
                for path in snippet.refs if snippet else ():
                    try:
                        check_reference(model, cube, path)
                    except ValueError as exc:
                        raise _error(member.where, str(exc), member.full_name) from None
        for join in cube.joins.values():
            label = f"{cube.name} → {join.target}"
            if join.target not in model.cubes:
                raise _error(join.where, f"join to unknown cube {join.target!r}", label)
            for path in join.sql.refs:
                try:
                    check_reference(model, cube, path)
                except ValueError as exc:
                    raise _error(join.where, str(exc), label) from None
            for name in (cube.name, join.target):
                if model.cubes[name].primary_key is None:
                    raise _error(
                        model.cubes[name].where,
                        "a cube in a join needs a primary_key dimension, so that "
                        "measures are not multiplied by the join",
                        name,
                    )
    _check_member_cycles(model)
    _check_join_cycles(model)


def _check_member_cycles(model: SemanticModel) -> None:
    state: dict[str, int] = {}

    def visit(name: str, trail: tuple[str, ...]) -> None:
        if state.get(name) == 2:
            return
        if state.get(name) == 1:
            cycle = " → ".join((*trail[trail.index(name) :], name))
            member = model.member(name)
            raise _error(member.where, f"circular reference: {cycle}", name)
        state[name] = 1
        for ref in _member_refs(model, model.member(name)):
            visit(ref, (*trail, name))
        state[name] = 2

    for cube in model.cubes.values():
        for member in cube.members.values():
            visit(member.full_name, ())


def _check_join_cycles(model: SemanticModel) -> None:
    """Two cubes joined both ways is fine; a loop through three or more makes paths ambiguous."""
    declared: dict[frozenset[str], tuple[str, str, str]] = {}
    for cube in model.cubes.values():
        for join in cube.joins.values():
            edge = frozenset((cube.name, join.target))
            if len(edge) == 2:
                declared.setdefault(edge, (cube.name, join.target, join.where))
    neighbours: dict[str, set[str]] = {}
    for edge in sorted(declared, key=sorted):
        source, target, where = declared[edge]
        trail = _trail(neighbours, target, source)
        if trail is not None:
            cycle = " – ".join((source, *trail))
            raise _error(
                where,
                f"join cycle {cycle}: there is more than one join path between these cubes; "
                "remove one join",
                f"{source} → {target}",
            )
        neighbours.setdefault(source, set()).add(target)
        neighbours.setdefault(target, set()).add(source)


def _trail(neighbours: dict[str, set[str]], start: str, goal: str) -> list[str] | None:
    """The cubes from `start` to `goal` along joins already seen, or None if none connect them."""
    previous: dict[str, str | None] = {start: None}
    queue = [start]
    while queue:
        here = queue.pop(0)
        if here == goal:
            trail = []
            while here is not None:
                trail.append(here)
                here = previous[here]
            return trail[::-1]
        for name in sorted(neighbours.get(here, ())):
            if name not in previous:
                previous[name] = here
                queue.append(name)
    return None


class NotPortableToCube(UserWarning):
    """The model loads and answers here, but Cube's own compiler would refuse it."""


_FROM_OTHER_SIDE = {"one_to_many": "many_to_one", "many_to_one": "one_to_many"}


def _multiplying_path(model: SemanticModel, start: str, goal: str) -> list[str] | None:
    """The cubes from `start` to `goal` along joins (either way) when that path repeats rows
    of `start` (a one-to-many step seen from it); None when it does not, or none connects."""
    previous: dict[str, tuple[str, str] | None] = {start: None}
    queue = [start]
    while queue:
        here = queue.pop(0)
        steps = [(t, j.relationship) for t, j in model.cubes[here].joins.items()]
        steps += [
            (c.name, _FROM_OTHER_SIDE.get(c.joins[here].relationship, "one_to_one"))
            for c in model.cubes.values()
            if here in c.joins
        ]
        for target, relationship in steps:
            if target in model.cubes and target not in previous:
                previous[target] = (here, relationship)
                queue.append(target)
    if goal not in previous:
        return None
    trail, multiplies, here = [goal], False, goal
    while (step := previous[here]) is not None:
        here, relationship = step
        multiplies = multiplies or relationship == "one_to_many"
        trail.append(here)
    return trail[::-1] if multiplies else None


def cube_portability(model: SemanticModel) -> list[tuple[str, str, str]]:
    """(where, what, member) for each measure Cube's compiler (1.7, classic planner) refuses
    in any query: one reading a cube whose join multiplies the measure's own rows ("reference
    cubes that lead to row multiplication"). tests/test_cube_parity.py shows Cube refusing it."""
    found = []
    for cube in model.cubes.values():
        for member in cube.members.values():
            if member.kind != "measure":
                continue
            snippets = [s for s in (member.sql, *member.filters) if s is not None]
            others = {p[0] for s in snippets for p in s.refs if len(p) == 2} - {"CUBE", cube.name}
            for other in sorted(others & set(model.cubes)):
                trail = _multiplying_path(model, cube.name, other)
                if trail is not None:
                    found.append(
                        (
                            member.where,
                            f"it reads {other}, and the join {' → '.join(trail)} multiplies "
                            f"{cube.name}'s rows: Cube refuses such a measure",
                            member.full_name,
                        )
                    )
    return found
