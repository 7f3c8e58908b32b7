"""The offline planner: a plain business question → a Cube query, with no language model.

With no model configured or reachable (or ``--offline``) the agent still answers common
questions ("revenue by region in 2024", "how many enterprise customers", "top 5 products by
revenue") from the semantic model's names, titles, descriptions and ``meta.synonyms`` and
from the data's values. It is pure (it runs no query) and deterministic, so the agent uses
it offline and as a fallback, and a plan can be tested without a database. Every plan says
what it understood and what it did not, so an answer is never silently wrong.
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiser_jupyter.agent.reading import Reader, Reading
from aiser_jupyter.agent.timewords import TimeWords, over_time_granularity, read_time
from aiser_jupyter.agent.vocabulary import (
    STOP_WORDS,
    ValueIndex,
    Vocabulary,
    find_spans,
    tokenize,
)
from aiser_jupyter.semantic.dates import DateRangeError, date_range
from aiser_jupyter.semantic.model import SemanticModel

__all__ = ["Plan", "ValueIndex", "plan_question"]

FOLLOW_STARTS = frozenset(
    {"now", "and", "also", "only", "just", "but", "same", "plus", "then", "instead", "add"}
    | {"excluding", "except", "without", "not", "ok", "okay"}
)
ADDING = frozenset({"and", "also", "plus", "add"})


@dataclass
class Plan:
    """A Cube REST query for a question, and what the planner made of the question."""

    query: dict[str, Any]
    understood: list[str]
    not_understood: list[str]
    confident: bool
    """False when the question named no measure and a default one was used."""
    question: str = ""

    def explain(self) -> str:
        """What to tell the user next to the answer: offline, understood, not understood."""
        lines = ["Answered offline by the deterministic planner (no language model)."]
        if not self.confident:
            lines.append(
                "No measure recognised in the question, so this is a guess: "
                "name a measure of the model (see aiser.model()) for a real answer."
            )
        lines += [f"Understood: {item}" for item in self.understood]
        if self.not_understood:
            lines.append("Not understood: " + "; ".join(self.not_understood))
        return "\n".join(lines)


@dataclass
class _Draft:
    """A query being put together: from this question alone, or from the previous one."""

    measures: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    time_dimension: str | None = None
    granularity: str | None = None
    date_range: Any = None
    range_label: str | None = None
    filters: list[dict[str, Any]] = field(default_factory=list)
    rank: tuple[bool, int] | None = None

    @classmethod
    def of_query(cls, query: dict[str, Any]) -> _Draft:
        times = query.get("timeDimensions") or [{}]
        order = query.get("order") or []
        rank = None
        if "limit" in query and order:
            rank = (order[0][1] == "desc", int(query["limit"]))
        dr = times[0].get("dateRange")
        return cls(
            measures=list(query.get("measures") or []),
            dimensions=list(query.get("dimensions") or []),
            time_dimension=times[0].get("dimension"),
            granularity=times[0].get("granularity"),
            date_range=dr,
            range_label=None if dr is None else dr if isinstance(dr, str) else " to ".join(dr),
            filters=[dict(f) for f in query.get("filters") or []],
            rank=rank,
        )


def plan_question(
    question: str,
    model: SemanticModel,
    values: ValueIndex | None = None,
    previous: Plan | None = None,
    glossary: Sequence[tuple[str, str]] = (),
) -> Plan:
    """Plan `question` over `model`; `values` lets data values ("enterprise") become filters,
    `previous` lets a follow-up ("now by month") refine the last answer, and `glossary`
    holds the user's own terms as (term, meaning) pairs: a meaning is words or a member."""
    vocabulary = Vocabulary.of(model)
    understood: list[str] = []
    text = question
    for term, meaning in glossary:
        pattern = re.compile(rf"\b{re.escape(term)}\b", re.IGNORECASE)
        if pattern.search(text):
            text = pattern.sub(f" {meaning} ", text)
            understood.append(f"glossary: '{term}' means '{meaning}'")
    time = read_time(text)
    tokens = tokenize(time.masked, vocabulary.full_names)
    spans = find_spans(tokens, vocabulary, values)
    default = _default_measure(model)
    likely = previous.query.get("measures", []) if previous else [default] if default else []
    reading = Reader(tokens, spans, model, vocabulary, likely).read()
    unclear = list(reading.unclear) + time.unclear
    shouting = question.isupper()  # "US" typed in capitals means something; "us" does not
    unclear += [
        t.raw
        for t in tokens
        if not t.used and (t.low not in STOP_WORDS or (t.raw.isupper() and not shouting))
    ]
    draft = _this_question(reading, time)
    lows = [t.low for t in tokens]
    follow_up = previous is not None and (
        (bool(lows) and lows[0] in FOLLOW_STARTS)
        or lows[:2] in (["what", "about"], ["how", "about"])
        or "instead" in lows
        or lows[-1:] == ["too"]
        or lows[-2:] == ["as", "well"]
        or not reading.measures
    )
    if follow_up and previous is not None:
        adding = bool(lows) and (lows[0] in ADDING or "also" in lows or lows[-1:] == ["too"])
        replacing = bool(lows) and (lows[0] == "now" or "instead" in lows)
        draft, kept = _follow(_Draft.of_query(previous.query), draft, adding, replacing)
        understood.append(
            "follow-up of the previous question" + (f": kept its {', '.join(kept)}" if kept else "")
        )
    confident = bool(draft.measures)
    if not confident and default is not None:
        draft.measures = [default]
        understood.append(f"no measure named: showing {_describe(model, default)}")
    query = _query(draft, model, values, time.over_time, understood, unclear)
    understood += reading.notes
    return Plan(query, understood, list(dict.fromkeys(unclear)), confident, question)


