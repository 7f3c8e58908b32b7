"""A measure's series as Insights: its trend, seasons, anomalies and forecast, in sentences
with the numbers that matter (titles and formats from the result's annotation)."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from aiser_jupyter.analysis import series as ts
from aiser_jupyter.analysis.columns import Columns, period
from aiser_jupyter.analysis.insight import Insight, percent

if TYPE_CHECKING:
    import pandas as pd

SIGNIFICANT = 0.01
"""p-value below which a trend or a season is reported as real."""
MIN_STRENGTH = 0.1
"""A season explaining less of the variation than this is not worth a sentence."""


def each(grain: str | None) -> str:
    """ "a day", "an hour": how a per-step value reads."""
    if grain is None:
        return "per point"
    return f"{'an' if grain == 'hour' else 'a'} {grain}"


def steps(count: int, grain: str | None) -> str:
    unit = grain or "point"
    return f"{count} {unit}{'' if count == 1 else 's'}"


class Subject:
    """What a series is: its measure and time columns, the member it is for, how to word it."""

    def __init__(
        self,
        cols: Columns,
        measure: str,
        time: str,
        grain: str | None,
        where: dict[str, Any] | None = None,
    ):
        self.cols, self.measure, self.time, self.grain = cols, measure, time, grain
        self.where = where or {}

    @property
    def name(self) -> str:
        """ "Revenue", or "Revenue for West" when the series is one member's."""
        title = self.cols.title(self.measure)
        members = ", ".join(str(v) for v in self.where.values())
        return f"{title} for {members}" if members else title

    def fmt(self, value: float) -> str:
        return self.cols.fmt(self.measure, value)

    def when(self, stamp: Any) -> str:
        return period(stamp, self.grain or "day")

    def insight(self, kind: str, text: str, score: float, **extra: Any) -> Insight:
        members = (self.time, *self.where)
        where = {**self.where, **extra.pop("where", {})}
        return Insight(kind, text, score, self.measure, members, where, **extra)


def series_insights(
    values: pd.Series, subject: Subject, *, horizon: int | None = None, level: float = 0.95
) -> list[Insight]:
    """Everything a series says: trend, seasons, anomalies, and (for the total) a forecast."""
    if values.notna().sum() < ts.MIN_POINTS:
        return []
    dec = ts.Decomposition(values, subject.grain)
    found = [*_trend(dec, subject), *_seasons(dec, subject), *anomaly_insights(dec, subject)]
    return found + _forecast(dec, subject, horizon, level)


def anomaly_insights(dec: ts.Decomposition, subject: Subject, weight: float = 1.0) -> list[Insight]:
    """One Insight per flagged point, scored by how far beyond the threshold it lies."""
    if not dec.flagged.any():
        return []
    out = []
    for row in ts.anomalies(dec).itertuples():
        direction = "above" if row.value > row.expected else "below"
        gap = (
            f"{abs(row.change) * 100:.0f}%"
            if dec.log
            else subject.fmt(abs(row.value - row.expected))
        )
        text = (
            f"{subject.name} on {subject.when(row.date)} was {subject.fmt(row.value)}, "
            f"{gap} {direction} the expected {subject.fmt(row.expected)} (robust z {row.z:+.1f})."
        )
        numbers = {
            "value": float(row.value),
            "expected": float(row.expected),
            "change": float(row.change),
            "severity": float(abs(row.z)),
            "z": float(row.z),
        }
        # 0.3 at the threshold; up to 0.35 more for how far beyond it (twice the threshold),
        # and 0.35 for how big the gap is (a 97% drop matters, whatever its z).
        beyond = min(1.0, abs(row.z) / dec.threshold - 1)
        size = min(1.0, abs(row.change)) if dec.log else beyond
        score = weight * (0.3 + 0.35 * beyond + 0.35 * size)
        out.append(
            subject.insight("anomaly", text, score, where={subject.time: row.date}, numbers=numbers)
        )
    return out


def _trend(dec: ts.Decomposition, subject: Subject) -> list[Insight]:
    found = ts.trend(dec)
    if found is None:
        return []
    numbers = {
        "change": found.change,
        "slope": found.slope,
        "start": found.start,
        "end": found.end,
        "p_value": found.p_value,
    }
    span = f"{subject.when(dec.index[0])} to {subject.when(dec.index[-1])}"
    # A share of a level near or below zero means nothing: say it in the measure's unit.
    relative = min(found.start, found.end) > 0
    difference = found.end - found.start
    if found.p_value >= SIGNIFICANT:
        change = percent(found.change) if relative else signed(subject, difference)
        text = (
            f"{subject.name} shows no significant trend from {span} "
            f"({change}, p = {found.p_value:.2f})."
        )
        return [subject.insight("trend", text, 0.05, numbers=numbers)]
    verb = "grew" if difference > 0 else "fell"
    size = f"{abs(found.change) * 100:.1f}%" if relative else f"by {subject.fmt(abs(difference))}"
    p_text = "p < 0.001" if found.p_value < 0.001 else f"p = {found.p_value:.3f}"
    text = (
        f"{subject.name} {verb} {size} from {span}, trend line from "
        f"{subject.fmt(found.start)} to {subject.fmt(found.end)} {each(subject.grain)} ({p_text})."
    )
    score = 0.2 + 0.7 * min(1.0, abs(found.change) / 0.5) if relative else 0.4
    return [subject.insight("trend", text, score, numbers=numbers)]


def signed(subject: Subject, value: float) -> str:
    return ("+" if value >= 0 else "-") + subject.fmt(abs(value))


def _seasons(dec: ts.Decomposition, subject: Subject) -> list[Insight]:
    out = []
    for fit in ts.seasonality(dec):
        if fit.p_value >= SIGNIFICANT or fit.strength < MIN_STRENGTH:
            continue
        effects = fit.effects.sort_values(ascending=False)
        high = [key for key, value in effects.items() if value > 0][:2]
        low = effects.index[-1]

        def effect(key: str, fit: ts.SeasonFit = fit) -> str:
            value = float(fit.effects[key])
            return f"{key} {percent(value)}" if dec.log else f"{key} {subject.fmt(value)}"

        text = (
            f"{fit.name.capitalize()} season in {subject.name} (strength {fit.strength:.2f}): "
            f"{' and '.join(effect(k) for k in high)} against the average, {effect(low)}."
        )
        numbers = {
            "season": fit.name,
            "strength": fit.strength,
            "p_value": fit.p_value,
            "peak": high[0] if high else None,
            "low": low,
            "effects": fit.effects.to_dict(),
        }
        score = 0.25 + 0.5 * fit.strength
        out.append(subject.insight("seasonality", text, score, numbers=numbers))
    return out


def _forecast(
    dec: ts.Decomposition, subject: Subject, horizon: int | None, level: float
) -> list[Insight]:
    frame = ts.forecast(dec, horizon, level)
    if frame.empty:
        return []
    span = f"{subject.when(frame['date'].iloc[0])} to {subject.when(frame['date'].iloc[-1])}"
    text = (
        f"{subject.name} is forecast at {subject.fmt(frame['forecast'].mean())} "
        f"{each(subject.grain)} on average over the next {steps(len(frame), subject.grain)} "
        f"({span}; {level * 100:.0f}% interval {subject.fmt(frame['lower'].mean())} to "
        f"{subject.fmt(frame['upper'].mean())})."
    )
    numbers = {
        "horizon": len(frame),
        "mean": float(frame["forecast"].mean()),
        "total": float(frame["forecast"].sum()),
        "level": level,
    }
    return [subject.insight("forecast", text, 0.3, numbers=numbers, data=frame)]
