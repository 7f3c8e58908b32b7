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
from dataclasses import dataclass, field, replace
from datetime import date, datetime, timedelta
from typing import Any

from aiser_jupyter.agent.derive import Derivation, describe
from aiser_jupyter.agent.reading import Reader, Reading
from aiser_jupyter.agent.suggest import suggest
from aiser_jupyter.agent.timewords import (
    TimeWords,
    calendar_period,
    over_time_granularity,
    period_label,
    read_time,
)
from aiser_jupyter.agent.vocabulary import (
    STOP_WORDS,
    VAGUE,
    Token,
    ValueIndex,
    Vocabulary,
    find_spans,
    phrase,
    stem,
    tokenize,
)
from aiser_jupyter.errors import AiserError
from aiser_jupyter.semantic.compiler import compile_query
from aiser_jupyter.semantic.dates import DateRangeError, date_range
from aiser_jupyter.semantic.model import SemanticModel

__all__ = ["Plan", "ValueIndex", "plan_question"]

FOLLOW_STARTS = frozenset(
    {"now", "and", "also", "only", "just", "but", "same", "plus", "then", "instead", "add"}
    | {"excluding", "except", "without", "not", "ok", "okay", "what", "how", "break", "split"}
)
ADDING = frozenset({"and", "also", "plus", "add"})
QUESTION_WORDS = frozenset(
    {"who", "which", "what", "how", "show", "list", "give", "tell", "is", "are", "do", "does"}
    | {"did", "can", "could", "where", "when", "why"}
)
"""A question that starts like this is whole: without a measure it is not a follow-up."""
BUSINESS_NOUNS = frozenset(
    [
        "cost",
        "costs",
        "profit",
        "profits",
        "profitability",
        "margin",
        "margins",
        "score",
        "scores",
        "nps",
        "satisfaction",
        "rating",
        "ratings",
        "churn",
        "salary",
        "salaries",
        "employee",
        "employees",
        "headcount",
        "staff",
        "budget",
        "budgets",
        "forecast",
        "forecasts",
        "target",
        "targets",
        "discount",
        "discounts",
        "tax",
        "taxes",
        "refund",
        "refunds",
        "ltv",
        "cac",
        "retention",
        "conversion",
        "conversions",
        "click",
        "clicks",
        "visit",
        "visits",
        "session",
        "sessions",
        "traffic",
        "inventory",
        "stock",
        "complaint",
        "complaints",
        "review",
        "reviews",
        "sentiment",
        "weather",
        "temperature",
    ]
)
"""Measures analysts often ask for: when one maps to nothing, the data does not hold it."""
ADDS_UP = frozenset({"sum", "count", "count_distinct", "count_distinct_approx"})
"""Measures a ratio may divide: a total or a count, not an average or another ratio."""
METRIC_PHRASES = (
    "active users",
    "net promoter",
    "customer satisfaction",
    "lifetime value",
    "acquisition cost",
    "conversion rate",
    "bounce rate",
    "click through",
)
"""Metrics named by a phrase: unless the model names the whole phrase, it does not hold
the metric ("daily active users" is not the active subscriptions' seats)."""


@dataclass
class Plan:
    """A Cube REST query for a question, what the planner made of the question, and whether
    that is an answer: only an "answered" plan is run."""

    query: dict[str, Any]
    understood: list[str]
    not_understood: list[str]
    status: str = "answered"
    """answered | clarify | unanswerable (see Answer.status)."""
    reason: str = ""
    """For a plan that is not answered: what was not understood, or what the data lacks."""
    suggestions: list[str] = field(default_factory=list)
    """Up to three close questions that plan as answered."""
    derivation: Derivation | None = None
    question: str = ""
    draft: _Draft | None = field(default=None, repr=False, compare=False)

    def explain(self) -> str:
        """What to tell the user next to the answer: offline, understood, not understood."""
        lines = ["Answered offline by the deterministic planner (no language model)."]
        if self.status != "answered":
            lines = [f"Not answered ({self.status}): {self.reason}"]
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
    per: list[str] = field(default_factory=list)
    share: bool = False
    change: bool = False
    periods: list[tuple[date, date, str]] = field(default_factory=list)

    def copy(self) -> _Draft:
        return replace(
            self,
            measures=list(self.measures),
            dimensions=list(self.dimensions),
            filters=[dict(f) for f in self.filters],
            per=list(self.per),
            periods=list(self.periods),
        )