def _this_question(reading: Reading, time: TimeWords) -> _Draft:
    grouped: dict[tuple[str, bool], list[str]] = {}
    for dimension, value, negated in reading.filters:
        found = grouped.setdefault((dimension, negated), [])
        if value not in found:
            found.append(value)
    granularity = time.granularity or reading.granularity
    if granularity is None and reading.time_grouped:
        granularity = "day"
    return _Draft(
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
    )


def _follow(old: _Draft, new: _Draft, adding: bool, replacing: bool) -> tuple[_Draft, list]:
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
        old.date_range, old.range_label = new.date_range, new.range_label
    elif old.date_range is not None:
        kept.append("date range")
    changed = {f["member"] for f in new.filters}
    if old.filters:
        kept.append("filters")
    old.filters = [f for f in old.filters if f["member"] not in changed] + new.filters
    if new.rank is not None:
        old.rank = new.rank
    return old, kept


def _query(
    d: _Draft,
    model: SemanticModel,
    values: ValueIndex | None,
    over_time: bool,
    understood: list[str],
    unclear: list[str],
) -> dict[str, Any]:
    """The Cube query of a draft, and a line of `understood` for each part of it."""
    query: dict[str, Any] = {"measures": d.measures, "dimensions": d.dimensions}
    understood += [f"measure: {_describe(model, m)}" for m in d.measures]
    understood += [f"grouped by {_describe(model, m)}" for m in d.dimensions]
    grouped_time = None
    if d.granularity or d.date_range is not None or over_time:
        time_dimension = d.time_dimension or _time_dimension(model, d.measures + d.dimensions)
        if time_dimension is None:
            unclear.append("time (the model has no time dimension for this)")
        else:
            title = model.member(time_dimension).title
            bounds = values.time_bounds.get(time_dimension) if values else None
            granularity = d.granularity
            if granularity is None and over_time:
                granularity = over_time_granularity(
                    *(_span(d.date_range) or bounds or (None, None))
                )
            entry: dict[str, Any] = {"dimension": time_dimension}
            if granularity:
                entry["granularity"] = granularity
                understood.append(f"grouped by {granularity} of {title} ({time_dimension})")
            if d.date_range is not None:
                entry["dateRange"] = d.date_range
                understood.append(f"date range: {d.range_label} on {title}")
                understood += _outside(d.date_range, d.range_label, bounds, title)
            query["timeDimensions"] = [entry]
            grouped_time = time_dimension if granularity else None
    if d.filters:
        query["filters"] = d.filters
        for f in d.filters:
            sign = "=" if f["operator"] == "equals" else "is not"
            shown = " or ".join(f["values"]) if sign == "=" else ", ".join(f["values"])
            understood.append(f"filter: {_describe(model, f['member'])} {sign} {shown}")
    if d.rank is not None and (d.dimensions or grouped_time) and d.measures:
        descending, n = d.rank
        query["order"] = [[d.measures[0], "desc" if descending else "asc"]]
        query["limit"] = n
        understood.append(
            f"{'top' if descending else 'bottom'} {n} by {model.member(d.measures[0]).title}"
        )
    elif d.rank is not None:
        unclear.append(f"top/bottom {d.rank[1]} (nothing to rank: the question has no grouping)")
    elif grouped_time:
        query["order"] = [[grouped_time, "asc"]]
    elif d.dimensions and d.measures:
        query["order"] = [[d.measures[0], "desc"]]
    return query


def _describe(model: SemanticModel, name: str) -> str:
    return f"{model.member(name).title} ({name})"


def _span(value: Any) -> tuple[date, date] | None:
    """The dates a dateRange covers, when it can be resolved today."""
    if value is None:
        return None
    try:
        start, end = date_range(value)
    except DateRangeError:
        return None
    return start.date(), end.date()


def _outside(value: Any, label: Any, bounds: tuple[date, date] | None, title: str) -> list[str]:
    """Say so when a date range misses the data ("last 90 days" of a 2024 data set)."""
    covered = _span(value)
    if bounds is None or covered is None or (covered[0] <= bounds[1] and covered[1] > bounds[0]):
        return []
    return [f"note: {title} in the data runs from {bounds[0]} to {bounds[1]}, outside {label}"]


def _time_dimension(model: SemanticModel, members: list[str]) -> str | None:
    """The time dimension of the measures' cube, else of a cube it joins, else the first."""
    cubes = list(dict.fromkeys(model.member(m).cube for m in members))
    joined = [
        t for c in cubes for t, j in model.cubes[c].joins.items() if j.relationship != "one_to_many"
    ]
    for cube in [*cubes, *joined, *model.cubes]:
        for member in model.cubes[cube].by_kind("dimension"):
            if member.type == "time" and member.public:
                return member.full_name
    return None


def _default_measure(model: SemanticModel) -> str | None:
    """The count of the main cube: the one with the most many-to-one joins (the facts)."""
    cubes = [c for c in model.cubes.values() if c.public] or list(model.cubes.values())
    ordered = sorted(
        cubes,
        key=lambda c: -sum(j.relationship == "many_to_one" for j in c.joins.values()),
    )
    for cube in ordered:
        for member in cube.by_kind("measure"):
            if member.type == "count":
                return member.full_name
    measures = [m for c in ordered for m in c.by_kind("measure")]
    return measures[0].full_name if measures else None
