"""Building a SemanticModel from Cube YAML (a file, a folder, or a dict): each cube, member,
join and view read and checked, then the model checked as a whole (``checks``) and its
access policies parsed (``policies``), so that a broken model says where it is broken."""

from __future__ import annotations

import warnings
from itertools import pairwise
from pathlib import Path
from typing import Any

from aiser_jupyter.semantic.checks import NotPortableToCube, check, cube_portability
from aiser_jupyter.semantic.loader import FILE, LINE, ModelError, read_model_source
from aiser_jupyter.semantic.model import Cube, Join, Member, SemanticModel, View
from aiser_jupyter.semantic.policies import parse_policies
from aiser_jupyter.semantic.references import Snippet

MEASURE_TYPES = frozenset(
    {
        "count",
        "count_distinct",
        "count_distinct_approx",
        "sum",
        "avg",
        "min",
        "max",
        "number",
        "string",
        "time",
        "boolean",
        "running_total",
    }
)
DIMENSION_TYPES = frozenset({"string", "number", "time", "boolean", "geo"})
RELATIONSHIPS = {
    "one_to_one": "one_to_one",
    "has_one": "one_to_one",
    "one_to_many": "one_to_many",
    "has_many": "one_to_many",
    "many_to_one": "many_to_one",
    "belongs_to": "many_to_one",
    "hasone": "one_to_one",
    "hasmany": "one_to_many",
    "belongsto": "many_to_one",
}


def _where(node: dict[str, Any]) -> str:
    return ":".join(str(p) for p in (node.get(FILE), node.get(LINE)) if p is not None)


def _title(name: str) -> str:
    return name.replace("_", " ").strip().title()


def _fail(node: dict[str, Any], message: str, member: str | None = None) -> ModelError:
    return ModelError(message, file=node.get(FILE), line=node.get(LINE), member=member)


def _snippet(node: dict[str, Any], key: str, member: str) -> Snippet | None:
    value = node.get(key)
    if value is None:
        return None
    try:
        return Snippet.scan(str(value))
    except ValueError as exc:
        raise _fail(node, str(exc), member) from None


def _member(cube: str, kind: str, node: dict[str, Any]) -> Member:
    name = node.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(node, f"a {kind} needs a 'name' that is an identifier, got {name!r}", cube)
    label = f"{cube}.{name}"
    types = MEASURE_TYPES if kind == "measure" else DIMENSION_TYPES
    kind_type = node.get("type", "string" if kind == "dimension" else None)
    if kind == "segment":
        kind_type = "boolean"
    elif kind_type not in types:
        raise _fail(
            node, f"unknown {kind} type {kind_type!r} (one of {', '.join(sorted(types))})", label
        )
    sql = _snippet(node, "sql", label)
    if sql is None and not (kind == "measure" and kind_type == "count") and "case" not in node:
        raise _fail(node, f"a {kind_type} {kind} needs 'sql'", label)
    filters = []
    for item in node.get("filters") or []:
        snippet = _snippet(item, "sql", label) if isinstance(item, dict) else None
        if snippet is None:
            raise _fail(node, "each measure filter needs 'sql'", label)
        filters.append(snippet)
    return Member(
        cube=cube,
        name=name,
        kind=kind,
        type=kind_type,
        sql=sql,
        title=node.get("title") or _title(name),
        description=node.get("description"),
        format=node.get("format"),
        meta=_clean(node.get("meta") or {}),
        public=bool(node.get("public", node.get("shown", True))),
        primary_key=bool(node.get("primary_key", False)),
        filters=filters,
        case=_clean(node["case"]) if "case" in node else None,
        where=_where(node),
    )


def _clean(value: Any) -> Any:
    """Drop the loader's bookkeeping keys (file and line) from user data such as `meta`."""
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items() if k not in (FILE, LINE)}
    if isinstance(value, list):
        return [_clean(v) for v in value]
    return value


