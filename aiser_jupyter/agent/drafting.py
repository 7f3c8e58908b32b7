"""A plan's query, built: what one question asks for, merged with the previous question for
a follow-up, turned into a Cube query with a line of "understood" for each part, the share,
ratio or change derived from it, and its period checked against the data."""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import TYPE_CHECKING, Any

from aiser_jupyter.agent.derive import Derivation, describe
from aiser_jupyter.agent.timewords import (
    TimeWords,
    calendar_period,
    over_time_granularity,
    period_label,
)
from aiser_jupyter.agent.vocabulary import ValueIndex, phrase
from aiser_jupyter.semantic.dates import DateRangeError, date_range

if TYPE_CHECKING:
    from aiser_jupyter.agent.reading import Reading
    from aiser_jupyter.agent.suggest import Hints
    from aiser_jupyter.semantic.model import SemanticModel


@dataclass
class Draft:
    """A query being put together: from this question alone, or from the previous one."""

    measures: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    time_dimension: str | None = None
    granularity: str | None = None
    date_range: Any = None
    range_label: str | None = None
    filters: list[dict[str, Any]] = field(default_factory=list)
    rank: tuple[bool, int] | None = None
    per: list[str] = field(default_factory=list)
    segments: list[str] = field(default_factory=list)
    share: bool = False
    change: bool = False
    periods: list[tuple[date, date, str]] = field(default_factory=list)

    def copy(self) -> Draft:
        return replace(
            self,
            measures=list(self.measures),
            dimensions=list(self.dimensions),
            filters=[dict(f) for f in self.filters],
            per=list(self.per),
            segments=list(self.segments),
            periods=list(self.periods),
        )


ADDS_UP = frozenset({"sum", "count", "count_distinct", "count_distinct_approx"})
"""Measures a ratio may divide: a total or a count, not an average or another ratio."""


def draft_of(reading: Reading, time: TimeWords) -> Draft:
    grouped: dict[tuple[str, bool], list[str]] = {}
    for dimension, value, negated in reading.filters:
        found = grouped.setdefault((dimension, negated), [])
        if value not in found:
            found.append(value)
    granularity = time.granularity or reading.granularity
    if granularity is None and reading.time_grouped:
        granularity = "day"
    return Draft(
        measures=list(reading.measures),
        dimensions=list(reading.dimensions),
        time_dimension=reading.time_dimension,
        granularity=granularity,
        date_range=time.date_range,
        range_label=time.range_label,
        filters=[
            {"member": d, "operator": "notEquals" if negated else "equals", "values": v}
            for (d, negated), v in grouped.items()
        ],
        rank=reading.rank,
        per=list(reading.per),
        segments=list(reading.segments),
        share=reading.share,
        change=time.change,
        periods=list(time.periods),
    )


def follow(old: Draft, new: Draft, adding: bool, replacing: bool) -> tuple[Draft, list]:
    """The previous query changed by a follow-up: new parts replace (or, after "and",
    "also", join) the old ones; "now …" and "… instead" start the grouping afresh."""
    kept = []
    if new.measures:
        old.measures = list(dict.fromkeys(old.measures + new.measures)) if adding else new.measures
    elif old.measures:
        kept.append("measures")
    new_grouping = bool(new.dimensions or new.granularity)
    if new.dimensions:
        old.dimensions = (
            list(dict.fromkeys(old.dimensions + new.dimensions)) if adding else new.dimensions
        )
    elif replacing and new_grouping:
        old.dimensions = []
    if new.granularity:
        old.granularity = new.granularity
    elif replacing and new_grouping and not adding:
        old.granularity = None
    if (old.dimensions or old.granularity) and not (new.dimensions or new.granularity):
        kept.append("grouping")
    if new.time_dimension:
        old.time_dimension = new.time_dimension
    if new.date_range is not None:
        old.date_range, old.range_label, old.periods = new.date_range, new.range_label, new.periods
    elif old.date_range is not None:
        kept.append("date range")
    if new.measures and not adding:
        old.per, old.share, old.change = new.per, new.share, new.change
    else:
        old.per = new.per or old.per
        old.share, old.change = old.share or new.share, old.change or new.change
    if old.segments:
        kept.append("segments")
    old.segments = list(dict.fromkeys(old.segments + new.segments))
    changed = {f["member"] for f in new.filters}
    if old.filters:
        kept.append("filters")
    old.filters = [f for f in old.filters if f["member"] not in changed] + new.filters
    if new.rank is not None:
        old.rank = new.rank
    return old, kept


