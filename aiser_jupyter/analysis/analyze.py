"""From a result to ranked insights: which columns are measures, time and dimensions, which
analyses fit them, and which findings matter most."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import pandas as pd

from aiser_jupyter.analysis import series as ts
from aiser_jupyter.analysis.breakdown import Breakdown, breakdown_insights
from aiser_jupyter.analysis.columns import Columns, granularity
from aiser_jupyter.analysis.insight import Insight, Insights, InsightsError, ranked
from aiser_jupyter.analysis.timeline import Subject, anomaly_insights, series_insights

MAX_MEMBERS = 50
"""Members whose own series are analysed: the largest, so a dimension of thousands of
customers stays fast (the breakdown insights still see them all)."""
MEMBER_WEIGHT = 0.8
"""One member's anomaly matters a little less than the same in the total."""
SKIPPED = {"compareDateRange"}


@dataclass
class Scope:
    """One measure of a frame, with its time column and dimensions, and how it adds up."""

    frame: pd.DataFrame
    cols: Columns
    measure: str
    time: str | None
    grain: str | None
    categories: list[str]
    additive: bool
    """Summed over the other columns (a sum or count), else averaged."""
    zero: bool
    """A step with no row is a zero (the model says it is a sum or a count), not unknown."""

    @property
    def fill(self) -> float | None:
        return 0.0 if self.zero else None


def analyze(
    frame: pd.DataFrame,
    annotation: dict[str, Any] | None = None,
    model: Any = None,
    *,
    measures: str | Sequence[str] | None = None,
    by: str | Sequence[str] | None = None,
    compare: Any = None,
    horizon: int | None = None,
    additive: bool | None = None,
    top: int = 3,
    limit: int | None = 20,
) -> Insights:
    """Insights on `frame`: for each measure, its series over time (trend, seasons, anomalies,
    forecast) when there is a time column, and per dimension in `by` (default: every one)
    concentration, outliers, contribution to the change between two periods (`compare`,
    default the latest ones) and each member's anomalies. A measure is summed across rows
    when `additive` (default: what the model says, or yes for a plain frame), else averaged.
    Ranked, the first `limit`."""
    if frame.empty:
        raise InsightsError("No rows to draw insights from")
    frame = _dates_parsed(pd.DataFrame(frame))
    cols = Columns(frame, annotation, model)
    chosen = _pick(frame, measures, cols.measures, "measure")
    categories = _pick(frame, by, [c for c in cols.categories if c not in SKIPPED], "dimension")
    if not chosen:
        raise InsightsError(f"No numeric measure among the columns {list(frame.columns)}")
    time = cols.times[0] if cols.times else None
    grain = None
    if time is not None:
        frame[time] = pd.to_datetime(frame[time])
        if frame[time].dt.tz is not None:  # calendar keys read the local wall clock
            frame[time] = frame[time].dt.tz_localize(None)
        grain = granularity(time) or ts.infer_grain(
            pd.DatetimeIndex(frame[time].dropna().unique()).sort_values()
        )
    found: list[Insight] = []
    for measure in chosen:
        known = model is not None and cols.additive(measure)
        adds = additive if additive is not None else known or model is None
        scope = Scope(frame, cols, measure, time, grain, categories, adds, known)
        if time is not None:
            found += _over_time(scope, horizon)
        for category in categories:
            part = Breakdown(frame, cols, measure, category, adds, time, grain, top)
            found += breakdown_insights(part, compare)
    insights = ranked(found)
    return Insights(insights[:limit]) if limit is not None else insights


def _over_time(scope: Scope, horizon: int | None) -> list[Insight]:
    """The total's series insights, its anomalies explained by the members of the first
    dimension, and those members' own anomalies."""
    assert scope.time is not None
    total = _series(scope)
    subject = Subject(scope.cols, scope.measure, scope.time, scope.grain)
    found = series_insights(total, subject, horizon=horizon)
    if not scope.categories:
        return found
    members = member_series(scope)
    if scope.additive:
        explain(found, members, scope.time)
    known = {pd.Timestamp(i.where[scope.time]) for i in found if i.kind == "anomaly"}
    return found + member_anomalies(scope, members, known)


