"""The key numbers of a result in a sentence or two, computed, never guessed.

Used for every offline answer, and to check a model's own text: the agent reports
any number in the model's answer that the data does not contain.
"""

from __future__ import annotations

import re
from collections.abc import Iterable
from typing import TYPE_CHECKING, Any

import pandas as pd

from aiser_jupyter.analysis.columns import Columns, format_value, granularity, period

__all__ = [
    "Columns",
    "format_value",
    "granularity",
    "narrate",
    "narrate_derivation",
    "numbers_in",
    "period",
    "ungrounded",
]

if TYPE_CHECKING:
    from aiser_jupyter.agent.derive import Derivation

NUMBER = re.compile(
    r"(?<![\w.])-?\$?\d[\d,]*(?:\.\d+)?(?:\s?(?:[kKMB]|thousand|million|billion)\b)?%?"
)
SCALES = {"k": 1e3, "thousand": 1e3, "m": 1e6, "million": 1e6, "b": 1e9, "billion": 1e9}


def narrate(
    frame: pd.DataFrame, annotation: dict[str, Any] | None = None, model: Any = None
) -> str:
    """One or two sentences with the numbers that matter in `frame`."""
    if frame.empty:
        return "No rows matched."
    cols = Columns(frame, annotation, model)
    if not cols.measures:
        return f"{len(frame):,} rows."
    measure = cols.measures[0]
    if len(frame) == 1:
        parts = [f"{cols.title(m)}: {cols.fmt(m, frame[m].iloc[0])}" for m in cols.measures]
        labels = [f"{cols.title(c)} {frame[c].iloc[0]}" for c in cols.categories + cols.times]
        return ("; ".join(parts) + (f" ({', '.join(labels)})" if labels else "")) + "."
    if cols.times and not cols.categories:
        return _trend(frame, cols, cols.times[0], measure)
    if cols.categories:
        return _ranking(frame, cols, cols.categories[0], measure)
    total = cols.fmt(measure, frame[measure].sum())
    return f"{len(frame):,} rows; {cols.title(measure)} totals {total}."


def _trend(frame: pd.DataFrame, cols: Columns, time: str, measure: str) -> str:
    ordered = frame.sort_values(time)
    first, last = ordered.iloc[0], ordered.iloc[-1]
    top = ordered.loc[ordered[measure].idxmax()]
    start, end = cols.fmt(measure, first[measure]), cols.fmt(measure, last[measure])
    grain = granularity(time)
    text = (
        f"{cols.title(measure)} went from {start} ({period(first[time], grain)}) "
        f"to {end} ({period(last[time], grain)})"
    )
    if first[measure]:
        change = (last[measure] - first[measure]) / abs(first[measure]) * 100
        text += f", {change:+.1f}%"
    return text + f"; highest {cols.fmt(measure, top[measure])} ({period(top[time], grain)})."


def _ranking(frame: pd.DataFrame, cols: Columns, category: str, measure: str) -> str:
    if cols.times or frame[category].duplicated().any():
        grouped = frame.groupby(category, dropna=False)[measure]
        totals = grouped.sum() if cols.additive(measure) else grouped.mean()
    else:
        totals = frame.set_index(category)[measure]
    totals = totals.sort_values(ascending=False)
    best, worst = totals.index[0], totals.index[-1]
    text = f"{best} leads on {cols.title(measure)} with {cols.fmt(measure, totals.iloc[0])}"
    total = totals.sum()
    if cols.additive(measure) and total:
        text += f" ({totals.iloc[0] / total * 100:.1f}% of {cols.fmt(measure, total)})"
    if len(totals) > 1:
        text += f"; {worst} is lowest with {cols.fmt(measure, totals.iloc[-1])}"
    return text + f" ({cols.title(category)}: {len(totals)} values)."


