"""Cube's REST query (``/cubejs-api/v1/load``), read and checked into one plain shape."""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

from aiser_jupyter.semantic.dates import check_granularity
from aiser_jupyter.semantic.loader import ModelError

DEFAULT_LIMIT = 10_000
"""Cube's default row limit for a query that sets none."""


class QueryFormatError(ModelError):
    """A query that does not follow Cube's query format."""


@dataclass
class TimeDimension:
    dimension: str
    granularity: str | None = None
    date_range: Any = None
    compare_date_range: list[Any] | None = None

    @property
    def alias(self) -> str:
        return f"{self.dimension}.{self.granularity}" if self.granularity else self.dimension


@dataclass
class Query:
    measures: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    time_dimensions: list[TimeDimension] = field(default_factory=list)
    filters: list[dict[str, Any]] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    order: list[tuple[str, bool]] = field(default_factory=list)
    """(member, descending) pairs, in order."""
    limit: int | None = DEFAULT_LIMIT
    offset: int | None = None
    total: bool = False
    timezone: str = "UTC"
    ungrouped: bool = False

    @classmethod
    def parse(cls, raw: dict[str, Any]) -> Query:
        if not isinstance(raw, dict):
            raise QueryFormatError(f"a query is a JSON object, got {type(raw).__name__}")
        names = ("measures", "dimensions", "segments")
        for key in names:
            if not isinstance(raw.get(key, []), list):
                raise QueryFormatError(f"'{key}' must be a list of member names")
        time_dimensions = [_time_dimension(t) for t in raw.get("timeDimensions") or []]
        filters = raw.get("filters") or []
        if not isinstance(filters, list):
            raise QueryFormatError("'filters' must be a list")
        limit = raw.get("limit", DEFAULT_LIMIT)
        offset = raw.get("offset")
        for key, value in (("limit", limit), ("offset", offset)):
            if value is not None and (not isinstance(value, int) or value < 0):
                raise QueryFormatError(f"'{key}' must be a non-negative integer, got {value!r}")
        return cls(
            measures=list(raw.get("measures") or []),
            dimensions=list(raw.get("dimensions") or []),
            time_dimensions=time_dimensions,
            filters=filters,
            segments=list(raw.get("segments") or []),
            order=_order(raw.get("order")),
            limit=limit,
            offset=offset,
            total=bool(raw.get("total", False)),
            timezone=str(raw.get("timezone") or "UTC"),
            ungrouped=bool(raw.get("ungrouped", False)),
        )


def _time_dimension(raw: Any) -> TimeDimension:
    if not isinstance(raw, dict) or "dimension" not in raw:
        raise QueryFormatError("each timeDimensions entry needs a 'dimension'")
    granularity = raw.get("granularity")
    return TimeDimension(
        dimension=raw["dimension"],
        granularity=check_granularity(granularity) if granularity else None,
        date_range=raw.get("dateRange"),
        compare_date_range=raw.get("compareDateRange"),
    )


def _order(raw: Any) -> list[tuple[str, bool]]:
    if not raw:
        return []
    pairs = list(raw.items()) if isinstance(raw, dict) else raw
    order = []
    for pair in pairs:
        if not isinstance(pair, list | tuple) or len(pair) != 2:
            raise QueryFormatError(f"an order entry is [member, 'asc'|'desc'], got {pair!r}")
        member, direction = pair
        if str(direction).lower() not in ("asc", "desc"):
            raise QueryFormatError(f"order direction must be 'asc' or 'desc', got {direction!r}")
        order.append((member, str(direction).lower() == "desc"))
    return order
