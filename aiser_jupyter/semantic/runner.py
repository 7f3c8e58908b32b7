"""From a Cube query (dict or text) to what the Session runs: SQL, where, and column annotations."""

from __future__ import annotations

import json
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiser_jupyter.semantic.compiler import Compiler
from aiser_jupyter.semantic.loader import ModelError, read_yaml
from aiser_jupyter.semantic.model import SemanticModel
from aiser_jupyter.semantic.preagg import (
    CachedCubeCompiler,
    Rollup,
    RollupCompiler,
    matches,
    serves_original_sql,
)
from aiser_jupyter.semantic.query import Query

if TYPE_CHECKING:
    from aiser_jupyter.security.context import SecurityContext

CACHE_SIZE = 256
"""Compiled queries kept per model (dashboards re-ask the same ones)."""


@dataclass
class PreparedQuery:
    model: SemanticModel
    raw: dict[str, Any]
    query: Query
    data_source: str | None
    annotation: dict[str, Any]
    masks: dict[str, str] = field(default_factory=dict)
    """Personal-data members shown masked (full name → mode), from the access policies."""

    def pre_aggregation(self, rollups: list[Rollup]) -> tuple[Rollup | None, Any]:
        """The pre-aggregation that answers this query exactly, and the compiler to use."""
        for rollup in rollups:
            if matches(self.model, self.query, rollup):
                return rollup, RollupCompiler
        for rollup in rollups:
            if serves_original_sql(self.model, self.query, rollup):
                return rollup, CachedCubeCompiler
        return None, None

    def sql(
        self,
        dialect: str,
        rollup: Rollup | None = None,
        compiler: Any = None,
        table: str | None = None,
    ) -> tuple[str, str | None]:
        """The query's SQL (on the raw cubes, or on a pre-aggregation's table), and the SQL
        counting its rows without limit when ``total`` is set. Cached per model: relative
        date ranges are resolved again each minute."""
        minute = datetime.now().replace(second=0, microsecond=0)
        key = (
            dialect,
            rollup.full_name if rollup else "",
            table,
            query_key(self.raw),
            minute,
            tuple(sorted(self.masks.items())),
        )
        cache = self.model.compiled
        if key not in cache:
            if rollup is not None:
                built = compiler(self.model, self.query, rollup, table)
            else:
                built = Compiler(self.model, self.query, dialect)
                built.masks = self.masks
            text = built.compile().sql(dialect=built.dialect, pretty=True, copy=False)
            total = (
                built.compile(for_total=True).sql(dialect=built.dialect)
                if (self.query.total)
                else None
            )
            while len(cache) >= CACHE_SIZE:
                cache.pop(next(iter(cache)))
            cache[key] = (text, total)
        return cache[key]


def compare_queries(raw: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """A query with ``compareDateRange`` as one query per range, each with its label."""
    for index, td in enumerate(raw.get("timeDimensions") or []):
        ranges = td.get("compareDateRange")
        if ranges:
            if not isinstance(ranges, list) or len(ranges) < 2:
                raise ModelError("compareDateRange needs a list of two or more date ranges")
            queries = []
            for value in ranges:
                part = {**raw, "timeDimensions": list(raw["timeDimensions"])}
                single = {k: v for k, v in td.items() if k != "compareDateRange"}
                part["timeDimensions"][index] = {**single, "dateRange": value}
                label = " - ".join(value) if isinstance(value, list) else str(value)
                queries.append((label, part))
            return queries
    return []


def parse_text(text: str) -> dict[str, Any]:
    """A query written as JSON or YAML (JSON is YAML), as in a ``%%query`` cell."""
    data = read_yaml(text, "query")
    return _strip(data)


def _strip(value: Any) -> Any:
    if isinstance(value, dict):
        return {k: _strip(v) for k, v in value.items() if not str(k).startswith("__")}
    if isinstance(value, list):
        return [_strip(v) for v in value]
    return value


def prepare_query(
    model: SemanticModel,
    raw: Mapping[str, Any] | str,
    context: SecurityContext | None = None,
) -> PreparedQuery:
    """The query ready to compile; under a security context (or a model with access policies)
    as the policies let that requester run it: row filters added, members checked, masks set."""
    data = parse_text(raw) if isinstance(raw, str) else dict(raw)
    masks: dict[str, str] = {}
    if context is not None or model.policies:
        from aiser_jupyter.security.context import SecurityContext
        from aiser_jupyter.semantic.policies import govern

        data, masks = govern(model, data, context or SecurityContext())
    query = Query.parse(data)
    names = [*query.measures, *query.dimensions, *(t.dimension for t in query.time_dimensions)]
    sources = {model.cubes[model.member(n).cube].data_source for n in names} - {None}
    if len(sources) > 1:
        raise ModelError(
            f"this query spans data sources {sorted(sources)}; federating them is not supported yet"
        )
    described = annotation(model, query)
    for name, info in described["dimensions"].items():
        mode = masks.get(model.member(name).full_name)
        if mode is not None:
            info["meta"] = {**info.get("meta", {}), "masked": mode}
    return PreparedQuery(model, data, query, next(iter(sources), None), described, masks)


def annotation(model: SemanticModel, query: Query) -> dict[str, Any]:
    """Cube's ``annotation``: title, short title, type and format of every result column."""

    def describe(name: str) -> dict[str, Any]:
        member = model.member(name)
        owner = model.views.get(name.split(".")[0]) or model.cubes[member.cube]
        return {
            k: v
            for k, v in {
                "title": f"{owner.title} {member.title}",
                "shortTitle": member.title,
                "type": "number"
                if member.kind == "measure" and member.type not in ("string", "time", "boolean")
                else member.type,
                "format": member.format,
                "meta": member.meta or None,
            }.items()
            if v is not None
        }

    return {
        "measures": {n: describe(n) for n in query.measures},
        "dimensions": {n: describe(n) for n in query.dimensions},
        "segments": {n: describe(n) for n in query.segments},
        "timeDimensions": {
            t.alias: describe(t.dimension) for t in query.time_dimensions if t.granularity
        },
    }


def query_key(raw: dict[str, Any]) -> str:
    """The query written one way whatever its spacing and key order, except that an ``order``
    object keeps its order: it says which member sorts first."""
    query = dict(raw)
    if isinstance(query.get("order"), dict):
        query["order"] = list(query["order"].items())
    return json.dumps(query, sort_keys=True, default=str)
