"""One measure over time, taken apart: trend, seasons, what is unusual, what comes next.

A regression does the decomposition -- log(value) (or value, when it can be zero or
negative) on a line in time plus one dummy per weekday/month/hour for each season the
data covers in enough cycles -- fitted twice, the second time with the first fit's
outliers weighed down; a centred rolling median of its errors then follows the local
level (steps, curves) that a line cannot. Anomalies are what remains far off: scored
on a square-root scale, found with median/MAD, measured against the spread of the rest
on each side, beyond a Bonferroni threshold for the number of points. So a Saturday
peak, a Black-Friday month or a year of growth are expected, not unusual. All of it is
numpy/pandas with scipy.special's distribution functions for p-values (scipy.stats
takes five times as long to import): milliseconds a series, where
statsmodels' STL/MSTL would add a heavy import and still need the scoring on top.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import cached_property, lru_cache

import numpy as np
import pandas as pd

MAD_TO_SIGMA = 1.4826
"""MAD × this estimates a normal distribution's standard deviation."""
FALSE_ALARMS = 0.01
"""Anomaly threshold: the expected false alarms over a whole series of Gaussian noise."""
MIN_THRESHOLD = 3.5
"""Iglewicz and Hoaglin's modified z-score cut-off: never flag below it."""
MIN_POINTS = 8

FREQUENCIES = {"minute": "min", "hour": "h", "day": "D", "week": "7D"}
PERIOD_STARTS = {"month": ("MS", "ME"), "quarter": ("QS", "QE"), "year": ("YS", "YE")}
LOCAL_WINDOW = {"minute": 61, "hour": 49, "day": 21, "week": 9, "month": 5, "quarter": 5}
HORIZON = {"minute": 60, "hour": 48, "day": 14, "week": 8, "month": 6, "quarter": 4, "year": 2}
STEP_DAYS = {"minute": 1 / 1440, "hour": 1 / 24, "day": 1, "week": 7, "month": 30.44}
STEP_DAYS |= {"quarter": 91.31, "year": 365.25}

DAYS = ("Monday", "Tuesday", "Wednesday", "Thursday", "Friday", "Saturday", "Sunday")
MONTHS = ("Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec")


@dataclass(frozen=True)
class Season:
    """A repeating pattern: which calendar key it follows, in which cycle, and its labels."""

    name: str
    key: Callable[[pd.DatetimeIndex], np.ndarray]
    cycle: Callable[[pd.DatetimeIndex], np.ndarray]
    label: Callable[[int], str]
    min_cycles: int


