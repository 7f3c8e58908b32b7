"""The coverage check: does a model's semantic query ask what the question asked?

The offline planner reads the same question deterministically, and its plan is the
yardstick: a model's query runs only when it holds every part the planner read (measures,
filters, grouping, period) and, when the planner read the whole question, nothing the
question did not ask for. So with or without a language model, no measure is guessed or
substituted and no filter silently dropped.

Members are compared by meaning, not by spelling: a view's member is its cube's member, a
dimension defined as another cube's (``orders.region`` is ``{customers.region}``) is that
one, two measures with the same cube, type, SQL and filters are one measure, and two date
ranges are one when they cover the same days ("last year" and its two dates).
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from aiser_jupyter.agent.planner import Plan
from aiser_jupyter.semantic.dates import DateRangeError, date_range
from aiser_jupyter.semantic.model import Member, SemanticModel
from aiser_jupyter.semantic.references import PLACEHOLDER

__all__ = ["Gap", "clarify_text", "coverage_gaps", "find_gaps", "phrasing"]

Said = tuple[str, str]
"""A part of a query in words: with its values (a sentence's subject), and without them."""


@dataclass(frozen=True)
class Gap:
    """One way a query differs from the question: `part` names it without its values (for a
    headline that shows no numbers), `sentence` says it in full (for the model to repair)."""

    part: str
    sentence: str
    missing: bool


def coverage_gaps(
    plan: Plan, query: dict[str, Any], model: SemanticModel, now: datetime | None = None
) -> list[str]:
    """What `query` misses or adds against the planner's reading of the same question, one
    short sentence each; empty when the query covers it. `now` resolves relative ranges."""
    return [gap.sentence for gap in find_gaps(plan, query, model, now)]


def find_gaps(
    plan: Plan, query: dict[str, Any], model: SemanticModel, now: datetime | None = None
) -> list[Gap]:
    """`coverage_gaps` as `Gap`s. Only what the plan's query holds is judged: a partial plan
    (``status`` other than answered) says nothing about the words it did not read, so the
    query may add to it there; a complete plan must be matched exactly. `query` must be a
    valid query of `model` (compile it first)."""
    parts = _Parts(model, now or datetime.now())
    asked, made = parts.of(plan.query), parts.of(query)
    complete = plan.status == "answered"
    # Grouping by a dimension filtered to one value adds nothing: it only labels the rows.
    pinned = parts.pinned(plan.query)
    made["grouping"] = {k: v for k, v in made["grouping"].items() if k not in pinned}
    gaps: list[Gap] = []
    for kind, wanted in asked.items():
        given = made[kind]
        gaps += [
            Gap(f"the {part}", f"{said} is missing", True)
            for key, (said, part) in wanted.items()
            if key not in given
        ]
        if complete and (wanted or kind != "measure"):
            gaps += [
                Gap(f"a {part}", f"{said} was not asked for", False)
                for key, (said, part) in given.items()
                if key not in wanted
            ]
    return gaps


def clarify_text(gaps: list[Gap]) -> str:
    """What a question not answered for these gaps says, naming no value and no number."""
    said = []
    if missing := [g.part for g in gaps if g.missing]:
        said.append(f"it leaves out {_listed(missing)}")
    if extra := [g.part for g in gaps if not g.missing]:
        said.append(f"it adds {_listed(extra)}, which the question did not ask for")
    return (
        "I could not match a query to the whole question, so no numbers are shown: "
        + "; ".join(said)
        + "."
    )


def phrasing(query: dict[str, Any], model: SemanticModel) -> str:
    """A query as a question the offline planner reads back: what it did understand."""
    words = " and ".join(model.member(m).title.lower() for m in query.get("measures") or [])
    groups = [model.member(d).title.lower() for d in query.get("dimensions") or []]
    times = query.get("timeDimensions") or []
    groups += [t["granularity"] for t in times if t.get("granularity")]
    order = query.get("order") or []
    if groups and query.get("limit") and order:
        end = "top" if order[0][1] == "desc" else "bottom"
        words = f"{end} {query['limit']} {' and '.join(groups)} by {words}"
    elif groups:
        words += " by " + " and ".join(groups)
    for f in _filters(query):
        values = " or ".join(str(v) for v in f.get("values") or [])
        if f.get("operator") == "equals":
            words += f" for {values}"
        elif f.get("operator") == "notEquals":
            words += f" excluding {values}"
    for value in [t["dateRange"] for t in times if t.get("dateRange")]:
        words += f" {value}" if isinstance(value, str) else f" from {value[0]} to {value[1]}"
    return words.strip().capitalize()


class _Parts:
    """A query's parts by meaning, so that two spellings of one thing compare equal: each
    kind maps a key to how the part reads (`Said`)."""

    def __init__(self, model: SemanticModel, now: datetime):
        self.model, self.now = model, now

    def of(self, query: dict[str, Any]) -> dict[str, dict[Any, Said]]:
        named = self.named
        parts: dict[str, dict[Any, Said]] = {
            "measure": {
                self.measure(m): (f"measure {named(m)}", f"measure {named(m)}")
                for m in query.get("measures") or []
            },
            "grouping": {
                self.dimension(d): (f"grouping by {named(d)}", f"grouping by {named(d)}")
                for d in query.get("dimensions") or []
            },
            "segment": {
                self.dimension(s): (f"segment {s}", f"segment {s}")
                for s in query.get("segments") or []
            },
            "filter": {},
            "period": {},
        }
        for f in _filters(query):
            if "or" in f:
                said = f"filter {json.dumps(f, separators=(',', ':'), default=str)}"
                parts["filter"][("or", said)] = (said, "filter group")
                continue
            if f.get("operator") == "inDateRange":  # a period written as a filter
                parts["period"].update(self.period(f["member"], f.get("values")))
                continue
            values = frozenset(str(v) for v in f.get("values") or [])
            shown = " or ".join(str(v) for v in f.get("values") or [])
            sign = {"equals": "=", "notEquals": "≠"}.get(f.get("operator"), f.get("operator"))
            said = f"filter {f['member']} {sign} {shown}".rstrip()
            key = (self.dimension(f["member"]), f.get("operator"), values)
            parts["filter"][key] = (said, f"filter on {f['member']}")
        for t in query.get("timeDimensions") or []:
            if t.get("granularity"):
                grain = f"grouping by {t['granularity']} of {named(t['dimension'])}"
                parts["grouping"][(self.dimension(t["dimension"]), t["granularity"])] = (
                    grain,
                    grain,
                )
            if t.get("dateRange") is not None:
                parts["period"].update(self.period(t["dimension"], t["dateRange"]))
        return parts

    def pinned(self, query: dict[str, Any]) -> set[str]:
        """Dimensions the query filters to a single value."""
        return {
            self.dimension(f["member"])
            for f in _filters(query)
            if f.get("operator") == "equals" and len(f.get("values") or []) == 1
        }

    def named(self, name: str) -> str:
        return f"{name} ({self.model.member(name).title})"

    def measure(self, name: str) -> Any:
        member = self.model.member(name)
        return member.cube, member.type, member.sql, tuple(member.filters)

    def dimension(self, name: str) -> str:
        """The member a dimension finally reads: views and ``{other.member}`` followed."""
        member = self.model.member(name)
        seen = {member.full_name}
        while (target := _alias_of(member)) is not None and target not in seen:
            seen.add(target)
            member = self.model.member(target)
        return member.full_name

    def period(self, member: str, value: Any) -> dict[Any, Said]:
        """A dateRange keyed by the days it covers (its first and last), so that "last year"
        and its two dates are one period."""
        where = self.dimension(member)
        try:
            start, end = date_range(value, now=self.now)
        except DateRangeError:
            return {(where, repr(value)): (f"period {value} on {member}", f"period on {member}")}
        first, last = start.date(), (end - timedelta(microseconds=1)).date()
        shown = f"{first} to {last}"
        shown = f"{value} ({shown})" if isinstance(value, str) else shown
        return {(where, first, last): (f"period {shown} on {member}", f"period on {member}")}


def _alias_of(member: Member) -> str | None:
    """``cube.member`` when a dimension's SQL is nothing but a reference to that member."""
    if member.sql is None or member.sql.text.strip() != PLACEHOLDER.format(0):
        return None
    path = member.sql.refs[0]
    if len(path) == 1 and path[0] != "CUBE":
        return f"{member.cube}.{path[0]}"
    if len(path) == 2:
        return f"{member.cube if path[0] == 'CUBE' else path[0]}.{path[1]}"
    return None


def _filters(query: dict[str, Any]) -> Iterator[dict[str, Any]]:
    """The query's filters, with ``and`` groups opened; an ``or`` group stays whole (the
    planner writes none, so it matches nothing)."""
    stack = list(query.get("filters") or [])
    while stack:
        item = stack.pop(0)
        if "and" in item:
            stack = list(item["and"]) + stack
        elif "or" in item:
            yield item
        elif "member" in item or "dimension" in item:
            yield {**item, "member": item.get("member") or item["dimension"]}


def _listed(parts: list[str]) -> str:
    return parts[0] if len(parts) == 1 else ", ".join(parts[:-1]) + " and " + parts[-1]