@dataclass
class Hints:
    """What a plan that is not answered lacked, for its reason and its suggestions."""

    unknown: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    no_measure: bool = False
    groupings: list[str] = field(default_factory=list)
    values: list[str] = field(default_factory=list)
    period: str | None = None
    grain: str | None = None
    ranked: bool = False
    lacking: bool = False
    """The question asks for something the data does not hold: suggest other measures,
    not the same question with the word dropped."""
    """What the question did make clear, to build suggestions around."""
    time_phrase: str | None = None
    """The words of a period that holds no data, and what to say instead."""
    time_instead: str | None = None


def plan_question(
    question: str,
    model: SemanticModel,
    values: ValueIndex | None = None,
    previous: Plan | None = None,
    glossary: Sequence[tuple[str, str]] = (),
    today: date | None = None,
) -> Plan:
    """Plan `question` over `model`; `values` lets data values ("enterprise") become filters,
    `previous` lets a follow-up ("now by month") refine the last answer, `glossary` holds the
    user's own terms as (term, meaning) pairs (a meaning is words or a member), and `today`
    anchors relative periods ("last quarter") on historical data, which then become dates.

    A plan is "answered" only when every content word of the question maps to something;
    otherwise it says why not and suggests up to three questions that it can answer."""
    plan, hints = _plan(question, model, values, previous, glossary, today)
    if plan.status != "answered":

        def answers(text: str) -> bool:  # a suggestion stands alone: no follow-up
            return _plan(text, model, values, None, glossary, today)[0].status == "answered"

        plan.suggestions = suggest(question, hints, model, values, answers)
    return plan