def build_query(
    d: Draft,
    model: SemanticModel,
    values: ValueIndex | None,
    over_time: bool,
    understood: list[str],
    unclear: list[str],
) -> dict[str, Any]:
    """The Cube query of a draft, and a line of `understood` for each part of it."""
    measures = list(dict.fromkeys(d.measures + d.per))
    # "revenue per customer": the customers' cube first, so every customer counts (the root)
    query: dict[str, Any] = {
        "measures": list(dict.fromkeys(d.per + d.measures)),
        "dimensions": list(d.dimensions),
    }
    understood += [f"measure: {_describe(model, m)}" for m in measures]
    understood += [f"grouped by {_describe(model, m)}" for m in d.dimensions]
    grouped_time = None
    if d.granularity or d.date_range is not None or over_time or d.change:
        time_dimension = d.time_dimension or _time_dimension(model, measures + d.dimensions)
        if time_dimension is None:
            unclear.append("time (the model has no time dimension for this)")
        else:
            title = model.member(time_dimension).title
            bounds = values.time_bounds.get(time_dimension) if values else None
            granularity = d.granularity
            if granularity is None and (over_time or d.change):
                granularity = over_time_granularity(
                    *(span_of(d.date_range) or bounds or (None, None))
                )
            entry: dict[str, Any] = {"dimension": time_dimension}
            if granularity:
                entry["granularity"] = granularity
                understood.append(f"grouped by {granularity} of {title} ({time_dimension})")
            if d.date_range is not None:
                entry["dateRange"] = d.date_range
                understood.append(f"date range: {d.range_label} on {title}")
            query["timeDimensions"] = [entry]
            grouped_time = time_dimension if granularity else None
    if d.segments:
        query["segments"] = list(d.segments)
        understood += [f"segment: {_describe(model, s)}" for s in d.segments]
    if d.filters:
        query["filters"] = d.filters
        for f in d.filters:
            sign = "=" if f["operator"] == "equals" else "is not"
            shown = " or ".join(f["values"]) if sign == "=" else ", ".join(f["values"])
            understood.append(f"filter: {_describe(model, f['member'])} {sign} {shown}")
    if d.rank is not None and (d.dimensions or grouped_time) and measures:
        descending, n = d.rank
        query["order"] = [[measures[0], "desc" if descending else "asc"]]
        query["limit"] = n
        understood.append(
            f"{'top' if descending else 'bottom'} {n} by {model.member(measures[0]).title}"
        )
    elif d.rank is not None:
        unclear.append(f"top/bottom {d.rank[1]} (nothing to rank: the question has no grouping)")
    elif grouped_time:
        query["order"] = [[grouped_time, "asc"]]
    elif d.dimensions and measures:
        query["order"] = [[measures[0], "desc"]]
    return query


def derivation_of(
    d: Draft,
    query: dict[str, Any],
    model: SemanticModel,
    understood: list[str],
    unclear: list[str],
) -> Derivation | None:
    """A share, ratio or change the question asks for, from measures the model has."""
    if not d.measures:
        return None
    measure = d.measures[0]
    times = query.get("timeDimensions") or [{}]
    bucket = (
        f"{times[0]['dimension']}.{times[0]['granularity']}" if "granularity" in times[0] else None
    )
    if d.per:
        if model.member(measure).type not in ADDS_UP:  # "average weight per package"
            unclear.append(f"per (a ratio of {model.member(measure).title}, which does not add up)")
            return None
        derivation = Derivation("ratio", measure, denominator=d.per[0])
        if "limit" in query:  # "top 3 regions by revenue per customer": rank the ratio
            derivation.top = (query["order"][0][1] == "desc", query.pop("limit"))
            query["order"] = [[measure, "desc"]]
    elif d.share:
        derivation = Derivation("share", measure)
        if not (query["dimensions"] or bucket):
            subject = [
                f for f in query.get("filters", []) if f["operator"] in ("equals", "notEquals")
            ]
            if not subject:
                unclear.append("share (of what? name a value or a grouping)")
                return None
            for f in subject:
                query["dimensions"].append(f["member"])
                derivation.keep[f["member"]] = (f["values"], f["operator"] == "notEquals")
            query["filters"] = [f for f in query["filters"] if f not in subject] or None
            if query["filters"] is None:
                del query["filters"]
            query["order"] = [[measure, "desc"]]
    elif d.change or len(d.periods) > 1:
        if bucket is None:
            unclear.append("change (over which periods?)")
            return None
        derivation = Derivation(
            "change",
            measure,
            partition=list(query["dimensions"]),
            time=bucket,
            periods=[p[0].isoformat() for p in d.periods] if len(d.periods) > 1 else [],
        )
        query["order"] = [[times[0]["dimension"], "asc"]]
    else:
        return None
    understood.append(describe(derivation, lambda name: model.member(name).title))
    return derivation


