"""Cube's filter operators as sqlglot conditions.

Filters on dimensions end up in WHERE, filters on measures in HAVING; a single
``and``/``or`` group may not mix the two (Cube refuses that too).
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlglot import exp

from aiser_jupyter.semantic.dates import DateRangeError, date_range
from aiser_jupyter.semantic.query import QueryFormatError

Lookup = Callable[[str], tuple[exp.Expression, str, bool]]
"""member name → (its expression, its type, whether it is a measure)."""

OPERATORS = frozenset(
    {
        "equals",
        "notEquals",
        "contains",
        "notContains",
        "startsWith",
        "notStartsWith",
        "endsWith",
        "notEndsWith",
        "gt",
        "gte",
        "lt",
        "lte",
        "set",
        "notSet",
        "inDateRange",
        "notInDateRange",
        "beforeDate",
        "beforeOrOnDate",
        "afterDate",
        "afterOrOnDate",
        "measureFilter",
    }
)


def timestamp(value: datetime) -> exp.Expression:
    text = value.isoformat(sep=" ", timespec="milliseconds" if value.microsecond else "seconds")
    return exp.cast(exp.Literal.string(text), exp.DataType.build("timestamp"))


def literal(value: Any, member_type: str) -> exp.Expression:
    """A filter value (Cube sends strings) as a literal of the member's type."""
    if value is None:
        return exp.null()
    if member_type == "number":
        try:
            number = float(value)
        except (TypeError, ValueError):
            raise QueryFormatError(f"{value!r} is not a number") from None
        return exp.Literal.number(int(number) if number.is_integer() else number)
    if member_type == "boolean":
        return exp.true() if str(value).lower() in ("true", "1", "t", "yes") else exp.false()
    if member_type == "time":
        try:
            start, _ = date_range(str(value))
        except DateRangeError as exc:
            raise QueryFormatError(str(exc)) from None
        return timestamp(start)
    return exp.Literal.string(str(value))


def condition(
    raw: dict[str, Any],
    lookup: Lookup,
    measure_filter: Callable[[str], exp.Expression],
    *,
    now: datetime | None,
    timezone: str,
) -> tuple[exp.Expression, bool]:
    """One filter (or and/or group) as a condition, and whether it applies to measures.

    `measure_filter` gives a measure's own filters, which ``measureFilter`` applies to rows.
    """
    for group, combine in (("and", exp.and_), ("or", exp.or_)):
        if group in raw:
            parts = [
                condition(item, lookup, measure_filter, now=now, timezone=timezone)
                for item in raw[group]
            ]
            if not parts:
                raise QueryFormatError(f"an empty '{group}' filter group")
            kinds = {is_measure for _, is_measure in parts}
            if len(kinds) > 1:
                raise QueryFormatError(
                    f"an '{group}' group cannot mix measure and dimension filters"
                )
            return combine(*[exp.paren(c) for c, _ in parts]), kinds.pop()
    member = raw.get("member") or raw.get("dimension")
    operator = raw.get("operator")
    if not member or operator not in OPERATORS:
        raise QueryFormatError(
            f"a filter needs 'member' and an operator from {sorted(OPERATORS)}, got {raw!r}"
        )
    if operator == "measureFilter":
        return measure_filter(member), False
    column, member_type, is_measure = lookup(member)
    values = raw.get("values")
    if values is not None and not isinstance(values, list):
        values = [values]
    values = values or []
    return _operator(operator, column, member_type, values, member, now, timezone), is_measure


def _range(
    values: list[Any], member: str, now: datetime | None, timezone: str
) -> tuple[exp.Expression, exp.Expression]:
    try:
        start, end = date_range(
            values if len(values) > 1 else values[0], now=now, timezone=timezone
        )
    except (DateRangeError, IndexError) as exc:
        raise QueryFormatError(f"{member}: {exc or 'a date is needed'}") from None
    return timestamp(start), timestamp(end)


def _operator(
    op: str,
    column: exp.Expression,
    member_type: str,
    values: list[Any],
    member: str,
    now: datetime | None,
    timezone: str,
) -> exp.Expression:
    def needs(count: int) -> None:
        if len(values) < count:
            raise QueryFormatError(f"{member} {op} needs {count} value(s)")

    col = column.copy
    if op == "set":
        return exp.not_(exp.Is(this=col(), expression=exp.null()))
    if op == "notSet":
        return exp.Is(this=col(), expression=exp.null())
    if op in ("equals", "notEquals"):
        needs(1)
        items = [literal(v, member_type) for v in values]
        test = (
            exp.EQ(this=col(), expression=items[0])
            if len(items) == 1
            else exp.In(this=col(), expressions=items)
        )
        if op == "equals":
            return test
        return exp.or_(exp.not_(test), exp.Is(this=col(), expression=exp.null()))
    patterns = {"contains": "%{}%", "startsWith": "{}%", "endsWith": "%{}"}
    positive = op[3].lower() + op[4:] if op.startswith("not") else op
    if positive in patterns:
        needs(1)
        likes = [
            exp.ILike(this=col(), expression=exp.Literal.string(patterns[positive].format(v)))
            for v in values
        ]
        if op == positive:
            return exp.or_(*likes)
        return exp.or_(
            exp.and_(*[exp.not_(like) for like in likes]), exp.Is(this=col(), expression=exp.null())
        )
    comparisons = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}
    if op in comparisons:
        needs(1)
        return comparisons[op](this=col(), expression=literal(values[0], member_type))
    if op in ("inDateRange", "notInDateRange"):
        needs(1)
        start, end = _range(values, member, now, timezone)
        inside = exp.and_(exp.GTE(this=col(), expression=start), exp.LT(this=col(), expression=end))
        return inside if op == "inDateRange" else exp.not_(exp.paren(inside))
    if op in ("beforeDate", "beforeOrOnDate", "afterDate", "afterOrOnDate"):
        needs(1)
        start, end = _range(values[:1], member, now, timezone)
        return {
            "beforeDate": lambda: exp.LT(this=col(), expression=start),
            "beforeOrOnDate": lambda: exp.LT(this=col(), expression=end),
            "afterDate": lambda: exp.GTE(this=col(), expression=end),
            "afterOrOnDate": lambda: exp.GTE(this=col(), expression=start),
        }[op]()
    raise QueryFormatError(f"operator {op!r} is not supported on {member}")
