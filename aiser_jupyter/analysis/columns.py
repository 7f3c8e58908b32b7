"""How a result's columns read: which are measures, times and categories, their titles and
formats, numbers and periods as people write them.

Shared by the insights (``analysis``) and the agent's narration (``agent.narrate``).
"""

from __future__ import annotations

import math
from typing import Any

import pandas as pd

ADDITIVE = {"sum", "count", "running_total"}


class Columns:
    """Which result columns are measures, times and categories, with titles and formats."""

    def __init__(self, frame: pd.DataFrame, annotation: dict[str, Any] | None, model: Any = None):
        annotation = annotation or {}
        members = {
            **(annotation.get("measures") or {}),
            **(annotation.get("dimensions") or {}),
            **(annotation.get("timeDimensions") or {}),
        }
        self.info = members
        named_measures = set(annotation.get("measures") or {})
        self.times = [
            c
            for c in frame.columns
            if c in (annotation.get("timeDimensions") or {})
            or pd.api.types.is_datetime64_any_dtype(frame[c])
        ]
        self.measures = [
            c
            for c in frame.columns
            if c not in self.times
            and (c in named_measures or (not named_measures and is_number(frame[c])))
        ]
        others = [c for c in frame.columns if c not in self.times + self.measures]
        # A name reads better than a key: "Widget Pro leads", not "79 leads".
        self.categories = sorted(others, key=lambda c: is_key(c) or is_number(frame[c]))
        self.model = model

    def title(self, column: str) -> str:
        member = self.info.get(column, {})
        return member.get("shortTitle") or member.get("title") or column

    def additive(self, column: str) -> bool:
        if self.model is None:
            return False
        try:
            return self.model.member(column).type in ADDITIVE
        except Exception:  # not a member of the model: a plain SQL column
            return False

    def fmt(self, column: str, value: Any) -> str:
        return format_value(value, self.info.get(column, {}).get("format"))


def is_key(column: str) -> bool:
    name = column.rsplit(".", 1)[-1].lower()
    return name == "id" or name.endswith("_id")


def granularity(column: str) -> str | None:
    """``orders.order_date.month`` → ``month`` (how Cube names a time dimension's column)."""
    last = column.rsplit(".", 1)[-1]
    return last if last in PERIOD_FORMATS else None


def is_number(series: pd.Series) -> bool:
    return pd.api.types.is_numeric_dtype(series) and not pd.api.types.is_bool_dtype(series)


def format_value(value: Any, fmt: str | None = None) -> str:
    """Numbers as people read them: separators, two decimals when not whole, $ or %."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "no value"
    if isinstance(value, (int, float)) or hasattr(value, "__float__"):
        number = float(value)
        text = f"{number:,.0f}" if number == int(number) else f"{number:,.2f}"
        if fmt == "currency":
            return f"-${text[1:]}" if text.startswith("-") else f"${text}"
        return f"{text}%" if fmt == "percent" else text
    return str(value)


PERIOD_FORMATS = {
    "year": "%Y",
    "quarter": None,
    "month": "%b %Y",
    "week": "week of %Y-%m-%d",
    "day": "%Y-%m-%d",
    "hour": "%Y-%m-%d %H:00",
    "minute": "%Y-%m-%d %H:%M",
}


def period(value: Any, grain: str | None = None) -> str:
    """A time value as its period reads: "2024", "2024 Q3", "Mar 2024", "2024-03-05"."""
    stamp = pd.Timestamp(value)
    if grain == "quarter":
        return f"{stamp.year} Q{stamp.quarter}"
    if grain in PERIOD_FORMATS:
        return stamp.strftime(PERIOD_FORMATS[grain] or "%Y-%m-%d")
    return stamp.strftime("%Y-%m-%d") if (stamp.hour, stamp.minute) == (0, 0) else str(stamp)
