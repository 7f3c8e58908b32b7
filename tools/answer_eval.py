"""Scores ``%%ask`` (offline) on the evaluation sets in tests/answers/: each question's answer
against hand-written SQL over the raw tables, or against the rule that it must be declined.

Used by tests/test_answers.py (which asserts the targets) and benchmarks/bench_answers.py
(which prints them). An answer is *right* when every column of the hand SQL's result
appears, by its values, in the answer's result, with the same rows (as a set, or in order
where the set says ``ordered``); extra columns are allowed (a share shows its measure too).
An answered question whose numbers differ, or one answered that had to be declined, is a
*wrong or unasked number shown*: the count that must stay zero.
"""

from __future__ import annotations

import datetime as dt
import decimal
import itertools
import math
from collections import Counter
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

ROOT = Path(__file__).resolve().parent.parent
SETS = ROOT / "tests" / "answers"
OUTCOMES = ("right", "declined right", "wrong", "unasked", "declined wrongly", "no suggestion")


@dataclass
class Case:
    """One question of a set; `then` is its follow-up, asked right after it."""

    question: str
    sql: str | None
    expect: str | None
    ordered: bool = False
    today: str | None = None
    then: Case | None = None


@dataclass
class Outcome:
    question: str
    outcome: str
    status: str
    planner_ms: float
    detail: str = ""


@dataclass
class Score:
    """Outcomes of one set."""

    name: str
    outcomes: list[Outcome] = field(default_factory=list)

    def count(self, *kinds: str) -> int:
        return sum(o.outcome in kinds for o in self.outcomes)

    @property
    def answerable(self) -> int:
        return self.count("right", "wrong", "declined wrongly")

    @property
    def coverage(self) -> float:
        return self.count("right") / self.answerable if self.answerable else 1.0

    @property
    def shown_wrong(self) -> int:
        """Wrong or unasked numbers shown: answers that must not have been given."""
        return self.count("wrong", "unasked")

    def failures(self) -> list[Outcome]:
        return [o for o in self.outcomes if o.outcome not in ("right", "declined right")]


def load_set(name: str) -> tuple[str, list[Case]]:
    """The model name and the cases of ``tests/answers/NAME.yml``."""
    data = yaml.safe_load((SETS / f"{name}.yml").read_text(encoding="utf-8"))
    today = data.get("today")
    return data["model"], [_case(item, today) for item in data["questions"]]


def set_names() -> list[str]:
    return sorted(p.stem for p in SETS.glob("*.yml"))


def _case(item: dict[str, Any], today: str | None) -> Case:
    then = item.get("then")
    return Case(
        question=item["q"],
        sql=item.get("sql"),
        expect=item.get("expect"),
        ordered=bool(item.get("ordered")),
        today=str(item.get("today") or today or "") or None,
        then=_case(then, item.get("today") or today) if then else None,
    )


def score_set(session: Any, name: str, cases: list[Case]) -> Score:
    """Ask every case offline on `session` (its data and model loaded) and score it."""
    score = Score(name)
    for case in cases:
        previous = None
        for step in _chain(case):
            session.settings.today = step.today or ""
            answer = session.ask(step.question, offline=True, new=previous is None)
            score.outcomes.append(_judge(session, step, answer))
            previous = answer
    session.settings.today = ""
    return score


def _chain(case: Case) -> Iterator[Case]:
    step: Case | None = case
    while step is not None:
        yield step
        step = step.then


def _judge(session: Any, case: Case, answer: Any) -> Outcome:
    planner = next((s.seconds for s in answer.steps if s.name == "planner"), 0.0) * 1000
    status = answer.status

    def outcome(kind: str, detail: str = "") -> Outcome:
        return Outcome(case.question, kind, status, planner, detail)

    if case.sql is None:
        if status == "answered":
            return outcome("unasked", _shown(answer))
        if not answer.suggestions:
            return outcome("no suggestion", answer.text)
        return outcome("declined right")
    if status != "answered":
        return outcome("declined wrongly", answer.text)
    want = session.sql(case.sql).to_arrow()
    got = answer.result.to_arrow() if answer.result is not None else None
    if got is not None and same_answer(got, want, case.ordered):
        return outcome("right")
    return outcome("wrong", _shown(answer))


def _shown(answer: Any) -> str:
    query = answer.query if answer.query is not None else {}
    return f"{answer.text} | {query}"


def same_answer(got: Any, want: Any, ordered: bool) -> bool:
    """Whether Arrow table `got` holds every column of `want`, with the same rows."""
    if got.num_rows != want.num_rows:
        return False
    theirs = [[_plain(v) for v in c.to_pylist()] for c in got.columns]
    ours = [[_plain(v) for v in c.to_pylist()] for c in want.columns]
    options = []
    for column in ours:
        counted = Counter(column)
        found = [i for i, other in enumerate(theirs) if Counter(other) == counted]
        if not found:
            return False
        options.append(found)
    rows = list(zip(*ours, strict=True))
    for pick in itertools.islice(itertools.product(*options), 2000):
        if len(set(pick)) != len(pick):
            continue
        chosen = list(zip(*(theirs[i] for i in pick), strict=True))
        if chosen == rows if ordered else Counter(chosen) == Counter(rows):
            return True
    return False


def _plain(value: Any) -> Any:
    """Values compared as a person reads them: 9 significant digits, dates without midnight."""
    if isinstance(value, bool) or value is None:
        return value
    if isinstance(value, (int, float, decimal.Decimal)):
        number = float(value)
        return None if math.isnan(number) else float(f"{number:.9g}")
    if isinstance(value, dt.datetime) and value.time() == dt.time():
        return value.date()
    return value
