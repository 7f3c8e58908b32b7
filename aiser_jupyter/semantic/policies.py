"""Cube-style ``access_policy``: which members a group may see, which rows, and how personal
data is shown.

A cube's policies are a list; each names who it is for (``role``/``group``/``groups``, ``"*"``
for everyone) and grants, as in Cube:

- ``member_level: {includes: "*" | [names], excludes: [names]}`` (default: every member);
- ``row_level: {filters: [Cube filters]}`` with values such as ``"{ securityContext.tenant }"``,
  or ``row_level: {allow_all: true}`` (default when absent: every row);
- ``masking: {"*": hash, email: partial}``: how members tagged ``meta: {pii: …}`` are shown
  (``hash``, ``partial``, ``null`` or ``none``), by member name or ``"*"``.

Several matching policies grant the union of what each grants (rows: OR of their filters),
as in Cube. A cube with policies and none matching the requester is closed to them. Policies
apply by rewriting the Cube query (extra filters, checked members) before it compiles, so
joins, rollups and totals see them like any user filter.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiser_jupyter.security.context import AccessDenied, SecurityContext, as_context
from aiser_jupyter.semantic.loader import ModelError
from aiser_jupyter.semantic.masking import DEFAULT_MASK

if TYPE_CHECKING:
    from aiser_jupyter.semantic.model import Cube, SemanticModel

MASK_MODES = ("none", "partial", "hash", "null")
"""From most to least revealing: of several matching policies, the most revealing wins."""


@dataclass(frozen=True)
class Policy:
    cube: str
    groups: tuple[str, ...]
    includes: tuple[str, ...] | None
    """Visible member names (None: all)."""
    excludes: tuple[str, ...]
    filters: tuple[dict[str, Any], ...] | None
    """Row filters (None: every row)."""
    masking: Mapping[str, str] = field(default_factory=dict)

    def applies_to(self, context: SecurityContext) -> bool:
        return "*" in self.groups or bool(set(self.groups) & set(context.groups))

    def shows(self, member: str) -> bool:
        visible = self.includes is None or member in self.includes
        return visible and member not in self.excludes


def parse_policies(cube: Cube) -> list[Policy]:
    """The cube's ``access_policy`` as checked Policy objects (a ModelError names what's wrong)."""
    if not isinstance(cube.access_policy, list):
        raise ModelError("'access_policy' must be a list of policies", member=cube.name)
    policies = []
    for index, node in enumerate(cube.access_policy):
        where = f"{cube.name}.access_policy[{index}]"
        if not isinstance(node, dict):
            raise ModelError("each access policy must be a mapping", member=where)
        groups = node.get("groups", node.get("group", node.get("role")))
        if groups is None:
            raise ModelError("an access policy needs 'role', 'group' or 'groups'", member=where)
        groups = (groups,) if isinstance(groups, str) else tuple(str(g) for g in groups)
        level = node.get("member_level") or {}
        includes = level.get("includes", "*")
        names = [] if includes == "*" else list(includes)
        names += list(level.get("excludes") or [])
        rows = node.get("row_level")
        filters = None
        if rows is not None and not rows.get("allow_all"):
            filters = tuple(_qualify(f, cube.name) for f in rows.get("filters") or [])
        masking = {str(k): str(v) for k, v in (node.get("masking") or {}).items()}
        for name in names + [k for k in masking if k != "*"]:
            if name not in cube.members:
                raise ModelError(f"unknown member {name!r} in an access policy", member=where)
        for mode in masking.values():
            if mode not in MASK_MODES:
                raise ModelError(
                    f"unknown masking {mode!r} (one of {', '.join(MASK_MODES)})", member=where
                )
        policies.append(
            Policy(
                cube.name,
                groups,
                None if includes == "*" else tuple(includes),
                tuple(level.get("excludes") or ()),
                filters,
                masking,
            )
        )
    return policies


def _qualify(node: Any, cube: str) -> Any:
    """A policy filter with its members named in full (``region`` → ``orders.region``)."""
    if isinstance(node, dict):
        out = {k: _qualify(v, cube) if k in ("and", "or") else v for k, v in node.items()}
        for key in ("member", "dimension"):
            if isinstance(out.get(key), str) and "." not in out[key]:
                out[key] = f"{cube}.{out[key]}"
        return out
    if isinstance(node, list):
        return [_qualify(item, cube) for item in node]
    raise ModelError("each row-level filter must be a mapping", member=f"{cube}.access_policy")


def _bind(node: Any, context: SecurityContext) -> Any:
    """A filter with ``{ securityContext.x }`` values replaced by the context's values."""
    if isinstance(node, dict):
        out = {k: _bind(v, context) for k, v in node.items()}
        if "values" in out:
            values = []
            for value in node["values"]:
                bound = _bind(value, context)
                values += list(bound) if isinstance(bound, (list, tuple)) else [bound]
            out["values"] = [str(v) for v in values]
        return out
    if isinstance(node, list):
        return [_bind(item, context) for item in node]
    if isinstance(node, str):
        inner = node.strip()
        if inner.startswith("{") and inner.endswith("}"):
            path = inner[1:-1].strip()
            if path.startswith(("securityContext.", "security_context.")):
                return context.value(path.partition(".")[2])
    return node