def _cube(node: dict[str, Any]) -> Cube:
    name = node.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(node, f"a cube needs a 'name' that is an identifier, got {name!r}")
    if not node.get("sql_table") and not node.get("sql"):
        raise _fail(node, "a cube needs 'sql_table' or 'sql'", name)
    members: dict[str, Member] = {}
    for kind, key in (
        ("measure", "measures"),
        ("dimension", "dimensions"),
        ("segment", "segments"),
    ):
        for item in node.get(key) or []:
            if not isinstance(item, dict):
                raise _fail(node, f"each entry of '{key}' must be a mapping", name)
            member = _member(name, kind, item)
            if member.name in members:
                raise _fail(item, f"duplicate member name {member.name!r}", member.full_name)
            members[member.name] = member
    joins: dict[str, Join] = {}
    for item in node.get("joins") or []:
        if not isinstance(item, dict):
            raise _fail(node, "each entry of 'joins' must be a mapping", name)
        target = item.get("name")
        relationship = RELATIONSHIPS.get(str(item.get("relationship", "")).lower())
        if relationship is None:
            raise _fail(
                item,
                f"unknown join relationship {item.get('relationship')!r}",
                f"{name} → {target}",
            )
        sql = _snippet(item, "sql", f"{name} → {target}")
        if sql is None:
            raise _fail(item, "a join needs 'sql'", f"{name} → {target}")
        joins[target] = Join(target, relationship, sql, _where(item))
    return Cube(
        name=name,
        sql_table=node.get("sql_table"),
        sql=node.get("sql"),
        # Cube's own name for the default data source (its scaffolding writes it): ours is the
        # current connection
        data_source=None if node.get("data_source") == "default" else node.get("data_source"),
        title=node.get("title") or _title(name),
        description=node.get("description"),
        meta=_clean(node.get("meta") or {}),
        public=bool(node.get("public", node.get("shown", True))),
        members=members,
        joins=joins,
        pre_aggregations=[_clean(p) for p in node.get("pre_aggregations") or []],
        where=_where(node),
        access_policy=_clean(node.get("access_policy") or []),
    )


def _view(cubes: dict[str, Cube], node: dict[str, Any]) -> View:
    name = node.get("name")
    if not isinstance(name, str) or not name.isidentifier():
        raise _fail(node, f"a view needs a 'name' that is an identifier, got {name!r}")
    members: dict[str, tuple[str, tuple[str, ...]]] = {}
    for entry in node.get("cubes") or []:
        if not isinstance(entry, dict):
            raise _fail(node, "each entry of a view's 'cubes' must be a mapping", name)
        path = tuple(str(entry.get("join_path", "")).split("."))
        for cube_name in path:
            if cube_name not in cubes:
                raise _fail(entry, f"unknown cube {cube_name!r} in join_path", name)
        for left, right in pairwise(path):
            if right not in cubes[left].joins:
                raise _fail(
                    entry, f"join_path {'.'.join(path)!r}: {left} has no join to {right}", name
                )
        cube = cubes[path[-1]]
        includes = entry.get("includes", "*")
        if includes != "*" and not isinstance(includes, list):
            raise _fail(entry, f"'includes' must be \"*\" or a list, got {includes!r}", name)
        names = [m.name for m in cube.members.values()] if includes == "*" else includes
        excludes = set(entry.get("excludes") or [])
        prefix = f"{cube.name}_" if entry.get("prefix") else ""
        for item in names:
            member_name, alias = (
                (item.get("name"), item.get("alias")) if isinstance(item, dict) else (item, None)
            )
            if member_name in excludes:
                continue
            if member_name not in cube.members:
                raise _fail(entry, f"unknown member {member_name!r} of cube {cube.name!r}", name)
            view_name = alias or f"{prefix}{member_name}"
            if view_name in members:
                raise _fail(entry, f"duplicate member {view_name!r} in the view", name)
            members[view_name] = (f"{cube.name}.{member_name}", path)
    return View(
        name=name,
        title=node.get("title") or _title(name),
        description=node.get("description"),
        meta=_clean(node.get("meta") or {}),
        public=bool(node.get("public", True)),
        members=members,
        where=_where(node),
    )


def load_model(source: str | Path | dict[str, Any]) -> SemanticModel:
    """The model in `source` (a Cube YAML file, a folder of them, or a dict), checked, with
    its access policies parsed; a ModelError names what is wrong and where."""
    cubes: dict[str, Cube] = {}
    raw_views: list[dict[str, Any]] = []
    for document in read_model_source(source):
        for key in ("cubes", "views"):
            entries = document.get(key) or []
            if not isinstance(entries, list) or not all(isinstance(e, dict) for e in entries):
                raise _fail(document, f"'{key}' must be a list of mappings")
        for node in document.get("cubes") or []:
            cube = _cube(node)
            if cube.name in cubes:
                raise _fail(
                    node, f"duplicate cube name (first at {cubes[cube.name].where})", cube.name
                )
            cubes[cube.name] = cube
        raw_views += document.get("views") or []
    model = SemanticModel(cubes, {}, "<dict>" if isinstance(source, dict) else str(source))
    for node in raw_views:
        view = _view(cubes, node)
        if view.name in model.views or view.name in cubes:
            raise _fail(node, "duplicate name: a cube or view has it already", view.name)
        model.views[view.name] = view
    check(model)
    for where, what, member in cube_portability(model):
        warnings.warn(
            f"{member} ({where}) will not port to Cube: {what}", NotPortableToCube, stacklevel=2
        )
    for cube in cubes.values():
        if cube.access_policy:
            model.policies[cube.name] = parse_policies(cube)
    return model