def _plan(
    question: str,
    model: SemanticModel,
    values: ValueIndex | None,
    previous: Plan | None,
    glossary: Sequence[tuple[str, str]],
    today: date | None,
) -> tuple[Plan, Hints]:
    vocabulary = Vocabulary.of(model)
    understood: list[str] = []
    text = question
    for term, meaning in glossary:
        pattern = re.compile(rf"\b{re.escape(term)}\b", re.IGNORECASE)
        if pattern.search(text):
            text = pattern.sub(f" {meaning} ", text)
            understood.append(f"glossary: '{term}' means '{meaning}'")
    time = read_time(text, today, values.words if values else frozenset())
    tokens = tokenize(time.masked, vocabulary.full_names)
    spans = find_spans(tokens, vocabulary, values)
    earlier = previous.draft if previous is not None else None
    likely = earlier.measures if earlier is not None else []
    lows = [t.low for t in tokens]
    refining = earlier is not None and _phrased_as_follow_up(lows)
    reading = Reader(tokens, spans, model, vocabulary, likely, refining).read()
    shouting = question.isupper()  # "US" typed in capitals means something; "us" does not
    unknown = [
        t.raw
        for t in tokens
        if not t.used and (t.low not in STOP_WORDS or (t.raw.isupper() and not shouting))
    ]
    hints = Hints(unknown=list(dict.fromkeys(unknown)), missing=list(reading.missing))
    hints.groupings = [model.member(d).title.lower() for d in reading.dimensions]
    hints.values = [v for _, v, negated in reading.filters if not negated and v != "true"]
    hints.period = time.range_label
    hints.grain = time.granularity or reading.granularity
    hints.ranked = reading.ranked_alone
    unclear = list(reading.unclear) + time.unclear + hints.unknown
    draft = _this_question(reading, time)
    if earlier is not None and not (unknown or reading.missing) and _is_follow_up(lows, reading):
        adding = bool(lows) and (lows[0] in ADDING or "also" in lows or lows[-1:] == ["too"])
        replacing = bool(lows) and (lows[0] == "now" or "instead" in lows)
        unclear += _filter_dropped(earlier, draft, adding, model)
        draft, kept = _follow(earlier.copy(), draft, adding, replacing)
        understood.append(
            "follow-up of the previous question" + (f": kept its {', '.join(kept)}" if kept else "")
        )
    plan = Plan({}, understood, [], question=question, draft=draft)
    if hints.missing:
        return _decline(
            plan, "unanswerable", _missing_reason(hints.missing), hints.missing + unclear, hints
        )
    lacking = [p for p in METRIC_PHRASES if p in text.lower() and not _named(p, vocabulary)]
    if lacking:
        reason = f"The data holds no {' or '.join(lacking)}: no member of the model is named so."
        return _decline(plan, "unanswerable", reason, lacking + unclear, hints)
    if not draft.measures and hints.unknown:
        return _unclear(plan, hints, unclear)
    if not draft.measures:
        hints.no_measure = True
        ranked = " (what makes one the best?)" if reading.ranked_alone else ""
        return _decline(
            plan,
            "clarify",
            f"The question names no measure{ranked}, so none was guessed.",
            unclear,
            hints,
        )
    unclear += _unlisted(reading, tokens, model)
    plan.query = _query(draft, model, values, time.over_time, understood, unclear)
    plan.derivation = _derivation(draft, plan.query, model, understood, unclear)
    understood += reading.notes
    if hints.missing:
        return _decline(
            plan, "unanswerable", _missing_reason(hints.missing), hints.missing + unclear, hints
        )
    if unclear:
        return _unclear(plan, hints, unclear)
    outside = _anchor(plan.query, draft, values, today, model, hints)
    if outside:
        return _decline(plan, "clarify", outside, unclear, hints)
    try:  # members the model cannot put in one query ("carriers" by "warehouse" city)
        compile_query(model, plan.query)
    except AiserError as exc:
        reason = f"The model cannot answer this as one query: {exc}"
        return _decline(plan, "unanswerable", reason, [*unclear, str(exc)], hints)
    return plan, hints


def _filter_dropped(old: _Draft, new: _Draft, adding: bool, model: SemanticModel) -> list[str]:
    """A follow-up that swaps a measure with a filter of its own ("active subscriptions")
    for one without would silently widen the rows: ask instead."""
    if adding or not new.measures:
        return []
    narrowed = [m for m in old.measures if model.member(m).filters and m not in new.measures]
    if not narrowed or any(model.member(m).filters for m in new.measures):
        return []
    title = model.member(narrowed[0]).title
    return [f"{title} (the previous answer counted only these rows: keep that filter or not?)"]


def _unlisted(reading: Reading, tokens: list[Token], model: SemanticModel) -> list[str]:
    """Several measures must be listed ("revenue and orders", "revenue, orders"): two read
    from one phrase ("overdue invoice amount") are a doubt, not two answers."""
    joined = {"and", "plus", "also", "vs", "versus", "with", "as", "both"}
    for (_, last), (first, _) in zip(
        reading.measure_spans, reading.measure_spans[1:], strict=False
    ):
        between = tokens[last + 1 : first]
        if not any(t.low in joined for t in between) and not tokens[first].listed:
            titles = " or ".join(model.member(m).title for m in reading.measures)
            return [f"{titles} (which one is asked for?)"]
    return []


def _is_follow_up(lows: list[str], reading: Reading) -> bool:
    """Phrased as a follow-up ("now …", "only …", "and by …", "what about …", "… instead"),
    or naming no measure of its own ("by month", "in 2023")."""
    first = lows[0] if lows else ""
    if not reading.measures and not reading.per and first not in QUESTION_WORDS:
        return True
    return _phrased_as_follow_up(lows)


