"""Close questions to offer when one is not answered: each is planned first, and only those
that the planner answers are offered, so a suggestion is never a dead end.

The candidates come from what the question lacked: a word close in spelling to a member
or a value ("revnue" → revenue), a member whose description holds the word, the question
without the word, the main measures of the model for a question that named none, and the
same period at the end of the data for a period that holds none of it.
"""

from __future__ import annotations

import difflib
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiser_jupyter.agent.vocabulary import STOP_WORDS, Vocabulary, stem, words

if TYPE_CHECKING:
    from aiser_jupyter.agent.vocabulary import ValueIndex
    from aiser_jupyter.semantic.model import SemanticModel

MAX_SUGGESTIONS = 3


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
    """What the question did make clear, to build suggestions around."""
    ranked: bool = False
    """A ranking word with nothing to rank by ("our best customers")."""
    lacking: bool = False
    """The question asks for something the data does not hold: suggest other measures,
    not the same question with the word dropped."""
    time_phrase: str | None = None
    """The words of a period that holds no data, and what to say instead."""
    time_instead: str | None = None


def suggest(
    question: str,
    hints: Hints,
    model: SemanticModel,
    values: ValueIndex | None,
    answers: Callable[[str], bool],
) -> list[str]:
    """Up to three questions close to `question` for which `answers` is true."""
    candidates: list[str] = []
    if hints.time_phrase and hints.time_instead:
        said = rf"(?:(?:in|during|over|for|of)\s+)?(?:the\s+)?{re.escape(hints.time_phrase)}"
        candidates.append(
            re.sub(rf"\b{said}\b", hints.time_instead, question, count=1, flags=re.IGNORECASE)
        )
    main = main_measures(model)
    for word in [] if hints.lacking else hints.unknown:
        for name in close_names(word, model, values):
            candidates.append(_replace(question, word, name))
    if hints.no_measure:
        candidates += [_rephrase(title, hints) for title in main]
        if hints.ranked:  # "who are our best customers" → "… by revenue"
            candidates += [f"{question.rstrip('?')} by {title}" for title in main]
    if not hints.lacking:  # without the word, the question may still mean what was meant
        candidates += [without(question, word) for word in hints.unknown]
    candidates += [_rephrase(title, hints) for title in main]
    candidates += main
    found: list[str] = []
    for candidate in dict.fromkeys(" ".join(c.split()) for c in candidates):
        if candidate and candidate.lower() != question.lower() and answers(candidate):
            found.append(candidate)
            if len(found) == MAX_SUGGESTIONS:
                break
    return found


def main_measures(model: SemanticModel) -> list[str]:
    """Titles of the measures a user most likely means: those of the fact cubes (the ones
    with the most many-to-one joins) first, sums before counts before the rest."""
    cubes = sorted(
        (c for c in model.cubes.values() if c.public),
        key=lambda c: (
            -sum(j.relationship in ("many_to_one", "belongs_to") for j in c.joins.values())
        ),
    )
    order = {"sum": 0, "count": 1, "count_distinct": 2, "avg": 3, "number": 4}
    found = [
        m
        for cube in cubes[:2]
        for m in cube.by_kind("measure")
        if m.public and m.type in order and not m.filters
    ]
    found.sort(key=lambda m: order[m.type])
    return [m.title.lower() for m in found[:MAX_SUGGESTIONS]]


def close_names(word: str, model: SemanticModel, values: ValueIndex | None) -> list[str]:
    """Names a mistyped or unknown word may have meant: members and values spelled alike,
    and members whose description holds the word."""
    vocabulary = Vocabulary.of(model)
    names: dict[str, str] = {}
    for cube in model.cubes.values():
        for member in cube.members.values():
            if member.public and member.kind != "segment":
                for w in [*words(member.title), *words(member.name)]:
                    if w.lower() not in STOP_WORDS:  # "country" is not a misspelt "count"
                        names.setdefault(w.lower(), member.title.lower())
    for found in values.values.values() if values else ():
        for value in found:
            names.setdefault(value.lower(), value)
    close = difflib.get_close_matches(word.lower(), list(names), n=3, cutoff=0.75)
    described = [
        model.member(c.name).title.lower() for c in vocabulary.described.get(stem(word), [])
    ]
    return list(dict.fromkeys([names[c] for c in close] + described))


def _rephrase(measure: str, hints: Hints) -> str:
    """`measure` with what the question made clear: "revenue by region for enterprise"."""
    text = measure
    groupings = hints.groupings + ([hints.grain] if hints.grain else [])
    if groupings:
        text += " by " + " and ".join(groupings)
    if hints.values:
        text += " for " + " and ".join(hints.values)
    if hints.period:
        text += " " + (hints.period if hints.period[:1].isalpha() else f"in {hints.period}")
    return text


def without(question: str, word: str) -> str:
    """The question without `word`, and without a preposition it leaves dangling."""
    pattern = re.compile(
        rf"\b(?:(?:by|for|in|of|per|from|with|on)\s+)?{re.escape(word)}\b", re.IGNORECASE
    )
    return pattern.sub("", question, count=1)


def _replace(question: str, phrase: str, instead: str) -> str:
    pattern = re.compile(rf"\b{re.escape(phrase)}\b", re.IGNORECASE)
    return pattern.sub(instead, question, count=1)
