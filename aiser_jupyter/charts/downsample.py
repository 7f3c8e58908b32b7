"""Shrinking big results before they leave the kernel, keeping what the eye would see.

A browser chart with 100k points is slow and no clearer than one with 2k, so lines
keep their visual shape (LTTB), scatters become a density grid, and long category
lists keep their largest members.
"""

from __future__ import annotations

import numpy as np
import pandas as pd


def as_float(values: np.ndarray) -> np.ndarray:
    """Numbers to compute with: datetimes and durations as their integer ticks."""
    values = np.asarray(values)
    if np.issubdtype(values.dtype, np.datetime64) or np.issubdtype(values.dtype, np.timedelta64):
        return values.astype("int64").astype(float)
    return values.astype(float)


def lttb(x: np.ndarray, y: np.ndarray, threshold: int) -> np.ndarray:
    """Indices of the points Largest-Triangle-Three-Buckets keeps, first and last included.

    ``x`` must be sorted. Each middle bucket keeps the point forming the largest triangle
    with the point kept in the previous bucket and the mean of the next bucket, so peaks
    and troughs survive where plain striding would drop them.
    """
    xf, yf = as_float(x), as_float(y)
    n = len(xf)
    if threshold >= n:
        return np.arange(n)
    if threshold <= 2:
        return np.array([0, n - 1][: max(threshold, 0)], dtype=np.int64)
    yf = np.where(np.isnan(yf), 0.0, yf)  # a gap should not win or poison a triangle
    every = (n - 2) / (threshold - 2)
    edges = (np.floor(np.arange(threshold - 1) * every) + 1).astype(np.int64)
    edges[-1] = n - 1
    kept = np.empty(threshold, dtype=np.int64)
    kept[0], kept[-1] = 0, n - 1
    previous = 0
    for bucket in range(threshold - 2):
        start, end = edges[bucket], edges[bucket + 1]
        if bucket + 2 < len(edges):
            next_start, next_end = edges[bucket + 1], edges[bucket + 2]
            mean_x, mean_y = xf[next_start:next_end].mean(), yf[next_start:next_end].mean()
        else:
            mean_x, mean_y = xf[-1], yf[-1]
        ax, ay = xf[previous], yf[previous]
        area = np.abs((ax - mean_x) * (yf[start:end] - ay) - (ax - xf[start:end]) * (mean_y - ay))
        previous = start + int(np.argmax(area))
        kept[bucket + 1] = previous
    return kept


def bin_scatter(
    x: np.ndarray, y: np.ndarray, max_points: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Bin centres (x, y) and point counts of the non-empty cells of a square-ish grid.

    The grid has at most ``max_points`` cells, so the output never exceeds it.
    """
    xf, yf = as_float(x), as_float(y)
    finite = np.isfinite(xf) & np.isfinite(yf)
    xf, yf = xf[finite], yf[finite]
    side = max(int(np.sqrt(max(max_points, 1))), 1)
    if len(xf) == 0:
        empty = np.array([], dtype=float)
        return empty, empty, np.array([], dtype=np.int64)
    counts, x_edges, y_edges = np.histogram2d(xf, yf, bins=side)
    ix, iy = np.nonzero(counts)
    x_mid = (x_edges[:-1] + x_edges[1:]) / 2
    y_mid = (y_edges[:-1] + y_edges[1:]) / 2
    return x_mid[ix], y_mid[iy], counts[ix, iy].astype(np.int64)


def top_n(
    frame: pd.DataFrame, category: str, measure: str, n: int, other: str = "Other"
) -> pd.DataFrame:
    """The ``n`` largest rows by ``measure``, the rest summed into one ``other`` row.

    Only right for additive measures (a sum of averages means nothing): the caller decides.
    Other numeric columns are summed too; other columns are left empty on that row.
    """
    ordered = frame.sort_values(measure, ascending=False, kind="stable")
    if len(ordered) <= n:
        return ordered.reset_index(drop=True)
    head, rest = ordered.iloc[:n], ordered.iloc[n:]
    row: dict[str, object] = {}
    for column in frame.columns:
        if column == category:
            row[column] = other
        elif pd.api.types.is_numeric_dtype(frame[column]) and not pd.api.types.is_bool_dtype(
            frame[column]
        ):
            row[column] = rest[column].sum()
        else:
            row[column] = None
    tail = pd.DataFrame([row], columns=frame.columns)
    return pd.concat([head, tail], ignore_index=True)
