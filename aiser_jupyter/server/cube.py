"""Cube's REST shapes: the query a request carries, and the objects a Cube client reads back.

Field names follow Cube's API gateway (``/v1/load`` result objects with ``query``, ``data``,
``annotation``, ``lastRefreshTime``…; ``queryType: multi`` envelopes with ``results`` and
``pivotQuery``), so ``@cubejs-client/core`` and other Cube clients work unchanged.
"""

from __future__ import annotations

import json
import math
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

import orjson

from aiser_jupyter.errors import AiserError
from aiser_jupyter.semantic.runner import query_key

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.result import Result

REGULAR, COMPARE, BLENDING = "regularQuery", "compareDateRangeQuery", "blendingQuery"


class ApiError(AiserError):
    """A request the API refuses; `status` is the HTTP status it answers with."""

    def __init__(self, message: str, status: int = 400):
        super().__init__(message)
        self.status = status


class Part:
    """One regular query of a request, with what its rows carry besides its members."""

    def __init__(self, query: dict[str, Any], label: str | None = None, blend: str | None = None):
        self.query = query
        self.label = label
        """The ``compareDateRange`` value of its rows, in a compareDateRange query."""
        self.blend = blend
        """The granularity its rows also carry as ``time.<granularity>``, in a blending query."""

    def key(self) -> str:
        """The query, written one way whatever the spacing and key order of the request (but
        an ``order`` object keeps its order: it says which member sorts first)."""
        return json.dumps([query_key(self.query), self.label, self.blend], default=str)


def parse_query_param(value: Any) -> dict[str, Any] | list[Any]:
    """The ``query`` of a request: a JSON object (or list of them), or JSON text of one."""
    if value is None or value in ("", "undefined"):
        raise ApiError("Query param is required")
    if isinstance(value, str):
        try:
            value = orjson.loads(value)
        except orjson.JSONDecodeError as exc:
            raise ApiError(f"Unable to decode query param as JSON, error: {exc.msg}") from None
    if not isinstance(value, dict | list):
        raise ApiError(f"A query is a JSON object or a list of them, got {type(value).__name__}")
    return value


def split(query: dict[str, Any] | list[Any]) -> tuple[str, list[Part]]:
    """The query type and the regular queries that answer it, as Cube's gateway splits them."""
    from aiser_jupyter.semantic.query import Query
    from aiser_jupyter.semantic.runner import compare_queries

    if isinstance(query, list):
        if not query or not all(isinstance(q, dict) for q in query):
            raise ApiError("A data blending query is a non-empty list of query objects")
        for each in query:
            Query.parse(each)
        granularities = {(q.get("timeDimensions") or [{}])[0].get("granularity") for q in query}
        if len(granularities) != 1 or None in granularities:
            raise ApiError("Data blending queries need one and the same time granularity")
        blend = granularities.pop()
        return BLENDING, [Part(q, blend=blend) for q in query]
    Query.parse(query)  # the format first, so that a malformed query is told as such
    compared = compare_queries(query)
    if compared:
        return COMPARE, [Part(q, label=label) for label, q in compared]
    return REGULAR, [Part(query)]


def normalized(query: dict[str, Any], query_type: str = REGULAR) -> dict[str, Any]:
    """The query as Cube echoes it: every list present, the timezone and query type set."""
    out: dict[str, Any] = {
        "measures": [],
        "dimensions": [],
        "timeDimensions": [],
        "segments": [],
        "filters": [],
        "timezone": "UTC",
    }
    out.update({k: v for k, v in query.items() if v is not None})
    out["queryType"] = query_type
    return out


def pivot_query(query_type: str, parts: list[Part]) -> dict[str, Any]:
    """What the client pivots by (Cube's ``getPivotQuery``)."""
    first = normalized(parts[0].query, query_type)
    if query_type == BLENDING:
        merged: dict[str, Any] = {"measures": [], "dimensions": []}
        for part in parts:
            for key in merged:
                merged[key] += [m for m in part.query.get(key) or [] if m not in merged[key]]
        merged["timeDimensions"] = [{"dimension": "time", "granularity": parts[0].blend}]
        merged["queryType"] = query_type
        return merged
    if query_type == COMPARE:
        first["dimensions"] = ["compareDateRange", *first["dimensions"]]
    return first


