"""Which chart a result wants, from its shape and column types, with a one-line why.

Rules are deliberately few and predictable: a user who disagrees overrides ``kind``,
``x`` or ``y``, and the reason line says what was seen so the choice can be checked.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import date
from decimal import Decimal
from typing import Any

import pandas as pd

KINDS = ("line", "area", "bar", "hbar", "scatter", "pie", "kpi", "heatmap", "table")
MAX_BAR_CATEGORIES = 12
MAX_LABEL_LENGTH = 15
MAX_PIE_PARTS = 7
MAX_SERIES = 12
NOT_ADDITIVE = {"avg", "average", "mean", "median", "ratio", "rate", "pct", "percent", "share"}
SHARE_WORDS = {"share", "pct", "percent", "percentage", "ratio"}
COUNTRY_WORDS = {"country", "countries", "nation", "iso2", "iso3"}
ISO_CODES = (
    "US USA GB GBR DE DEU FR FRA IT ITA ES ESP NL NLD BE BEL CH CHE AT AUT SE SWE NO NOR DK"
    " DNK FI FIN PL POL PT PRT IE IRL CA CAN MX MEX BR BRA AR ARG CN CHN JP JPN IN IND AU AUS"
    " NZ NZL ZA ZAF RU RUS KR KOR"
)
COUNTRY_NAMES = (
    "united states|united kingdom|germany|france|italy|spain|netherlands|belgium|switzerland"
    "|austria|sweden|norway|denmark|finland|poland|portugal|ireland|canada|mexico|brazil"
    "|argentina|china|japan|india|australia|new zealand|south africa|russia"
)
COUNTRIES = {*ISO_CODES.split(), *COUNTRY_NAMES.split("|")}


@dataclass
class ChartSpec:
    """What to draw: ``x`` the axis column, ``y`` the measures, ``series`` a splitting category.

    For a heatmap ``series`` is the second (vertical) category.
    """

    kind: str
    x: str | None
    y: list[str] = field(default_factory=list)
    series: str | None = None
    reason: str = ""


@dataclass
class Roles:
    """Columns by what they can be on a chart."""

    times: list[str] = field(default_factory=list)
    measures: list[str] = field(default_factory=list)
    categories: list[str] = field(default_factory=list)


def words(name: str) -> set[str]:
    return set(re.split(r"[^a-z0-9]+", name.lower())) - {""}


def is_time(column: pd.Series) -> bool:
    """datetime64 columns, and object columns of ``datetime.date`` (DuckDB's DATE)."""
    if pd.api.types.is_datetime64_any_dtype(column):
        return True
    if column.dtype == object:
        sample = column.dropna().head(20)
        return len(sample) > 0 and all(isinstance(v, date) for v in sample)
    return False


def is_decimal(column: pd.Series) -> bool:
    """Object columns of ``Decimal`` (DuckDB's DECIMAL sums) are numbers too."""
    sample = column.dropna().head(20) if column.dtype == object else ()
    return len(sample) > 0 and all(isinstance(v, Decimal) for v in sample)


def is_id(name: str, column: pd.Series) -> bool:
    last = name.lower().rsplit(".", 1)[-1]
    return pd.api.types.is_integer_dtype(column) and (last == "id" or last.endswith("_id"))


def classify(frame: pd.DataFrame, annotation: dict[str, Any] | None = None) -> Roles:
    """Times, measures and categories: from the annotation where it speaks, else dtypes."""
    roles = Roles()
    annotation = annotation or {}
    measures = annotation.get("measures") or {}
    times = annotation.get("timeDimensions") or {}
    dimensions = annotation.get("dimensions") or {}
    for name in frame.columns:
        column = frame[name]
        if name in measures:
            roles.measures.append(name)
        elif name in times or (dimensions.get(name) or {}).get("type") == "time":
            roles.times.append(name)
        elif name in dimensions:
            roles.categories.append(name)
        elif is_time(column):
            roles.times.append(name)
        elif is_decimal(column) or (
            pd.api.types.is_numeric_dtype(column)
            and not pd.api.types.is_bool_dtype(column)
            and not is_id(name, column)
        ):
            roles.measures.append(name)
        else:
            roles.categories.append(name)
    return roles


def fmt(annotation: dict[str, Any] | None, name: str) -> str | None:
    for group in ("measures", "dimensions", "timeDimensions"):
        member = ((annotation or {}).get(group) or {}).get(name)
        if member:
            return member.get("format")
    return None


def additive(name: str, annotation: dict[str, Any] | None = None) -> bool:
    """Whether summing this measure's values means something (not an average or a ratio)."""
    tokens = words(name)
    return not (
        tokens & NOT_ADDITIVE
        or any(t.startswith("avg") for t in tokens)
        or fmt(annotation, name) == "percent"
    )


def share_like(name: str, annotation: dict[str, Any] | None = None) -> bool:
    return bool(words(name) & SHARE_WORDS) or fmt(annotation, name) == "percent"


def is_country(name: str, column: pd.Series) -> bool:
    if words(name) & COUNTRY_WORDS or "country" in name.lower():
        return True
    values = column.dropna().astype(str)
    if values.empty:
        return False
    known = values.map(lambda v: v in COUNTRIES or v.lower() in COUNTRIES)
    return bool(known.mean() >= 0.8)


def plural(count: int, word: str) -> str:
    return f"{count} {word}" if count == 1 else f"{count} {word}s"


def bar_kind(frame: pd.DataFrame, category: str) -> tuple[str, str]:
    labels = frame[category].astype(str)
    longest = int(labels.str.len().max()) if len(labels) else 0
    if len(labels) > MAX_BAR_CATEGORIES:
        return "hbar", f"{len(labels)} categories, horizontal and sorted"
    if longest > MAX_LABEL_LENGTH:
        return "hbar", f"labels up to {longest} characters, horizontal and sorted"
    return "bar", ""


def auto(frame: pd.DataFrame, roles: Roles, annotation: dict[str, Any] | None) -> ChartSpec:
    """The chart the shape asks for, when nothing is overridden."""
    times, measures, cats = roles.times, roles.measures, roles.categories
    if frame.empty or not len(frame.columns):
        return ChartSpec("table", None, [], reason="table: no rows to chart")
    if len(frame) == 1 and 1 <= len(measures) <= 2:
        extra = " and a comparison value" if len(measures) == 2 else ""
        return ChartSpec("kpi", None, measures, reason=f"kpi: a single number{extra}")
    if times and measures:
        few = (c for c in cats if not is_id(c, frame[c]) and frame[c].nunique() <= MAX_SERIES)
        series = next(few, None)
        shares = (series or len(measures) > 1) and all(share_like(m, annotation) for m in measures)
        kind = "area" if shares else "line"
        split = f", one line per {series}" if series else ""
        stacked = " (stacked shares)" if shares else ""
        reason = (
            f"{kind}: one time column ({times[0]}) and {plural(len(measures), 'measure')}"
            f"{split}{stacked}"
        )
        return ChartSpec(kind, times[0], measures, series, reason)
    if len(cats) == 2 and len(measures) == 1:
        reason = f"heatmap: two categories ({cats[0]} × {cats[1]}) and one measure"
        return ChartSpec("heatmap", cats[0], measures, cats[1], reason)
    if len(cats) == 1 and measures:
        cat, values = cats[0], frame[measures[0]]
        if is_country(cat, frame[cat]):
            kind, why = bar_kind(frame, cat)
            reason = f"{kind}: {cat} looks like countries but no map data bundled, so a bar"
            return ChartSpec(kind, cat, measures, reason=reason)
        if (
            len(measures) == 1
            and 2 <= len(frame) <= MAX_PIE_PARTS
            and not frame[cat].duplicated().any()
            and bool((values.dropna() >= 0).all())
            and values.sum() > 0
            and additive(measures[0], annotation)
        ):
            reason = f"pie: {len(frame)} parts of a whole ({measures[0]} by {cat})"
            return ChartSpec("pie", cat, measures, reason=reason)
        kind, why = bar_kind(frame, cat)
        reason = f"{kind}: one category ({cat}) and {plural(len(measures), 'measure')}"
        return ChartSpec(kind, cat, measures, reason=f"{reason}; {why}" if why else reason)
    if not cats and len(measures) == 2:
        reason = f"scatter: two measures ({measures[0]} vs {measures[1]})"
        return ChartSpec("scatter", measures[0], [measures[1]], reason=reason)
    return ChartSpec(
        "table",
        None,
        [],
        reason=f"table: no chart fits {plural(len(times), 'time column')}, "
        f"{plural(len(cats), 'category')} and {plural(len(measures), 'measure')}",
    )


def recommend(
    frame: pd.DataFrame,
    *,
    kind: str | None = None,
    x: str | None = None,
    y: str | list[str] | None = None,
    annotation: dict[str, Any] | None = None,
) -> ChartSpec:
    """The chart for ``frame``; ``kind``, ``x`` and ``y`` override what the shape suggests."""
    if kind is not None and kind not in KINDS:
        raise ValueError(f"unknown chart kind {kind!r}; choose one of {', '.join(KINDS)}")
    ys = [y] if isinstance(y, str) else list(y) if y is not None else None
    available = ", ".join(map(str, frame.columns))
    for name in [*([x] if x is not None else []), *(ys or [])]:
        if name not in frame.columns:
            raise ValueError(f"no column {name!r}; available columns: {available}")
    asked = ", ".join(f"{k}={v!r}" for k, v in (("kind", kind), ("x", x), ("y", y)) if v)
    roles = classify(frame, annotation)
    suggested = auto(frame, roles, annotation)
    if kind is None and x is None and ys is None:
        return suggested
    kind = kind or suggested.kind
    same = kind == suggested.kind
    if x is None:
        if same and (ys is None or suggested.x not in ys):
            x = suggested.x
        elif kind in ("line", "area"):
            x = next(iter(roles.times + roles.categories), None)
        elif kind in ("bar", "hbar", "pie", "heatmap"):
            x = next(iter(roles.categories + roles.times), None)
        elif kind == "scatter":
            x = next((m for m in roles.measures if m not in (ys or [])), None)
    if ys is None:
        ys = suggested.y if same and x == suggested.x else [m for m in roles.measures if m != x]
        if kind in ("scatter", "pie", "heatmap"):
            ys = ys[:1]
        elif kind == "kpi":
            ys = ys[:2]
    series = suggested.series if same and x == suggested.x else None
    if kind == "heatmap":
        series = next((c for c in roles.categories if c != x), None)
        if series is None:
            raise ValueError(f"a heatmap needs two category columns; available: {available}")
    if series in ys or series == x:
        series = None
    if kind != "table" and not ys:
        raise ValueError(f"a {kind} chart needs a numeric column; available columns: {available}")
    if kind not in ("kpi", "table") and x is None:
        raise ValueError(f"a {kind} chart needs an x column; available columns: {available}")
    shown = f"x={x}, y={', '.join(ys)}" + (f", series={series}" if series else "")
    return ChartSpec(kind, x, ys, series, f"{kind}: as asked ({asked}); {shown}")