def _phrased_as_follow_up(lows: list[str]) -> bool:
    first = lows[0] if lows else ""
    return (
        (first in FOLLOW_STARTS - {"what", "how", "break", "split"})
        or lows[:2] in (["what", "about"], ["how", "about"])
        or "instead" in lows
        or lows[-1:] == ["too"]
        or lows[-2:] == ["as", "well"]
    )


def _decline(
    plan: Plan, status: str, reason: str, unclear: list[str], hints: Hints
) -> tuple[Plan, Hints]:
    plan.status, plan.reason = status, reason
    hints.lacking = status == "unanswerable"
    plan.not_understood = list(dict.fromkeys(unclear))
    plan.derivation = None
    return plan, hints


def _unclear(plan: Plan, hints: Hints, unclear: list[str]) -> tuple[Plan, Hints]:
    unknown = hints.unknown
    lacking = [w for w in unknown if _lacking(w)]
    if lacking:
        named = ", ".join(f"'{w}'" for w in lacking)
        return _decline(
            plan,
            "unanswerable",
            f"The data holds nothing for {named}: no measure, dimension or value of the model "
            "matches it.",
            unclear,
            hints,
        )
    vague = [w for w in unknown if w.lower() in VAGUE]
    if vague:
        named = ", ".join(f"'{w}'" for w in vague)
        return _decline(
            plan,
            "clarify",
            f"{named} needs saying how it is measured: name a measure of the model.",
            unclear,
            hints,
        )
    if unknown:
        named = ", ".join(f"'{w}'" for w in unknown)
        return _decline(
            plan,
            "clarify",
            f"I could not match {named} to any measure, dimension or value of the model, so "
            "I did not answer.",
            unclear,
            hints,
        )
    return _decline(
        plan,
        "clarify",
        "Part of the question could not be used: " + "; ".join(unclear) + ".",
        unclear,
        hints,
    )


def _named(words_: str, vocabulary: Vocabulary) -> bool:
    return tuple(stem(w) for w in words_.split()) in vocabulary.phrases


def _lacking(word: str) -> bool:
    return word.lower() in BUSINESS_NOUNS or stem(word) in BUSINESS_NOUNS


def _missing_reason(missing: list[str]) -> str:
    return "The model does not hold what the question asks for: " + "; ".join(missing) + "."


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
        per=list(reading.per),
        share=reading.share,
        change=time.change,
        periods=list(time.periods),
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
        old.date_range, old.range_label, old.periods = new.date_range, new.range_label, new.periods
    elif old.date_range is not None:
        kept.append("date range")
    if new.measures and not adding:
        old.per, old.share, old.change = new.per, new.share, new.change
    else:
        old.per = new.per or old.per
        old.share, old.change = old.share or new.share, old.change or new.change
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
    measures = list(dict.fromkeys(d.measures + d.per))
    query: dict[str, Any] = {"measures": measures, "dimensions": list(d.dimensions)}
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
                    *(_span(d.date_range) or bounds or (None, None))
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


def _derivation(
    d: _Draft,
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


def _anchor(
    query: dict[str, Any],
    draft: _Draft,
    values: ValueIndex | None,
    today: date | None,
    model: SemanticModel,
    hints: Hints,
) -> str | None:
    """Resolve a relative period against `today` (given: written as dates), and refuse one
    that holds none of the data, suggesting the same window at the end of the data."""
    entry = (query.get("timeDimensions") or [{}])[0]
    value = entry.get("dateRange")
    covered = _span(value, today)
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
    start, end = _span(value, now)
    for unit in ("year", "quarter", "month"):
        if calendar_period(start, unit)[:2] == (start, end):
            return "in " + period_label(calendar_period(start, unit))
    return f"between {start} and {end}"


def _describe(model: SemanticModel, name: str) -> str:
    return f"{model.member(name).title} ({name})"


def _span(value: Any, today: date | None = None) -> tuple[date, date] | None:
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