WEEKLY = Season(
    "weekly",
    lambda ix: np.asarray(ix.day_of_week),
    lambda ix: np.asarray((ix - pd.Timestamp("1970-01-05")).days // 7),
    lambda k: DAYS[k],
    3,
)
YEARLY_MONTHS = Season(
    "yearly",
    lambda ix: np.asarray(ix.month),
    lambda ix: np.asarray(ix.year),
    lambda k: MONTHS[k - 1],
    2,
)
YEARLY_QUARTERS = Season(
    "yearly",
    lambda ix: np.asarray(ix.quarter),
    lambda ix: np.asarray(ix.year),
    lambda k: f"Q{k}",
    2,
)
DAILY = Season(
    "daily",
    lambda ix: np.asarray(ix.hour),
    lambda ix: np.asarray((ix - pd.Timestamp("1970-01-01")).days),
    lambda k: f"{k:02d}:00",
    3,
)
SEASONS = {
    "hour": (DAILY, WEEKLY),
    "day": (WEEKLY, YEARLY_MONTHS),
    "week": (YEARLY_MONTHS,),
    "month": (YEARLY_MONTHS,),
    "quarter": (YEARLY_QUARTERS,),
}


def infer_grain(index: pd.DatetimeIndex) -> str | None:
    """The step of a time index (day, week, month …) from its typical gap; None if irregular."""
    if len(index) < 3:
        return None
    gap = float(np.median(np.diff(index.to_numpy()) / np.timedelta64(1, "s"))) / 86_400
    for grain, low, high in (
        ("minute", 0.9 / 1440, 1.1 / 1440),
        ("hour", 0.9 / 24, 1.1 / 24),
        ("day", 0.9, 1.1),
        ("week", 6.5, 7.5),
        ("month", 27.5, 31.5),
        ("quarter", 88.5, 92.5),
        ("year", 364.5, 366.5),
    ):
        if low <= gap <= high:
            return grain
    return None


def frequency(index: pd.DatetimeIndex, grain: str | None) -> str | None:
    """A pandas frequency that generates `index`'s steps, if it has a regular one."""
    if grain in FREQUENCIES:
        return FREQUENCIES[grain]
    if grain in PERIOD_STARTS:
        start, end = PERIOD_STARTS[grain]
        if (index == index.normalize()).all():
            for freq in (start, end):
                if index.isin(pd.date_range(index[0], index[-1], freq=freq)).all():
                    return freq
    return None


def regular(series: pd.Series, grain: str | None, fill: float | None) -> pd.Series:
    """`series` on every step of its range: missing steps get `fill` (0 for a sum: no orders,
    no revenue) or stay NaN."""
    freq = frequency(series.index, grain)
    if freq is None:
        return series
    full = pd.date_range(series.index[0], series.index[-1], freq=freq)
    if not series.index.isin(full).all():
        return series
    out = series.reindex(full)
    return out if fill is None else out.fillna(fill)


def robust_scale(values: np.ndarray) -> float:
    """Median absolute deviation as a standard deviation (nan-safe)."""
    values = values[np.isfinite(values)]
    if values.size == 0:
        return float("nan")
    return MAD_TO_SIGMA * float(np.median(np.abs(values - np.median(values))))


def years(index: pd.DatetimeIndex, start: pd.Timestamp) -> np.ndarray:
    """Time since `start` in years: the trend's slope reads as growth a year."""
    seconds = (index.to_numpy() - np.datetime64(start)) / np.timedelta64(1, "s")
    return seconds / (365.25 * 86_400)


def least_squares(
    x: np.ndarray, z: np.ndarray, weight: np.ndarray
) -> tuple[np.ndarray, np.ndarray]:
    """Weighted least squares through the k x k normal equations, with einsum rather than
    BLAS: a tall QR or gemm starts BLAS threads that, on a busy machine, cost 100 times the
    arithmetic. The coefficients and (XᵀWX)⁺."""
    weighted = x * weight[:, None]
    inverse = np.linalg.pinv(np.einsum("ni,nj->ij", weighted, x))
    return inverse.dot(np.einsum("ni,n->i", weighted, np.where(weight > 0, z, 0.0))), inverse


def leverage(x: np.ndarray, inverse: np.ndarray, weight: np.ndarray) -> np.ndarray:
    """Each point's hat value, w x (XᵀWX)⁺ xᵀ (einsum, for the same reason)."""
    return weight * (np.einsum("ni,ij->nj", x, inverse) * x).sum(axis=1)


def sided_scores(values: np.ndarray, inlier: np.ndarray | None = None) -> np.ndarray:
    """Robust z-scores with a separate scale for each side of the median, so a skewed noise
    (a log of few orders has a long low tail) does not make its long side look unusual: the
    MAD of each side, or with `inlier`, the root mean square of the inliers on each side."""
    deviation = values - np.nanmedian(values)
    chosen = np.isfinite(deviation) if inlier is None else inlier & np.isfinite(deviation)
    scales = []
    for side in (deviation <= 0, deviation >= 0):
        part = np.abs(deviation[side & chosen])
        if not part.size:
            scales.append(0.0)
        elif inlier is None:
            scales.append(MAD_TO_SIGMA * float(np.median(part)))
        else:
            scales.append(float(np.sqrt(np.mean(part**2))))
    scale = np.where(deviation < 0, *scales)
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.where(scale > 0, deviation / scale, 0.0)


@lru_cache(maxsize=8)
def calendar(
    stamps: bytes, unit: str, grain: str | None
) -> tuple[dict[str, np.ndarray], dict[str, np.ndarray]]:
    """Each season's key and cycle of every timestamp, worked out once for the fifty members
    of a dimension that share one index (read-only arrays)."""
    index = pd.DatetimeIndex(np.frombuffer(stamps, dtype=f"M8[{unit}]"))
    keys, cycles = {}, {}
    for season in SEASONS.get(grain or "", ()):
        keys[season.name] = season.key(index).astype(np.int64)
        cycles[season.name] = season.cycle(index).astype(np.int64)
        keys[season.name].flags.writeable = cycles[season.name].flags.writeable = False
    return keys, cycles


def anomaly_threshold(points: int) -> float:
    """The robust z beyond which a point is unusual: Bonferroni over the points tested, so
    that pure noise raises FALSE_ALARMS false alarms per series on average."""
    from scipy.special import ndtri

    return max(MIN_THRESHOLD, -float(ndtri(FALSE_ALARMS / (2 * max(points, 1)))))


class Decomposition:
    """The fitted model of one series; properties give its parts."""

    def __init__(self, series: pd.Series, grain: str | None = None, threshold: float | None = None):
        series = series.astype(float).sort_index()
        self.index = pd.DatetimeIndex(series.index)
        self.y = series.to_numpy()
        self.grain = grain
        finite = np.isfinite(self.y)
        self.log = bool(finite.any() and (self.y[finite] > 0).all())
        self.z = np.log(np.where(finite & (self.y > 0), self.y, np.nan)) if self.log else self.y
        self.observed = np.isfinite(self.z)
        self.threshold = threshold or anomaly_threshold(int(self.observed.sum()))
        self.years = years(self.index, self.index[0])
        candidates = SEASONS.get(grain or "", ())
        self.keys, self.cycles = calendar(self.index.asi8.tobytes(), self.index.unit, grain)
        self.levels = {name: np.unique(keys[self.observed]) for name, keys in self.keys.items()}
        self.seasons = [s for s in candidates if self._covered(s)]
        self.x = self.design(self.index)
        # A local level on top of a model with few spare points would chase the noise.
        self.window = LOCAL_WINDOW.get(grain or "", 5) if self.testable else 0
        self._fit()

    def _covered(self, season: Season) -> bool:
        """A season is fitted only when each of its keys repeats in `min_cycles` cycles."""
        keys = self.keys[season.name][self.observed]
        cycle = self.cycles[season.name][self.observed]
        pairs = np.unique((cycle - cycle.min()) * 100 + keys)  # keys are < 100
        _, cycles = np.unique(pairs % 100, return_counts=True)
        return len(cycles) >= 2 and int(cycles.min()) >= season.min_cycles

    def design(self, index: pd.DatetimeIndex) -> np.ndarray:
        """Intercept, time in years, and one dummy per non-first key of each season."""
        columns = [np.ones(len(index)), years(index, self.index[0])]
        for season in self.seasons:
            keys = self.keys[season.name] if index is self.index else season.key(index)
            columns += [(keys == level).astype(float) for level in self.levels[season.name][1:]]
        return np.column_stack(columns)

    def _fit(self) -> None:
        """Weighted least squares, twice: points far off in the first fit weigh (t/z)² in the
        second, so they barely pull the line while every season key stays identified."""
        weight = self.observed.astype(float)
        for _ in range(2):
            self.coef, inverse = least_squares(self.x, self.z, weight)
            hat = leverage(self.x, inverse, weight)
            self.fitted = np.einsum("ni,i->n", self.x, self.coef)
            error = self.z - self.fitted
            self.local = self.local_level(np.where(weight == 1, error, np.nan))
            self.remainder = error - self.local
            # Scored on a square-root scale: a sum of few orders varies like its square root,
            # so a log would make every quiet day of a small member look like an outage.
            expected = self.value(self.fitted + self.local)
            gap = np.sqrt(self.y) - np.sqrt(expected) if self.log else self.remainder
            # Residuals of points the fit leans on are shrunk by sqrt(1 - leverage): undone.
            self.residual = gap / np.sqrt(1 - np.minimum(hat, 0.9))
            self.score = sided_scores(self.residual) / self.shrink
            far = np.abs(np.nan_to_num(self.score))
            weight = np.where(
                far < self.threshold, 1.0, (self.threshold / np.maximum(far, 1e-9)) ** 2
            )
            weight = np.where(self.observed, weight, 0.0)
        # MAD found the outliers; the spread of the rest scores them (MAD of small counts,
        # which come in steps, runs some 10% short and would cry wolf).
        self.score = sided_scores(self.residual, weight == 1) / self.shrink
        self.inlier = self.observed & (np.abs(np.nan_to_num(self.score)) < self.threshold)
        studentized = self.remainder / np.sqrt(1 - np.minimum(hat, 0.9))
        self.scale = robust_scale(studentized[self.inlier]) * self.shrink
        """The noise around the expected values, on the model's (log) scale."""

    def local_level(self, error: np.ndarray) -> np.ndarray:
        """A centred rolling median of the model's errors (NaN: left out): where the series
        runs above or below the line and seasons for a while."""
        if not self.window:
            return np.zeros(len(error))
        rolling = pd.Series(error).rolling(self.window, center=True, min_periods=1)
        return rolling.median().fillna(0).to_numpy()

    @property
    def shrink(self) -> float:
        """The local median shares noise with the points it is taken over: their residuals
        shrink by 1 - v, an outlier's (which does not move the median) grows by 1 + v."""
        v = np.pi / (2 * self.window) if self.window else 0.0
        return float(np.sqrt((1 + v) / (1 - v)))

    @property
    def flagged(self) -> np.ndarray:
        """Which points are anomalies: beyond the threshold, in a series long enough to say."""
        far = np.abs(np.nan_to_num(self.score)) >= self.threshold
        return self.observed & far & self.testable

    @property
    def testable(self) -> bool:
        """Enough points beyond the model's parameters to tell noise from anomalies."""
        spare = int(self.observed.sum()) - self.x.shape[1]
        return spare >= max(self.x.shape[1], 12)

    @cached_property
    def error(self) -> np.ndarray:
        """Residuals of the global model on the inliers (local level deviations included)."""
        return (self.z - self.fitted)[self.inlier]

    @cached_property
    def inflation(self) -> float:
        """How much autocorrelated residuals widen standard errors: sqrt((1+ρ)/(1-ρ))."""
        e = self.error
        if e.size < 4 or not np.std(e):
            return 1.0
        rho = float(np.corrcoef(e[:-1], e[1:])[0, 1])
        rho = min(max(rho, 0.0), 0.9)
        return float(np.sqrt((1 + rho) / (1 - rho)))

    @cached_property
    def dof(self) -> float:
        n, k = self.error.size, self.x.shape[1]
        return max((n - k) / self.inflation**2, 1.0)

    @cached_property
    def covariance(self) -> np.ndarray:
        """OLS covariance of the coefficients, widened for autocorrelation."""
        n, k = int(self.inlier.sum()), self.x.shape[1]
        _, inverse = least_squares(self.x, self.z, self.inlier.astype(float))
        sigma2 = float(self.error @ self.error) / max(n - k, 1)
        return inverse * sigma2 * self.inflation**2

    def value(self, z: np.ndarray | float) -> np.ndarray:
        """Back from the model's scale to the measure's."""
        return np.exp(z) if self.log else np.asarray(z)

    def columns(self, season: Season) -> slice:
        """Where `season`'s dummies sit among the design's columns."""
        before = self.seasons[: self.seasons.index(season)]
        start = 2 + sum(len(self.levels[s.name]) - 1 for s in before)
        return slice(start, start + len(self.levels[season.name]) - 1)

    def season_effects(self, season: Season) -> pd.Series:
        """Each key's effect, centred on the average observation (log scale when `log`)."""
        levels = self.levels[season.name]
        effects = np.concatenate([[0.0], self.coef[self.columns(season)]])
        keys = self.keys[season.name][self.observed]
        weights = pd.Series(keys).value_counts().reindex(levels).to_numpy()
        return pd.Series(effects - np.average(effects, weights=weights), index=levels)


@dataclass(frozen=True)
class Trend:
    start: float
    end: float
    change: float
    """Relative change of the trend line from the first to the last date (0.4 = +40%)."""
    slope: float
    """Change of the trend line per step (day, month …), in the measure's unit."""
    p_value: float


def trend(dec: Decomposition) -> Trend | None:
    """The straight trend through the series (seasons held at their average), and whether it
    is more than noise: a t-test on the slope with autocorrelation-corrected errors."""
    from scipy.special import stdtr

    if int(dec.inlier.sum()) < MIN_POINTS:
        return None
    base = float(np.mean(dec.fitted[dec.inlier] - dec.x[dec.inlier, 1] * dec.coef[1]))
    first, last = dec.years[0], dec.years[-1]
    start, end = (float(dec.value(base + dec.coef[1] * y)) for y in (first, last))
    steps = (last - first) * 365.25 / STEP_DAYS.get(dec.grain or "day", 1)
    stat = dec.coef[1] / np.sqrt(dec.covariance[1, 1]) if dec.covariance[1, 1] > 0 else 0.0
    p_value = float(2 * stdtr(dec.dof, -abs(stat)))
    change = (end - start) / abs(start) if start else float("nan")
    return Trend(start, end, change, (end - start) / max(steps, 1), p_value)


@dataclass(frozen=True)
class SeasonFit:
    name: str
    strength: float
    """1 - var(remainder) / var(season + remainder): 0 none, 1 all of the variation."""
    p_value: float
    effects: pd.Series
    """Per key (day name, month …): relative effect (0.3 = +30%) or units above average."""


def seasonality(dec: Decomposition) -> list[SeasonFit]:
    """Each covered season's strength, its F-test against the model without it, and effects."""
    from scipy.special import fdtrc

    rows = dec.inlier
    remainder = dec.remainder[rows]
    full = float(dec.error @ dec.error)
    n, k = int(rows.sum()), dec.x.shape[1]
    out = []
    for season in dec.seasons:
        effects = dec.season_effects(season)
        keys = dec.keys[season.name][rows]
        component = effects.reindex(keys).to_numpy()
        total = np.var(component + remainder)
        strength = max(0.0, 1 - np.var(remainder) / total) if total else 0.0
        others = np.ones(k, dtype=bool)
        others[dec.columns(season)] = False
        coef, _ = least_squares(dec.x[rows][:, others], dec.z[rows], np.ones(n))
        reduced = dec.z[rows] - np.einsum("ni,i->n", dec.x[rows][:, others], coef)
        q = len(effects) - 1
        stat = ((float(reduced @ reduced) - full) / q) / (full / max(n - k, 1))
        p_value = float(fdtrc(q, max(n - k, 1), stat))
        shown = np.expm1(effects) if dec.log else effects
        shown.index = [season.label(int(key)) for key in effects.index]
        out.append(SeasonFit(season.name, float(strength), p_value, shown))
    return out


def anomalies(dec: Decomposition) -> pd.DataFrame:
    """Points whose robust z beyond the threshold: date, value, expected, z, change."""
    flagged = dec.flagged
    expected = dec.value(dec.fitted + dec.local)
    frame = pd.DataFrame(
        {
            "date": dec.index[flagged],
            "value": dec.y[flagged],
            "expected": expected[flagged],
            "z": dec.score[flagged],
        }
    )
    frame["change"] = (frame["value"] - frame["expected"]) / frame["expected"].abs()
    return frame.sort_values("z", key=np.abs, ascending=False, ignore_index=True)


def forecast(dec: Decomposition, horizon: int | None = None, level: float = 0.95) -> pd.DataFrame:
    """The next `horizon` steps: trend line + seasons + the current local level, with a
    prediction interval from the coefficient covariance and the residual noise."""
    from scipy.special import stdtrit

    freq = frequency(dec.index, dec.grain)
    if freq is None or int(dec.inlier.sum()) < MIN_POINTS:
        return pd.DataFrame(columns=["date", "forecast", "lower", "upper"])
    steps = horizon or HORIZON.get(dec.grain or "", 7)
    future = pd.date_range(dec.index[-1], periods=steps + 1, freq=freq)[1:]
    x = dec.design(future)
    tail = (dec.z - dec.fitted)[dec.inlier][-(dec.window // 2 + 1) :]
    level_now = float(np.median(tail))
    noise = dec.scale**2 * (1 + np.pi / 2 / len(tail))
    spread = np.sqrt(np.einsum("ij,jk,ik->i", x, dec.covariance, x) + noise)
    center = np.einsum("ni,i->n", x, dec.coef) + level_now
    q = float(stdtrit(dec.dof, 0.5 + level / 2))
    return pd.DataFrame(
        {
            "date": future,
            "forecast": dec.value(center),
            "lower": dec.value(center - q * spread),
            "upper": dec.value(center + q * spread),
        }
    )