def narrate_derivation(
    frame: pd.DataFrame, annotation: dict[str, Any] | None, derivation: Derivation
) -> str:
    """The derived number (a share, a ratio, a change) in a sentence, with what it is made of."""
    if frame.empty:
        return "No rows matched."
    cols = Columns(frame, annotation)
    measure, title = derivation.measure, cols.title(derivation.measure)
    labels = [c for c in cols.categories if c != derivation.column and c not in ("change_pct",)]
    if derivation.kind == "change":
        return _change(frame, cols, derivation)
    column = derivation.column
    shown = (
        (lambda v: f"{float(v):.1%}")
        if column == "share"
        else (lambda v: format_value(v, cols.info.get(measure, {}).get("format")))
    )
    if derivation.kind == "ratio":
        title = f"{title} per {cols.title(derivation.denominator or '')}"
    if len(frame) == 1:
        row = frame.iloc[0]
        where = ", ".join(str(row[c]) for c in labels + cols.times)
        if column == "share":
            whole = float(row[measure]) / float(row["share"]) if row["share"] else None
            return (
                f"{where or 'This'} accounts for {shown(row['share'])} of {title} "
                f"({cols.fmt(measure, row[measure])} of {cols.fmt(measure, whole)})."
            )
        parts = f"{cols.fmt(measure, row[measure])} ÷ {format_value(row[derivation.denominator])}"
        return f"{title}: {shown(row[column])}" + (f" ({where})" if where else "") + f" = {parts}."
    ordered = frame.dropna(subset=[column]).sort_values(column, ascending=False)
    if ordered.empty or not labels + cols.times:
        return f"{len(frame):,} rows."
    label = (labels + cols.times)[0]
    first, last = ordered.iloc[0], ordered.iloc[-1]
    name = "share of " + title if column == "share" else title
    return (
        f"{cols.title(label)} {first[label]} has the highest {name} ({shown(first[column])}); "
        f"{last[label]} the lowest ({shown(last[column])})."
    )


def _change(frame: pd.DataFrame, cols: Columns, derivation: Derivation) -> str:
    time, measure = derivation.time or "", derivation.measure
    grain = granularity(time)
    latest = frame[time].max()
    rows = frame[frame[time] == latest].dropna(subset=["change"])
    if rows.empty:
        return f"{cols.title(measure)}: no earlier period to compare {period(latest, grain)} with."
    earlier = frame[frame[time] < latest][time].max()
    if derivation.partition:
        label = derivation.partition[0]
        up, down = rows.loc[rows["change"].idxmax()], rows.loc[rows["change"].idxmin()]
        return (
            f"{cols.title(measure)}, {period(earlier, grain)} to {period(latest, grain)}: "
            f"the biggest rise is {up[label]} ({_signed(cols, measure, up)}), the biggest fall "
            f"{down[label]} ({_signed(cols, measure, down)})."
        )
    row = rows.iloc[0]
    before = row[measure] - row["change"]
    way = "up" if row["change"] > 0 else "down" if row["change"] < 0 else "unchanged"
    pct = (
        ""
        if row["change_pct"] is None or pd.isna(row["change_pct"])
        else f" {abs(row['change_pct']):.1%}"
    )
    return (
        f"{cols.title(measure)} was {cols.fmt(measure, row[measure])} in {period(latest, grain)}, "
        f"{way}{pct if way != 'unchanged' else ''} from {cols.fmt(measure, before)} in "
        f"{period(earlier, grain)}."
    )


def _signed(cols: Columns, measure: str, row: pd.Series) -> str:
    change = cols.fmt(measure, abs(row["change"]))
    pct = "" if pd.isna(row["change_pct"]) else f", {row['change_pct']:+.1%}"
    return f"{'+' if row['change'] >= 0 else '-'}{change}{pct}"


def numbers_in(text: str) -> list[str]:
    """The numbers a text states ("$1,234.50", "12%", "2024")."""
    return NUMBER.findall(text)


def ungrounded(text: str, evidence: Iterable[str]) -> list[str]:
    """Numbers in `text` that appear in none of the `evidence` texts (tool results), allowing
    for rounding: a model that says "$5.8M" for 5,803,745.38 is fine; one that says 6.1 is not."""
    known: list[float] = []
    for item in evidence:
        for raw in numbers_in(item):
            known.append(_value(raw))
    missing = []
    for raw in numbers_in(text):
        if raw.endswith("%"):
            continue  # shares and changes are worked out from the data, not found in it
        value = _value(raw)
        if abs(value) < 10 or any(_close(value, k) for k in known):
            continue  # small counts ("top 3") and numbers from the data
        missing.append(raw)
    return missing


def _value(raw: str) -> float:
    number, _, scale = raw.replace("$", "").replace(",", "").rstrip("%").partition(" ")
    match = re.fullmatch(r"(-?[\d.]+)([a-zA-Z]*)", number + scale)
    assert match is not None
    return float(match.group(1)) * SCALES.get(match.group(2).lower(), 1)


def _close(said: float, known: float) -> bool:
    if said == known:
        return True
    scale = max(abs(said), abs(known))
    return scale > 0 and abs(said - known) / scale < 0.01
