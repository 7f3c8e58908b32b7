"""The offline planner: a plain business question → a Cube query, with no language model.

With no model configured or reachable (or ``--offline``) the agent still answers common
questions ("revenue by region in 2024", "how many enterprise customers", "top 5 products by
revenue") from the semantic model's names, titles, descriptions and ``meta.synonyms`` and
from the data's values. It is pure (it runs no query) and deterministic, so the agent uses
it offline and as a fallback, and a plan can be tested without a database. Every plan says
what it understood and what it did not, so an answer is never silently wrong.
"""

from __future__ import annotations

import itertools
import re
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import date
from typing import Any

from aiser_jupyter.agent.derive import Derivation
from aiser_jupyter.agent.drafting import Draft, anchor, build_query, derivation_of, draft_of, follow
from aiser_jupyter.agent.reading import NEGATIONS, Reader, Reading
from aiser_jupyter.agent.suggest import Hints, suggest
from aiser_jupyter.agent.timewords import read_time
from aiser_jupyter.agent.vocabulary import (
    STOP_WORDS,
    VAGUE,
    Token,
    ValueIndex,
    Vocabulary,
    find_spans,
    stem,
    tokenize,
)
from aiser_jupyter.errors import AiserError
from aiser_jupyter.semantic.compiler import compile_query
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
    draft: Draft | None = field(default=None, repr=False, compare=False)

    def explain(self) -> str:
        """What to tell the user next to the answer: offline, understood, not understood."""
        lines = ["Answered offline by the deterministic planner (no language model)."]
        if self.status != "answered":
            lines = [f"Not answered ({self.status}): {self.reason}"]
        lines += [f"Understood: {item}" for item in self.understood]
        if self.not_understood:
            lines.append("Not understood: " + "; ".join(self.not_understood))
        return "\n".join(lines)


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
    _narrow_counts(reading, model, vocabulary)
    if time.event:
        _dated_by(time.event, reading, vocabulary, model)
    shouting = question.isupper()  # "US" typed in capitals means something; "us" does not
    unknown = [
        t.raw
        for t in tokens
        if not t.used
        and (
            t.low not in STOP_WORDS
            or t.low in NEGATIONS  # a "not" that excludes nothing is not dropped in silence
            or (t.raw.isupper() and not shouting)
        )
    ]
    hints = Hints(unknown=list(dict.fromkeys(unknown)), missing=list(reading.missing))
    hints.groupings = [model.member(d).title.lower() for d in reading.dimensions]
    hints.values = [v for _, v, negated in reading.filters if not negated and v != "true"]
    hints.period = time.range_label
    hints.grain = time.granularity or reading.granularity
    hints.ranked = reading.ranked_alone
    unclear = list(reading.unclear) + time.unclear + hints.unknown
    draft = draft_of(reading, time)
    if earlier is not None and not (unknown or reading.missing) and _is_follow_up(lows, reading):
        adding = bool(lows) and (lows[0] in ADDING or "also" in lows or lows[-1:] == ["too"])
        replacing = bool(lows) and (lows[0] == "now" or "instead" in lows)
        unclear += _filter_dropped(earlier, draft, adding, model)
        draft, kept = follow(earlier.copy(), draft, adding, replacing)
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
    plan.query = build_query(draft, model, values, time.over_time, understood, unclear)
    plan.derivation = derivation_of(draft, plan.query, model, understood, unclear)
    understood += reading.notes
    if unclear:
        return _unclear(plan, hints, unclear)
    outside = anchor(plan.query, draft, values, today, model, hints)
    if outside:
        return _decline(plan, "clarify", outside, unclear, hints)
    try:  # members the model cannot put in one query ("carriers" by "warehouse" city)
        compile_query(model, plan.query)
    except AiserError as exc:
        reason = f"The model cannot answer this as one query: {exc}"
        return _decline(plan, "unanswerable", reason, [*unclear, str(exc)], hints)
    return plan, hints


def _filter_dropped(old: Draft, new: Draft, adding: bool, model: SemanticModel) -> list[str]:
    """A follow-up that swaps a measure with a filter of its own ("active subscriptions")
    for one without would silently widen the rows: ask instead."""
    if adding or not new.measures:
        return []
    narrowed = [m for m in old.measures if model.member(m).filters and m not in new.measures]
    if not narrowed or any(model.member(m).filters for m in new.measures):
        return []
    title = model.member(narrowed[0]).title
    return [f"{title} (the previous answer counted only these rows: keep that filter or not?)"]


def _dated_by(event: str, reading: Reading, vocabulary: Vocabulary, model: SemanticModel) -> None:
    """ "by year of cancellation": the time dimension that dates the event groups."""
    dated = [
        c.name
        for c in vocabulary.phrases.get((stem(event),), [])
        if c.kind == "dimension" and model.member(c.name).type == "time"
    ]
    if dated:
        reading.time_dimension = dated[0]
        reading.notes.append(f"'{event}' read as {dated[0]} (the date that groups)")
    else:
        reading.unclear.append(f"{event} (no date of that name)")


def _narrow_counts(reading: Reading, model: SemanticModel, vocabulary: Vocabulary) -> None:
    """ "how many shipments were lost", "days of sick leave": a measure and the same measure
    with a filter of its own (Lost shipments, Sick days) mean the narrower one, not two."""
    members = [model.member(m) for m in reading.measures]

    def same(member: Any) -> tuple:
        return member.cube, member.type, vocabulary.sql_keys.get(member.full_name)

    narrowed = {same(m) for m in members if m.filters}
    keep = [i for i, m in enumerate(members) if m.filters or same(m) not in narrowed]
    if len(keep) < len(members):
        reading.measures = [reading.measures[i] for i in keep]
        reading.measure_spans = [reading.measure_spans[i] for i in keep]


def _unlisted(reading: Reading, tokens: list[Token], model: SemanticModel) -> list[str]:
    """Several measures must be listed ("revenue and orders", "revenue, orders"): two read
    from one phrase ("overdue invoice amount") or far apart ("score for remote vs office
    staff") are a doubt, not two answers."""
    conjunctions = {"and", "plus", "also", "vs", "versus", "with", "both"}
    fillers = conjunctions | {"as", "well", "the", "their", "our"}
    spans = reading.measure_spans
    for (_, last), (first, _) in itertools.pairwise(spans):
        between = {t.low for t in tokens[last + 1 : first]}
        joined = bool(between & conjunctions) or tokens[first].listed
        if not joined or not between <= fillers:
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
    """Why words were not understood: the data lacks them, they are vague, or unknown."""
    unknown = hints.unknown
    for found, status, says in (
        (
            [w for w in unknown if _lacking(w)],
            "unanswerable",
            "The data holds nothing for {}: no measure, dimension or value of the model "
            "matches it.",
        ),
        (
            [w for w in unknown if w.lower() in VAGUE],
            "clarify",
            "{} needs saying how it is measured: name a measure of the model.",
        ),
        (
            unknown,
            "clarify",
            "I could not match {} to any measure, dimension or value of the model, so I did "
            "not answer.",
        ),
    ):
        if found:
            named = ", ".join(f"'{w}'" for w in found)
            return _decline(plan, status, says.format(named), unclear, hints)
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