def anchor(
    query: dict[str, Any],
    draft: Draft,
    values: ValueIndex | None,
    today: date | None,
    model: SemanticModel,
    hints: Hints,
) -> str | None:
    """Resolve a relative period against `today` (given: written as dates), and refuse one
    that holds none of the data, suggesting the same window at the end of the data."""
    entry = (query.get("timeDimensions") or [{}])[0]
    value = entry.get("dateRange")
    covered = span_of(value, today)
    if covered is None:
        return None
    if today is not None and isinstance(value, str):
        entry["dateRange"] = [covered[0].isoformat(), covered[1].isoformat()]
    bounds = values.time_bounds.get(entry["dimension"]) if values else None
    if bounds is None:
        return None
    periods = draft.periods or [(covered[0], covered[1], "")]
    if all(p[1] >= bounds[0] and p[0] <= bounds[1] for p in periods):
        return None
    title = model.member(entry["dimension"]).title
    label = draft.range_label or ""
    hints.time_phrase = label
    hints.time_instead = _at_end(value, periods, bounds)
    return (
        f"{title} in the data runs from {bounds[0]} to {bounds[1]}; {label} "
        f"({covered[0]} to {covered[1]}) holds none of it."
    )


def _at_end(value: Any, periods: list[tuple[date, date, str]], bounds: tuple[date, date]) -> str:
    """The same window, at the end of the data: "last quarter" → "in Q4 2024"."""
    if len(periods) > 1:
        unit = periods[-1][2]
        current = calendar_period(bounds[1], unit)
        before = calendar_period(current[0] - timedelta(days=1), unit)
        return f"{period_label(current)} vs {period_label(before)}"
    if not isinstance(value, str):
        start, end = bounds[1] - (periods[0][1] - periods[0][0]), bounds[1]
        return f"between {start} and {end}"
    this = value.split()[0] in ("this", "today")
    now = bounds[1] if this else bounds[1] + timedelta(days=1)
    start, end = span_of(value, now)
    for unit in ("year", "quarter", "month"):
        if calendar_period(start, unit)[:2] == (start, end):
            return "in " + period_label(calendar_period(start, unit))
    return f"between {start} and {end}"


def _describe(model: SemanticModel, name: str) -> str:
    return f"{model.member(name).title} ({name})"


def span_of(value: Any, today: date | None = None) -> tuple[date, date] | None:
    """The first and last day a dateRange covers (relative ones as of `today`)."""
    if value is None:
        return None
    now = datetime.combine(today, datetime.min.time()) if today is not None else None
    try:
        start, end = date_range(value, now=now)
    except DateRangeError:
        return None
    return start.date(), (end - timedelta(microseconds=1)).date()


def _time_dimension(model: SemanticModel, members: list[str]) -> str | None:
    """The time dimension of the measures' cube, else of a cube it joins, else the first;
    within a cube, one that shares a word with the measure ("cancellations" → cancelled_at)."""
    cubes = list(dict.fromkeys(model.member(m).cube for m in members))
    joined = [
        t for c in cubes for t, j in model.cubes[c].joins.items() if j.relationship != "one_to_many"
    ]
    said = {w for m in members[:1] for w in phrase(m.split(".")[1]) + phrase(model.member(m).title)}
    for cube in [*cubes, *joined, *model.cubes]:
        times = [m for m in model.cubes[cube].by_kind("dimension") if m.type == "time" and m.public]
        if times:
            shared = [m for m in times if said & set(phrase(m.name) + phrase(m.title))]
            return (shared or times)[0].full_name
    return None