def result_object(result: Result, part: Part, engine: str) -> dict[str, Any]:
    """One query's answer, shaped as a Cube ``/v1/load`` result."""
    query = part.query
    compat = _granularity_free(query)
    annotation = dict(result.annotation or {})
    times = dict(annotation.get("timeDimensions") or {})
    for short, full in compat:
        if full in times:
            times[short] = times[full]
    annotation["timeDimensions"] = times
    out: dict[str, Any] = {
        "query": normalized(query),
        "lastRefreshTime": datetime.now(timezone.utc).isoformat(timespec="milliseconds")[:-6] + "Z",
        "annotation": annotation,
        "dataSource": result.connection,
        "dbType": engine,
        "external": False,
        "slowQuery": False,
        "total": result.total if query.get("total") else None,
        "data": rows(result.to_arrow(), part, compat),
    }
    if result.pre_aggregation:
        out["usedPreAggregations"] = {
            result.pre_aggregation: {"preAggregationId": result.pre_aggregation, "type": "rollup"}
        }
    return out


def rows(table: pa.Table, part: Part, compat: list[tuple[str, str]]) -> list[dict[str, Any]]:
    """Member-keyed rows with Cube's value formats (times as ``YYYY-MM-DDTHH:mm:ss.SSS``)."""
    names = table.column_names
    columns = [_values(column) for column in table.columns]
    extra: list[tuple[str, str]] = list(compat)
    if part.blend:
        dimension = part.query["timeDimensions"][0]["dimension"]
        extra.append((f"time.{part.blend}", f"{dimension}.{part.blend}"))
    out = []
    for values in zip(*columns, strict=True):
        row = dict(zip(names, values, strict=True))
        for short, full in extra:
            row[short] = row.get(full)
        if part.label is not None:
            row["compareDateRange"] = part.label
        out.append(row)
    return out


def _granularity_free(query: dict[str, Any]) -> list[tuple[str, str]]:
    """(dimension, dimension.granularity) pairs that Cube also reports without granularity."""
    dimensions = query.get("dimensions") or []
    return [
        (td["dimension"], f"{td['dimension']}.{td['granularity']}")
        for td in query.get("timeDimensions") or []
        if td.get("granularity") and td["dimension"] not in dimensions
    ]


def _values(column: Any) -> list[Any]:
    import pyarrow as pa

    kind = column.type
    values = column.to_pylist()
    if pa.types.is_timestamp(kind) or pa.types.is_date(kind):
        return [_time(v) for v in values]
    if pa.types.is_floating(kind):
        return [v if v is None or math.isfinite(v) else None for v in values]
    if pa.types.is_decimal(kind):
        return [None if v is None else str(v) for v in values]
    return values


def _time(value: date | datetime | None) -> str | None:
    if value is None:
        return None
    if not isinstance(value, datetime):
        return f"{value.isoformat()}T00:00:00.000"
    if value.tzinfo is not None:
        value = value.astimezone(timezone.utc).replace(tzinfo=None)
    return value.isoformat(timespec="milliseconds")


def dumps(value: Any) -> bytes:
    """Compact JSON (orjson); values JSON has no form for (decimals, intervals, bytes) as
    their text; integers wider than 64 bits through the standard library."""
    try:
        return orjson.dumps(value, default=str, option=orjson.OPT_NON_STR_KEYS)
    except orjson.JSONEncodeError:
        return json.dumps(value, separators=(",", ":"), default=str, allow_nan=False).encode()


def multi_envelope(query_type: str, results: list[bytes], pivot: dict[str, Any]) -> bytes:
    """The ``queryType: multi`` answer around already serialized results (cached ones too)."""
    return b"".join(
        [
            b'{"queryType":',
            dumps(query_type),
            b',"results":[',
            b",".join(results),
            b'],"pivotQuery":',
            dumps(pivot),
            b',"slowQuery":false}',
        ]
    )
