"""Cube's filter operators as sqlglot conditions.

Filters on dimensions end up in WHERE, filters on measures in HAVING; a single
``and``/``or`` group may not mix the two (Cube refuses that too).

Date operators follow Cube's classic planner (BaseFilter and the REST API's normalizeQuery):
a range ends at its last millisecond, included (``<= ...23:59:59.999``); ``beforeDate``,
``beforeOrOnDate``, ``afterDate`` and ``afterOrOnDate`` compare with the value's first instant
(a date is its midnight, so ``afterDate 2024-12-01`` is ``> 2024-12-01 00:00:00``), except
that a relative value (``last week``) gives its start to ``beforeDate``/``afterOrOnDate`` and
its end to ``beforeOrOnDate``/``afterDate``. Tested against Cube's own compiler in
tests/test_cube_parity.py.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import datetime, timedelta
from typing import Any

from sqlglot import exp

from aiser_jupyter.semantic.dates import DateRangeError, date_range, instant
from aiser_jupyter.semantic.query import QueryFormatError

_LAST_MS = timedelta(milliseconds=1)
_SINGLE_DATE = {  # operator → (comparison, whether a relative value gives its end)
    "beforeDate": (exp.LT, False),
    "beforeOrOnDate": (exp.LTE, True),
    "afterDate": (exp.GT, True),
    "afterOrOnDate": (exp.GTE, False),
}

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
        "onTheDate",
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
        exact = instant(str(value))
        if exact is not None:
            return timestamp(exact)
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
    """The first and the last millisecond of a date range, both included, as Cube sends them."""
    try:
        start, end = date_range(
            values if len(values) > 1 else values[0], now=now, timezone=timezone
        )
    except (DateRangeError, IndexError) as exc:
        raise QueryFormatError(f"{member}: {exc or 'a date is needed'}") from None
    return timestamp(_utc(start, timezone)), timestamp(_utc(end - _LAST_MS, timezone))


def _utc(wall_clock: datetime, timezone: str) -> datetime:
    """A wall-clock time of the query's timezone as the UTC time stored columns hold, as Cube
    sends its date filter values."""
    from datetime import UTC
    from zoneinfo import ZoneInfo

    if timezone == "UTC":
        return wall_clock
    aware = wall_clock.replace(tzinfo=ZoneInfo(timezone))
    return aware.astimezone(UTC).replace(tzinfo=None)


def _like(column: exp.Expression, pattern: str, value: str) -> exp.Expression:
    """``column ILIKE pattern`` with `value`'s own ``%``, ``_`` and ``\\`` matched literally,
    as Cube escapes them (with ESCAPE, which engines without a default escape need)."""
    escaped = "".join("\\" + c if c in "\\%_" else c for c in value)
    like = exp.ILike(this=column, expression=exp.Literal.string(pattern.format(escaped)))
    if escaped == value:
        return like
    return exp.Escape(this=like, expression=exp.Literal.string("\\"))


def _bound(
    value: Any, gives_end: bool, member: str, now: datetime | None, timezone: str
) -> exp.Expression:
    """The instant a before/after operator compares with: an absolute value's own first
    instant, else the start (or, for `gives_end`, the last millisecond) of its range."""
    exact = instant(str(value), timezone=timezone)
    if exact is not None:
        return timestamp(_utc(exact, timezone))
    start, last = _range([value], member, now, timezone)
    return last if gives_end else start


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
        likes = [_like(col(), patterns[positive], str(v)) for v in values]
        if op == positive:
            return exp.or_(*likes)
        return exp.or_(
            exp.and_(*[exp.not_(like) for like in likes]), exp.Is(this=col(), expression=exp.null())
        )
    comparisons = {"gt": exp.GT, "gte": exp.GTE, "lt": exp.LT, "lte": exp.LTE}
    if op in comparisons:
        needs(1)
        return comparisons[op](this=col(), expression=literal(values[0], member_type))
    if op in ("inDateRange", "onTheDate"):
        needs(1)
        start, last = _range(values, member, now, timezone)
        return exp.and_(exp.GTE(this=col(), expression=start), exp.LTE(this=col(), expression=last))
    if op == "notInDateRange":
        needs(1)
        start, last = _range(values, member, now, timezone)
        return exp.or_(exp.LT(this=col(), expression=start), exp.GT(this=col(), expression=last))
    if op in _SINGLE_DATE:
        needs(1)
        compare, gives_end = _SINGLE_DATE[op]
        return compare(this=col(), expression=_bound(values[0], gives_end, member, now, timezone))
    raise QueryFormatError(f"operator {op!r} is not supported on {member}")