def _dates_parsed(frame: pd.DataFrame) -> pd.DataFrame:
    """Text columns that hold ISO dates ("2024-03-01", as CSV files and JSON give them) as
    datetimes, so that they are read as time and not as a dimension of 365 values."""
    for column in frame.columns:
        if pd.api.types.is_string_dtype(frame[column]) or frame[column].dtype == object:
            try:
                frame[column] = pd.to_datetime(frame[column], format="ISO8601")
            except (ValueError, TypeError):
                continue
    return frame


def _pick(
    frame: pd.DataFrame, asked: str | Sequence[str] | None, default: list[str], what: str
) -> list[str]:
    if asked is None:
        return default
    names = [asked] if isinstance(asked, str) else list(asked)
    missing = [n for n in names if n not in frame.columns]
    if missing:
        raise InsightsError(
            f"No {what} column {', '.join(map(repr, missing))} (columns: {list(frame.columns)})"
        )
    return names


def _series(scope: Scope) -> pd.Series:
    """The measure per time step (summed or averaged over the other columns), every step."""
    grouped = scope.frame.groupby(scope.time)[scope.measure]
    values = (grouped.sum(min_count=1) if scope.additive else grouped.mean()).sort_index()
    values.index = pd.DatetimeIndex(values.index)
    return ts.regular(values, scope.grain, scope.fill)


def member_series(scope: Scope) -> dict[Any, ts.Decomposition]:
    """Each member's own decomposition, with the anomaly threshold raised for the number of
    members tested, so that fifty series raise no more false alarms than one."""
    wide = scope.frame.pivot_table(
        index=scope.time,
        columns=scope.categories[0],
        values=scope.measure,
        aggfunc="sum" if scope.additive else "mean",
    ).sort_index()
    if wide.shape[1] < 2:
        return {}
    wide = wide[wide.abs().sum().nlargest(MAX_MEMBERS).index]
    wide.index = pd.DatetimeIndex(wide.index)
    threshold = ts.anomaly_threshold(int(wide.notna().to_numpy().sum()))
    out = {}
    for member in wide.columns:
        values = ts.regular(wide[member].dropna(), scope.grain, scope.fill)
        if values.notna().sum() >= ts.MIN_POINTS:
            out[member] = ts.Decomposition(values, scope.grain, threshold)
    return out


def explain(found: list[Insight], members: dict[Any, ts.Decomposition], time: str) -> None:
    """Say which members account for each anomaly of the total: their share of its gap."""
    for insight in found:
        if insight.kind != "anomaly" or time not in insight.where:
            continue
        when = pd.Timestamp(insight.where[time])
        gaps = {}
        for member, dec in members.items():
            if when in dec.index:
                at = dec.index.get_loc(when)
                expected = float(dec.value(dec.fitted[at] + dec.local[at]))
                gaps[member] = float(dec.y[at]) - expected
        gap = insight.numbers["value"] - insight.numbers["expected"]
        shares = pd.Series(gaps, dtype=float) / gap if gap else pd.Series(dtype=float)
        shares = shares[shares > 0].sort_values(ascending=False)
        if shares.empty:
            continue
        insight.numbers["explained_by"] = shares.head(3).to_dict()
        named = ", ".join(f"{k} {v * 100:.0f}%" for k, v in shares.head(2).items())
        insight.text = insight.text[:-1] + f"; share of the gap: {named}."


def member_anomalies(
    scope: Scope, members: dict[Any, ts.Decomposition], known: set[pd.Timestamp]
) -> list[Insight]:
    """Unusual points of single members, on dates the total is not already unusual (those
    are explained in the total's insight)."""
    assert scope.time is not None
    found = []
    for member, dec in members.items():
        where = {scope.categories[0]: member}
        subject = Subject(scope.cols, scope.measure, scope.time, scope.grain, where)
        found += [
            i
            for i in anomaly_insights(dec, subject, MEMBER_WEIGHT)
            if pd.Timestamp(i.where[scope.time]) not in known
        ]
    return found
