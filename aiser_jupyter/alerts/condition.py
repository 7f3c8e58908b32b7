"""An alert's condition: a small SQL boolean expression over ``value``, ``previous`` and
``change``, parsed with sqlglot and evaluated here over its tree, never with ``eval``.

What it may say: numbers, strings, TRUE/FALSE/NULL, the three names, comparisons
(``= <> != < <= > >=``, ``BETWEEN``, ``IN (…)``, ``IS [NOT] NULL``), arithmetic
(``+ - * /``, unary minus), ``abs(…)``, ``AND``, ``OR``, ``NOT`` and parentheses. Anything
else (another name, a function, a subquery) is refused with a ConditionError that says what.
NULL behaves as in SQL: a comparison with it is unknown, and an unknown condition does not
fire (``change`` is NULL at the first check, and when the previous value was 0).
"""

from __future__ import annotations

import operator
from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any

from aiser_jupyter.errors import AiserError

NAMES = ("value", "previous", "change")
ANOMALY = "anomaly"
"""The condition that fires on an anomaly found by insights in the source's data."""


class ConditionError(AiserError):
    """A condition that cannot be read, or says something a condition may not."""


def _compare(op: Callable[[Any, Any], bool]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        try:
            return op(left, right)
        except TypeError:
            raise ConditionError(
                f"cannot compare {type(left).__name__} with {type(right).__name__}"
            ) from None

    return apply


def _arith(op: Callable[[Any, Any], Any]) -> Callable[[Any, Any], Any]:
    def apply(left: Any, right: Any) -> Any:
        if left is None or right is None:
            return None
        if op is operator.truediv and right == 0:
            return None  # SQL's NULLIF-style answer, not an exception mid-check
        try:
            return op(left, right)
        except TypeError:
            raise ConditionError(
                f"cannot do arithmetic on {type(left).__name__} and {type(right).__name__}"
            ) from None

    return apply


def _binary() -> dict[type, Callable[[Any, Any], Any]]:
    from sqlglot import exp

    return {
        exp.EQ: _compare(operator.eq),
        exp.NEQ: _compare(operator.ne),
        exp.GT: _compare(operator.gt),
        exp.GTE: _compare(operator.ge),
        exp.LT: _compare(operator.lt),
        exp.LTE: _compare(operator.le),
        exp.Add: _arith(operator.add),
        exp.Sub: _arith(operator.sub),
        exp.Mul: _arith(operator.mul),
        exp.Div: _arith(operator.truediv),
    }


def plain(value: Any) -> Any:
    """A value as the condition sees it: numbers as floats, bools and strings as they are."""
    if isinstance(value, bool) or value is None or isinstance(value, str):
        return value
    if isinstance(value, int | float | Decimal):
        return float(value)
    if hasattr(value, "item"):  # numpy scalars
        return plain(value.item())
    return str(value)


class Condition:
    """A parsed condition; `holds(value=…, previous=…, change=…)` says whether it is true."""

    def __init__(self, text: str):
        import sqlglot
        from sqlglot import exp

        self.text = text.strip()
        if not self.text:
            raise ConditionError("an empty condition: say e.g. 'value > 100' or 'change < -0.2'")
        self.anomaly = self.text.lower() == ANOMALY
        if self.anomaly:
            self.tree: Any = None
            return
        try:
            self.tree = sqlglot.parse_one(self.text, into=exp.Condition)
        except sqlglot.errors.ParseError:
            raise ConditionError(
                f"cannot read the condition {self.text!r}: write a comparison over value, "
                "previous and change, e.g. 'value > 100' or 'change < -0.2'"
            ) from None
        self._binary = _binary()
        self._check(self.tree)

    def _check(self, node: Any) -> None:
        """Refuse any node the evaluator does not know, naming it."""
        from sqlglot import exp

        allowed = (
            exp.Column,
            exp.Identifier,
            exp.Literal,
            exp.Boolean,
            exp.Null,
            exp.Paren,
            exp.Neg,
            exp.Not,
            exp.And,
            exp.Or,
            exp.Is,
            exp.Between,
            exp.In,
            exp.Abs,
            *self._binary,
        )
        for child in node.walk():
            if isinstance(child, exp.Column):
                if child.table or child.name.lower() not in NAMES:
                    raise ConditionError(
                        f"unknown name {child.sql()!r} in {self.text!r}: a condition may name "
                        "value, previous and change only"
                    )
            elif isinstance(child, allowed):
                continue
            elif isinstance(child, exp.Func):
                raise ConditionError(
                    f"{child.sql()!r} in {self.text!r}: a condition may call abs() only"
                )
            else:
                raise ConditionError(
                    f"{child.sql()!r} in {self.text!r} is not allowed in a condition"
                )

    def holds(self, **names: Any) -> bool:
        """True only when the condition is true (unknown, as with NULL, is not true)."""
        if self.anomaly:
            return bool(names.get("value"))
        values = {k: plain(names.get(k)) for k in NAMES}
        return self._eval(self.tree, values) is True

    def _eval(self, node: Any, names: Mapping[str, Any]) -> Any:
        from sqlglot import exp

        if isinstance(node, exp.Column):
            return names[node.name.lower()]
        if isinstance(node, exp.Literal):
            return node.this if node.is_string else float(node.this)
        if isinstance(node, exp.Boolean):
            return bool(node.this)
        if isinstance(node, exp.Null):
            return None
        if isinstance(node, exp.Paren):
            return self._eval(node.this, names)
        if isinstance(node, exp.Neg):
            inner = self._eval(node.this, names)
            return None if inner is None else _arith(operator.sub)(0.0, inner)
        if isinstance(node, exp.Abs):
            inner = self._eval(node.this, names)
            return None if inner is None else abs(inner)
        if isinstance(node, exp.Not):
            inner = self._eval(node.this, names)
            return None if inner is None else not inner
        if isinstance(node, exp.And | exp.Or):
            return self._logic(node, names)
        if isinstance(node, exp.Is):
            return self._eval(node.this, names) is None  # IS NULL (IS NOT is Not(Is))
        if isinstance(node, exp.Between):
            this = self._eval(node.this, names)
            low, high = self._eval(node.args["low"], names), self._eval(node.args["high"], names)
            both = (_compare(operator.ge)(this, low), _compare(operator.le)(this, high))
            return None if None in both else all(both)
        if isinstance(node, exp.In):
            this = self._eval(node.this, names)
            options = [self._eval(e, names) for e in node.expressions]
            if this is None:
                return None
            return True if this in options else (None if None in options else False)
        op = self._binary[type(node)]
        return op(self._eval(node.this, names), self._eval(node.expression, names))

    def _logic(self, node: Any, names: Mapping[str, Any]) -> Any:
        """Three-valued AND and OR, as SQL has them."""
        from sqlglot import exp

        left, right = self._eval(node.this, names), self._eval(node.expression, names)
        if isinstance(node, exp.And):
            if left is False or right is False:
                return False
            return None if None in (left, right) else True
        if left is True or right is True:
            return True
        return None if None in (left, right) else False

    def __repr__(self) -> str:
        return f"Condition({self.text!r})"


def relative_change(value: Any, previous: Any) -> float | None:
    """(value - previous) / |previous|; None without a previous number or when it was 0."""
    value, previous = plain(value), plain(previous)
    if not isinstance(value, float) or not isinstance(previous, float) or previous == 0:
        return None
    return (value - previous) / abs(previous)
