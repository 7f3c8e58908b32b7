"""A measure across a dimension: who drove the change between two periods, who moved most,
how concentrated the total is, and which members are far from the rest."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from aiser_jupyter.analysis.columns import Columns, period
from aiser_jupyter.analysis.insight import Insight, InsightsError, percent
from aiser_jupyter.analysis.series import MIN_THRESHOLD, robust_scale

PERIOD_STEPS = {"minute": 60, "hour": 24, "day": 28, "week": 4, "month": 1, "quarter": 1}
"""Default comparison: the last this-many steps against as many before (28 days: whole weeks)."""
MIN_SHARE = 0.01
"""Members smaller than this share of the total are left out of "fastest growing"."""


@dataclass
class Breakdown:
    """One measure by one dimension (and maybe time) of a frame, with how to word it."""

    frame: pd.DataFrame
    cols: Columns
    measure: str
    category: str
    additive: bool
    time: str | None = None
    grain: str | None = None
    top: int = 3

    @property
    def title(self) -> str:
        return self.cols.title(self.measure)

    @property
    def dimension(self) -> str:
        return self.cols.title(self.category)

    def fmt(self, value: float) -> str:
        return self.cols.fmt(self.measure, value)

    def totals(self, rows: pd.DataFrame | None = None) -> pd.Series:
        """The measure per member: summed when additive, else averaged over the rows."""
        grouped = (self.frame if rows is None else rows).groupby(
            self.category, dropna=False, observed=True
        )[self.measure]
        return grouped.sum() if self.additive else grouped.mean()

    def insight(self, kind: str, text: str, score: float, **extra: Any) -> Insight:
        members = (self.category,) if self.time is None else (self.category, self.time)
        return Insight(kind, text, score, self.measure, members, **extra)


def breakdown_insights(part: Breakdown, compare: Any = None) -> list[Insight]:
    found = [*concentration(part), *outliers(part)]
    if part.time is not None:
        periods = comparison(part, compare)
        if periods is not None:
            found += changes(part, *periods)
    return found


def concentration(part: Breakdown) -> list[Insight]:
    """How much of the total the top members hold (only for a measure that adds up)."""
    totals = part.totals().sort_values(ascending=False)
    count = len(totals)
    if not part.additive or count < 4 or (totals < 0).any() or totals.sum() <= 0:
        return []
    n = min(part.top, count - 1)
    shares = totals / totals.sum()
    top_share = float(shares.iloc[:n].sum())
    excess = (top_share - n / count) / (1 - n / count)
    named = ", ".join(f"{k} {v * 100:.0f}%" for k, v in shares.iloc[:n].items())
    text = (
        f"The top {n} of {count} {part.dimension} values hold {top_share * 100:.0f}% of "
        f"{part.title} ({named})."
    )
    numbers = {
        "top": n,
        "members": count,
        "share": top_share,
        "hhi": float((shares**2).sum()),
        "shares": shares.iloc[:n].to_dict(),
    }
    return [part.insight("concentration", text, 0.5 * excess, numbers=numbers)]


def outliers(part: Breakdown) -> list[Insight]:
    """Members whose value lies far from the others' (robust z on the log when positive)."""
    totals = part.totals().dropna()
    if len(totals) < 5:
        return []
    values = totals.to_numpy(dtype=float)
    positive = bool((values > 0).all())
    scaled = np.log(values) if positive else values
    scale = robust_scale(scaled)
    if not scale:
        return []
    z = (scaled - np.median(scaled)) / scale
    out = []
    median = float(np.median(values))
    for member, value, score in zip(totals.index, values, z, strict=True):
        if abs(score) < MIN_THRESHOLD:
            continue
        side = "above" if score > 0 else "below"
        text = (
            f"{member} is an outlier among {len(totals)} {part.dimension} values: {part.title} "
            f"{part.fmt(value)}, far {side} the median {part.fmt(median)} (robust z {score:+.1f})."
        )
        numbers = {"value": float(value), "median": median, "z": float(score)}
        weight = 0.7 * min(1.0, abs(score) / (2 * MIN_THRESHOLD))
        out.append(
            part.insight("outlier", text, weight, where={part.category: member}, numbers=numbers)
        )
    return out