def query_members(raw: Mapping[str, Any]) -> list[str]:
    """Every member a Cube query names directly (views' names as written)."""
    names = [name for key in ("measures", "dimensions", "segments") for name in raw.get(key) or []]
    names += [td["dimension"] for td in raw.get("timeDimensions") or [] if "dimension" in td]
    order = raw.get("order") or {}
    names += list(order) if isinstance(order, Mapping) else [o[0] for o in order]

    def walk(node: Any) -> None:
        if isinstance(node, dict):
            for key in ("member", "dimension"):
                if isinstance(node.get(key), str):
                    names.append(node[key])
            for key in ("and", "or"):
                walk(node.get(key) or [])
        elif isinstance(node, list):
            for item in node:
                walk(item)

    walk(raw.get("filters") or [])
    return list(dict.fromkeys(names))


def _touched_cubes(model: SemanticModel, raw: dict[str, Any]) -> list[str]:
    """Every cube the compiled SQL reads: the query's own, those its members refer to, and
    those on the join path between them."""
    from aiser_jupyter.semantic.compiler import Compiler
    from aiser_jupyter.semantic.query import Query

    compiler = Compiler(model, Query.parse(raw), "duckdb")
    _, needed = compiler.leaves_and_cubes()
    root, edges = compiler.join_tree(needed)
    return list(dict.fromkeys([root, *needed, *(c for edge in edges for c in edge)]))


def govern(
    model: SemanticModel, raw: dict[str, Any], context: SecurityContext
) -> tuple[dict[str, Any], dict[str, str]]:
    """The query as `context` may run it (policy row filters added; AccessDenied for a member
    or cube it may not see), and the masking of each personal-data member it shows."""
    policies = model.policies
    shown = {name: model.member(name) for name in query_members(raw)}
    governed = dict(raw)
    added: set[str] = set()
    while True:
        fresh = [c for c in _touched_cubes(model, governed) if c not in added]
        if not fresh:
            break
        filters = list(governed.get("filters") or [])
        for cube in fresh:
            added.add(cube)
            matched = [p for p in policies.get(cube, []) if p.applies_to(context)]
            if cube in policies and not matched:
                raise AccessDenied(f"{context.describe()} has no access to {cube!r}")
            rows = _row_filter(matched, context)
            if rows is not None and rows not in filters:
                filters.append(rows)
        governed["filters"] = filters
    for name in shown:
        if not visible(model, context, name):
            raise AccessDenied(f"{name} is not visible to {context.describe()}")
    return governed, _masks(model, raw, shown, context)


def visible(
    model: SemanticModel, context: SecurityContext | Mapping[str, Any] | None, name: str
) -> bool:
    """Whether `context` (or JWT claims) may query member `name`: for what is listed to the
    requester (``/v1/meta``) or to its agent."""
    member = model.member(name)
    if member.cube not in model.policies:
        return True
    who = as_context(context) or SecurityContext()
    matched = [p for p in model.policies[member.cube] if p.applies_to(who)]
    return any(p.shows(member.name) for p in matched)


def _row_filter(matched: list[Policy], context: SecurityContext) -> dict[str, Any] | None:
    if not matched or any(p.filters is None for p in matched):
        return None
    branches: list[dict[str, Any]] = []
    for policy in matched:
        branch = {"and": [_bind(f, context) for f in policy.filters]}
        if branch not in branches:
            branches.append(branch)
    return branches[0] if len(branches) == 1 else {"or": branches}


def _masks(
    model: SemanticModel, raw: dict[str, Any], shown: dict[str, Any], context: SecurityContext
) -> dict[str, str]:
    """Masked members are shown masked and cannot be filtered or grouped in time on (a filter
    on the raw value would reveal it one guess at a time)."""
    times = {td.get("dimension") for td in raw.get("timeDimensions") or []}
    filtered = set(query_members({"filters": raw.get("filters") or []}))
    masks: dict[str, str] = {}
    for name, member in shown.items():
        if not member.meta.get("pii") or member.kind != "dimension":
            continue
        said = [
            p.masking.get(member.name, p.masking.get("*"))
            for p in model.policies.get(member.cube, [])
            if p.applies_to(context)
        ]
        said = [mode for mode in said if mode is not None] or [DEFAULT_MASK]
        mode = min(said, key=MASK_MODES.index)
        if mode == "none":
            continue
        if name in times or name in filtered:
            raise AccessDenied(
                f"{name} is masked personal data for {context.describe()}: "
                "it can be shown, not filtered or used as a time dimension"
            )
        masks[member.full_name] = mode
    return masks
