"""Cube's data model as plain data: cubes, members, joins, views, and looking members up.

``semantic.build.load_model`` builds one from Cube YAML (a file, a folder, or a dict) and
checks it once, so that every problem is reported with its file, line and member before
any query runs; ``semantic.meta`` describes it, ``semantic.compiler`` compiles queries on it.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.references import Snippet


@dataclass
class Member:
    """A measure, a dimension or a segment of a cube."""

    cube: str
    name: str
    kind: str
    type: str
    sql: Snippet | None
    title: str
    description: str | None = None
    format: str | None = None
    meta: dict[str, Any] = field(default_factory=dict)
    public: bool = True
    primary_key: bool = False
    filters: list[Snippet] = field(default_factory=list)
    case: dict[str, Any] | None = None
    where: str = ""

    @property
    def full_name(self) -> str:
        return f"{self.cube}.{self.name}"

    @property
    def is_aggregate(self) -> bool:
        """A measure that aggregates rows itself (not one computed from other measures)."""
        return self.kind == "measure" and self.type not in {"number", "string", "time", "boolean"}


@dataclass
class Join:
    target: str
    relationship: str
    sql: Snippet
    where: str


@dataclass
class Cube:
    name: str
    sql_table: str | None
    sql: str | None
    data_source: str | None
    title: str
    description: str | None
    meta: dict[str, Any]
    public: bool
    members: dict[str, Member]
    joins: dict[str, Join]
    pre_aggregations: list[dict[str, Any]]
    where: str
    access_policy: list[Any] = field(default_factory=list)
    """Cube's ``access_policy`` entries as written (checked into ``SemanticModel.policies``)."""

    def by_kind(self, kind: str) -> list[Member]:
        return [m for m in self.members.values() if m.kind == kind]

    @property
    def primary_key(self) -> Member | None:
        return next((m for m in self.members.values() if m.primary_key), None)


@dataclass
class View:
    """A facade over cubes: its members are other cubes' members, reached along join paths."""

    name: str
    title: str
    description: str | None
    meta: dict[str, Any]
    public: bool
    members: dict[str, tuple[str, tuple[str, ...]]]
    """View member name → (underlying "cube.member", the join path leading to its cube)."""
    where: str


@dataclass
class SemanticModel:
    """A loaded, checked model (``semantic.build.load_model``): its cubes and views."""

    cubes: dict[str, Cube]
    views: dict[str, View]
    source: str = ""
    compiled: dict[Any, Any] = field(default_factory=dict, repr=False)
    """Compiled SQL by query, kept by the runner (a model is immutable once loaded)."""
    policies: dict[str, list[Any]] = field(default_factory=dict, repr=False)
    """Access policies by cube name (``semantic.policies.Policy``); only cubes that have some."""

    def member(self, full_name: str) -> Member:
        """The member called ``cube.member`` (or ``view.member``), or a clear error."""
        owner, _, name = full_name.partition(".")
        if owner in self.views:
            target = self.views[owner].members.get(name)
            if target is None:
                raise ModelError(f"view {owner!r} has no member {name!r}")
            return self.member(target[0])
        cube = self.cubes.get(owner)
        if cube is None:
            known = ", ".join(sorted([*self.cubes, *self.views]))
            raise ModelError(f"unknown cube or view {owner!r} in {full_name!r} (known: {known})")
        member = cube.members.get(name)
        if member is None:
            raise ModelError(f"cube {owner!r} has no member {name!r}")
        return member

    def __repr__(self) -> str:
        return f"<SemanticModel {self.source}: {len(self.cubes)} cubes, {len(self.views)} views>"