def comparison(part: Breakdown, compare: Any) -> tuple[tuple, tuple] | None:
    """The two periods to compare: as given (``((start, end), (start, end))``, inclusive: an
    end without a time of day takes in that whole day), or the last PERIOD_STEPS steps
    against as many before them."""
    times = pd.DatetimeIndex(part.frame[part.time].dropna().unique()).sort_values()
    if compare is not None:
        try:
            (a, b), (c, d) = compare
            bounds = [pd.Timestamp(v) for v in (a, b, c, d)]
        except (TypeError, ValueError) as exc:
            raise InsightsError(
                f"compare must be ((start, end), (start, end)), e.g. "
                f"(('2024-01-01', '2024-06-30'), ('2024-07-01', '2024-12-31')): {exc}"
            ) from None
        ends = [
            b + pd.Timedelta(days=1) - pd.Timedelta(1) if b == b.normalize() else b
            for b in bounds[1::2]
        ]
        return (bounds[0], ends[0]), (bounds[2], ends[1])
    length = PERIOD_STEPS.get(part.grain or "", max(1, len(times) // 4))
    if len(times) < 2 * length:
        return None
    return (times[-2 * length], times[-length - 1]), (times[-length], times[-1])


def changes(part: Breakdown, before: tuple, after: tuple) -> list[Insight]:
    """Contribution of each member to the total's change, and the fastest movers."""
    when = part.frame[part.time]
    old = part.totals(part.frame[when.between(*before)])
    new = part.totals(part.frame[when.between(*after)])
    table = pd.DataFrame({"before": old, "after": new}).fillna(0 if part.additive else np.nan)
    if table.empty:
        return []
    table["change"] = table["after"] - table["before"]
    table["pct_change"] = table["change"] / table["before"].abs().replace(0, np.nan)
    label = f"{_span(part, after)} vs {_span(part, before)}"
    out = []
    if part.additive:
        out += _contribution(part, table, label)
    return out + _movers(part, table, label)


def _span(part: Breakdown, bounds: tuple) -> str:
    start, end = (period(b, part.grain) for b in bounds)
    return start if start == end else f"{start}–{end}"


def _contribution(part: Breakdown, table: pd.DataFrame, label: str) -> list[Insight]:
    before, after = float(table["before"].sum()), float(table["after"].sum())
    if not before:
        return []
    change = (after - before) / abs(before)
    table["points"] = table["change"] / abs(before) * 100
    drivers = table[np.sign(table["change"]) == np.sign(after - before)]
    drivers = drivers.reindex(drivers["points"].abs().sort_values(ascending=False).index)
    named = [f"{k} explains {v:+.1f} points" for k, v in drivers["points"].head(2).items()]
    verb = "rose" if after > before else "fell" if after < before else "held"
    text = (
        f"{part.title} {verb} {abs(change) * 100:.1f}% ({label}: {part.fmt(before)} → "
        f"{part.fmt(after)})" + (f": {', '.join(named)}." if named else ".")
    )
    numbers = {
        "before": before,
        "after": after,
        "change": change,
        "points": table["points"].to_dict(),
    }
    where = {part.category: list(drivers.index[:2])}
    score = 0.15 + 0.75 * min(1.0, abs(change) / 0.25)
    data = table.sort_values("points", key=np.abs, ascending=False)
    return [part.insight("contribution", text, score, where=where, numbers=numbers, data=data)]


def _movers(part: Breakdown, table: pd.DataFrame, label: str) -> list[Insight]:
    sized = table.dropna(subset=["pct_change"])
    if part.additive:
        total = float(table["before"].abs().sum())
        sized = sized[sized["before"].abs() >= MIN_SHARE * total]
    if len(sized) < 3:
        return []
    ranked = sized.sort_values("pct_change", ascending=False)
    up = ranked[ranked["pct_change"] > 0].head(part.top)
    down = ranked[ranked["pct_change"] < 0].tail(part.top).iloc[::-1]
    parts = []
    for name, rows in (("up", up), ("down", down)):
        if len(rows):
            listed = ", ".join(f"{k} {percent(v, 0)}" for k, v in rows["pct_change"].items())
            parts.append(f"{name}: {listed}")
    if not parts:
        return []
    text = f"Biggest movers in {part.title} by {part.dimension} ({label}): {'; '.join(parts)}."
    biggest = float(sized["pct_change"].abs().max())
    numbers = {"pct_change": ranked["pct_change"].to_dict()}
    where = {part.category: [*up.index, *down.index]}
    score = 0.1 + 0.5 * min(1.0, biggest / 0.5)
    return [part.insight("movers", text, score, where=where, numbers=numbers, data=ranked)]
