"""The model described in Cube's ``/v1/meta`` shape, for agents, widgets, sidebars and clients."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from aiser_jupyter.security.context import SecurityContext
    from aiser_jupyter.semantic.model import Member, SemanticModel


def _describe(owner: str, owner_title: str, member: Member, name: str | None = None) -> dict:
    short = name or member.name
    item: dict[str, Any] = {
        "name": f"{owner}.{short}",
        "title": f"{owner_title} {member.title}",
        "shortTitle": member.title,
        "description": member.description,
        "public": member.public,
        "meta": member.meta or None,
    }
    if member.kind == "measure":
        numeric = member.type not in {"string", "time", "boolean"}
        item |= {
            "type": "number" if numeric else member.type,
            "aggType": member.type,
            "format": member.format,
            "cumulative": member.type == "running_total",
        }
    elif member.kind == "dimension":
        item |= {"type": member.type, "format": member.format, "primaryKey": member.primary_key}
    return {k: v for k, v in item.items() if v is not None}


def meta(model: SemanticModel, context: SecurityContext | None = None) -> dict[str, Any]:
    """The model as Cube's ``/v1/meta`` describes it; with access policies, only what the
    requester (`context`) may query (a cube closed to them is left out)."""
    from aiser_jupyter.semantic.policies import visible

    cubes = []
    for cube in model.cubes.values():
        entry: dict[str, Any] = {
            "name": cube.name,
            "title": cube.title,
            "type": "cube",
            "public": cube.public,
            "description": cube.description,
            "meta": cube.meta or None,
        }
        for kind in ("measure", "dimension", "segment"):
            entry[f"{kind}s"] = [
                _describe(cube.name, cube.title, m)
                for m in cube.by_kind(kind)
                if visible(model, context, m.full_name)
            ]
        closed = cube.name in model.policies and not any(
            entry[f"{kind}s"] for kind in ("measure", "dimension", "segment")
        )
        if not closed:
            cubes.append({k: v for k, v in entry.items() if v is not None})
    for view in model.views.values():
        entry = {
            "name": view.name,
            "title": view.title,
            "type": "view",
            "public": view.public,
            "measures": [],
            "dimensions": [],
            "segments": [],
        }
        for name, (target, _) in view.members.items():
            if not visible(model, context, target):
                continue
            member = model.member(target)
            entry[f"{member.kind}s"].append(_describe(view.name, view.title, member, name))
        cubes.append(entry)
    return {"cubes": cubes}


def summary(model: SemanticModel) -> Any:
    """One row per member (views included): what ``%aiser model`` shows."""
    import pandas as pd

    rows = [
        {
            "cube": cube["name"],
            "member": item["name"],
            "kind": kind[:-1],
            "type": item.get("aggType", item.get("type", "")),
            "title": item["title"],
            "description": item.get("description", ""),
        }
        for cube in meta(model)["cubes"]
        for kind in ("measures", "dimensions", "segments")
        for item in cube[kind]
    ]
    return pd.DataFrame(rows, columns=["cube", "member", "kind", "type", "title", "description"])
