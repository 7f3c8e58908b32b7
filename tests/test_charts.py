"""Charts: downsampling, the chart-choice rules and the ECharts options, against known answers."""

from __future__ import annotations

import json
import math
from datetime import date

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest

import aiser_jupyter.sessions as sessions
from aiser_jupyter.charts import Chart, chart
from aiser_jupyter.charts.downsample import bin_scatter, lttb, top_n
from aiser_jupyter.charts.echarts import build_option
from aiser_jupyter.charts.recommend import ChartSpec, recommend


def reference_lttb(x: list[float], y: list[float], threshold: int) -> list[int]:
    """LTTB as published (Steinarsson 2013), a plain loop, to check the vectorised one."""
    n, every = len(x), (len(x) - 2) / (threshold - 2)
    kept, a = [0], 0
    for i in range(threshold - 2):
        start, end = math.floor((i + 1) * every) + 1, min(math.floor((i + 2) * every) + 1, n)
        avg_x, avg_y = sum(x[start:end]) / (end - start), sum(y[start:end]) / (end - start)
        best, best_area = -1, -1.0
        for j in range(math.floor(i * every) + 1, math.floor((i + 1) * every) + 1):
            area = abs((x[a] - avg_x) * (y[j] - y[a]) - (x[a] - x[j]) * (avg_y - y[a]))
            if area > best_area:
                best, best_area = j, area
        kept.append(best)
        a = best
    return [*kept, n - 1]


# -- downsampling ---------------------------------------------------------------------


def test_lttb_keeps_ends_and_exactly_threshold_points():
    rng = np.random.default_rng(1)
    x, y = np.arange(10_000, dtype=float), rng.normal(size=10_000).cumsum()
    kept = lttb(x, y, 500)
    assert len(kept) == 500
    assert kept[0] == 0 and kept[-1] == 9_999
    assert np.all(np.diff(kept) > 0)


def test_lttb_matches_the_published_algorithm():
    rng = np.random.default_rng(2)
    x = np.sort(rng.uniform(0, 1_000, size=3_001))
    y = rng.normal(size=3_001)
    assert lttb(x, y, 137).tolist() == reference_lttb(x.tolist(), y.tolist(), 137)


def test_lttb_keeps_a_spike_in_a_flat_series_and_works_on_datetimes():
    y = np.zeros(50_000)
    y[31_337] = 100.0
    x = pd.date_range("2020-01-01", periods=50_000, freq="min").to_numpy()
    kept = lttb(x, y, 100)
    assert 31_337 in kept.tolist()


def test_lttb_is_identity_when_short_enough():
    x, y = np.arange(50), np.arange(50.0) ** 2
    assert lttb(x, y, 50).tolist() == list(range(50))
    assert lttb(x, y, 1_000).tolist() == list(range(50))


def test_bin_scatter_counts_every_point_within_the_budget():
    rng = np.random.default_rng(3)
    x, y = rng.normal(size=40_000), rng.exponential(size=40_000)
    cx, cy, counts = bin_scatter(x, y, 400)
    assert counts.sum() == 40_000
    assert 0 < len(counts) <= 400 and len(cx) == len(cy) == len(counts)
    assert np.all(counts > 0)
    assert x.min() <= cx.min() and cx.max() <= x.max()
    assert y.min() <= cy.min() and cy.max() <= y.max()


def test_top_n_keeps_the_largest_and_sums_the_rest():
    frame = pd.DataFrame(
        {"name": [f"c{i}" for i in range(10)], "sales": [float(i) for i in range(10)]}
    )
    got = top_n(frame, "name", "sales", 3)
    assert got["name"].tolist() == ["c9", "c8", "c7", "Other"]
    assert got["sales"].tolist() == [9.0, 8.0, 7.0, sum(range(7))]
    assert got["sales"].sum() == frame["sales"].sum()
    assert top_n(frame, "name", "sales", 20)["sales"].sum() == frame["sales"].sum()


# -- choosing a chart ------------------------------------------------------------------

MONTHS = pd.date_range("2023-01-01", periods=24, freq="MS")


def test_time_and_measures_give_a_line():
    frame = pd.DataFrame({"month": MONTHS, "revenue": np.arange(24.0), "cost": np.ones(24)})
    spec = recommend(frame)
    assert (spec.kind, spec.x, spec.y, spec.series) == ("line", "month", ["revenue", "cost"], None)
    assert "one time column (month) and 2 measures" in spec.reason


def test_date_objects_count_as_time_and_a_small_category_splits_series():
    days = [date(2024, 1, d) for d in (1, 2, 3)] * 2
    frame = pd.DataFrame({"day": days, "region": ["N"] * 3 + ["S"] * 3, "orders": range(6)})
    spec = recommend(frame)
    assert (spec.kind, spec.x, spec.series) == ("line", "day", "region")
    assert "one line per region" in spec.reason


def test_shares_over_time_give_a_stacked_area():
    frame = pd.DataFrame(
        {
            "month": list(MONTHS[:3]) * 2,
            "channel": ["web"] * 3 + ["shop"] * 3,
            "share_pct": [60, 55, 50, 40, 45, 50],
        }
    )
    spec = recommend(frame)
    assert spec.kind == "area" and "stacked shares" in spec.reason


def test_one_category_and_a_measure_give_a_bar_or_a_pie():
    ten = pd.DataFrame({"city": [f"C{i}" for i in range(10)], "sales": range(1, 11)})
    assert recommend(ten).kind == "bar"
    five = ten.head(5)
    spec = recommend(five)
    assert spec.kind == "pie" and "5 parts of a whole" in spec.reason
    assert recommend(five.assign(sales=[3, -1, 2, 2, 1])).kind == "bar"  # negative: no whole
    assert recommend(five.rename(columns={"sales": "avg_price"})).kind == "bar"
    percent = {"measures": {"sales": {"title": "Sales", "format": "percent"}}}
    assert recommend(five, annotation=percent).kind == "bar"


def test_many_or_long_categories_give_a_horizontal_bar():
    many = pd.DataFrame({"city": [f"C{i}" for i in range(30)], "sales": range(30)})
    spec = recommend(many)
    assert spec.kind == "hbar" and "30 categories" in spec.reason
    long = pd.DataFrame(
        {"product": ["A very long product name", "B", "C"], "avg_price": [1.0, 2, 3]}
    )
    spec = recommend(long)
    assert spec.kind == "hbar" and "labels up to 24 characters" in spec.reason


def test_two_measures_scatter_single_row_kpi_two_categories_heatmap():
    rng = np.random.default_rng(4)
    assert (
        recommend(pd.DataFrame({"a": rng.normal(size=50), "b": rng.normal(size=50)})).kind
        == "scatter"
    )
    one = recommend(pd.DataFrame({"revenue": [120.0], "previous": [100.0]}))
    assert one.kind == "kpi" and one.y == ["revenue", "previous"] and "comparison" in one.reason
    grid = pd.DataFrame(
        {"day": ["Mon", "Mon", "Tue"], "hour": ["9", "10", "9"], "orders": [1, 2, 3]}
    )
    spec = recommend(grid)
    assert (spec.kind, spec.x, spec.series, spec.y) == ("heatmap", "day", "hour", ["orders"])


def test_countries_fall_back_to_a_bar_and_ids_are_not_measures():
    frame = pd.DataFrame({"country": ["Germany", "France", "Spain"], "sales": [3, 2, 1]})
    spec = recommend(frame)
    assert spec.kind == "bar" and "no map data bundled" in spec.reason
    codes = pd.DataFrame({"code": ["DE", "FR", "US", "GB"], "sales": [1, 2, 3, 4]})
    assert "no map data bundled" in recommend(codes).reason
    ids = pd.DataFrame({"customer_id": range(10), "revenue": np.arange(10.0) + 1})
    spec = recommend(ids)
    assert spec.kind == "bar" and spec.x == "customer_id" and spec.y == ["revenue"]


def test_nothing_chartable_gives_a_table():
    frame = pd.DataFrame({"a": ["x", "y"], "b": ["p", "q"], "c": ["r", "s"]})
    assert recommend(frame).kind == "table"
    assert recommend(pd.DataFrame()).kind == "table"


def test_annotation_decides_measures_and_dimensions():
    frame = pd.DataFrame({"orders.year": [2021, 2022, 2023], "orders.count": [5, 7, 9]})
    assert recommend(frame).kind == "scatter"  # two integers, by dtype
    annotation = {
        "measures": {"orders.count": {}},
        "dimensions": {"orders.year": {"type": "number"}},
    }
    spec = recommend(frame, annotation=annotation)
    assert (spec.kind, spec.x, spec.y) == ("pie", "orders.year", ["orders.count"])


def test_overrides_win_and_bad_columns_say_what_exists():
    frame = pd.DataFrame({"month": MONTHS, "revenue": np.arange(24.0), "cost": np.ones(24)})
    spec = recommend(frame, kind="bar")
    assert (spec.kind, spec.x, spec.y) == ("bar", "month", ["revenue", "cost"])
    assert "as asked" in spec.reason
    spec = recommend(frame, y="cost")
    assert (spec.kind, spec.x, spec.y) == ("line", "month", ["cost"])
    assert recommend(frame, kind="scatter", x="revenue").y == ["cost"]
    with pytest.raises(ValueError, match="available columns: month, revenue, cost"):
        recommend(frame, y="profit")
    with pytest.raises(ValueError, match="unknown chart kind"):
        recommend(frame, kind="radar")


# -- ECharts options -------------------------------------------------------------------


def test_a_long_time_series_is_downsampled_and_says_so():
    n = 100_000
    frame = pd.DataFrame(
        {"t": pd.date_range("2020-01-01", periods=n, freq="min"), "v": np.sin(np.arange(n) / 500)}
    )
    spec = recommend(frame)
    option, notes = build_option(frame, spec, max_points=2_000)
    data = option["series"][0]["data"]
    assert len(data) == 2_000
    assert notes == ["downsampled 100,000 points to 2,000 (LTTB)"]
    assert option["xAxis"]["type"] == "time"
    assert data[0] == ["2020-01-01T00:00:00", 0.0]
    assert data[-1][0] == frame["t"].iloc[-1].isoformat()
    json.dumps(option, allow_nan=False)


def test_semantic_titles_and_formats_reach_the_axes():
    frame = pd.DataFrame({"orders.order_date.month": MONTHS, "orders.revenue": np.arange(24.0)})
    annotation = {
        "measures": {
            "orders.revenue": {
                "title": "Orders Revenue",
                "shortTitle": "Revenue",
                "format": "currency",
            }
        },
        "timeDimensions": {
            "orders.order_date.month": {"title": "Orders Order Date", "type": "time"}
        },
    }
    spec = recommend(frame, annotation=annotation)
    option, _ = build_option(frame, spec, annotation=annotation)
    assert option["aiser"]["axisFormats"] == {"yAxis": "currency"}  # the browser formats
    assert "formatter" not in option["yAxis"]["axisLabel"]
    assert option["yAxis"]["name"] == "Orders Revenue"
    assert option["xAxis"]["name"] == "Orders Order Date"
    assert option["series"][0]["name"] == "Revenue"
    assert option["aiser"]["formats"] == {"orders.revenue": "currency"}
    annotation["measures"]["orders.revenue"]["format"] = "percent"
    option, _ = build_option(frame, spec, annotation=annotation)
    assert option["aiser"]["axisFormats"] == {"yAxis": "percent"}


def test_pie_of_five_parts():
    frame = pd.DataFrame({"region": list("ABCDE"), "sales": [5, 4, 3, 2, 1]})
    option, notes = build_option(frame, recommend(frame))
    pie = option["series"][0]
    assert pie["type"] == "pie" and pie["radius"] == ["40%", "70%"]
    assert pie["data"] == [
        {"name": k, "value": v} for k, v in zip("ABCDE", [5, 4, 3, 2, 1], strict=True)
    ]
    assert notes == []


def test_hbar_of_thirty_long_labels_is_sorted_descending():
    rng = np.random.default_rng(5)
    values = rng.permutation(30) * 10.0
    frame = pd.DataFrame(
        {"product": [f"Product number {i:02d} deluxe" for i in range(30)], "sales": values}
    )
    option, notes = build_option(frame, recommend(frame), top=30)
    assert notes == []
    assert option["yAxis"]["type"] == "category" and option["yAxis"]["inverse"] is True
    data = option["series"][0]["data"]
    assert data == sorted(values.tolist(), reverse=True)
    by_name = dict(zip(frame["product"], frame["sales"], strict=True))
    assert [by_name[name] for name in option["yAxis"]["data"]] == data


def test_top_n_other_row_is_the_sum_of_the_rest():
    rng = np.random.default_rng(6)
    values = rng.uniform(1, 1_000, size=80).round(2)
    frame = pd.DataFrame({"sku": [f"s{i}" for i in range(80)], "revenue": values})
    option, notes = build_option(frame, recommend(frame), top=25)
    names, data = option["yAxis"]["data"], option["series"][0]["data"]
    assert len(data) == 26 and names[-1] == "Other"
    ordered = sorted(values.tolist(), reverse=True)
    assert data[:25] == ordered[:25]
    assert data[-1] == pytest.approx(sum(ordered[25:]))
    assert sum(data) == pytest.approx(values.sum())
    assert notes == ["top 25 of 80 categories, the rest as 'Other'"]
    averages = frame.rename(columns={"revenue": "avg_price"})
    option, notes = build_option(averages, recommend(averages), top=25)
    assert len(option["series"][0]["data"]) == 25 and "no 'Other'" in notes[0]


def test_big_scatter_is_binned_and_kpi_heatmap_nan_are_plain_json():
    rng = np.random.default_rng(7)
    frame = pd.DataFrame({"a": rng.normal(size=30_000), "b": rng.normal(size=30_000)})
    option, notes = build_option(frame, recommend(frame), max_points=900)
    points = option["series"][0]["data"]
    assert sum(p["value"][2] for p in points) == 30_000 and len(points) <= 900
    assert notes[0].startswith("binned 30,000 points into")

    option, _ = build_option(
        *(lambda f: (f, recommend(f)))(pd.DataFrame({"now": [120], "before": [100]}))
    )
    assert option["aiser"]["kpi"] == {
        "value": 120,
        "comparison": 100,
        "change_pct": 20.0,
        "title": "now",
    }

    grid = pd.DataFrame(
        {"day": ["Mon", "Mon", "Tue"], "hour": ["9", "10", "9"], "orders": [1.0, np.nan, 3.0]}
    )
    option, _ = build_option(grid, recommend(grid))
    assert option["series"][0]["data"] == [[0, 0, 1.0], [0, 1, None], [1, 0, 3.0]]
    assert (option["visualMap"]["min"], option["visualMap"]["max"]) == (1.0, 3.0)
    json.dumps(option, allow_nan=False)


# -- chart() ---------------------------------------------------------------------------


def test_chart_accepts_arrow_and_result_like_objects():
    table = pa.table({"region": ["N", "S"], "sales": [3.0, 1.0]})
    got = chart(table)
    assert isinstance(got, Chart) and got.spec.kind == "pie" and got.reason == got.spec.reason
    assert json.loads(got.to_json())["series"][0]["data"][0] == {"name": "N", "value": 3.0}

    class Result:
        def __init__(self):
            self.df = pd.DataFrame({"m": MONTHS, "r": np.arange(24.0)})
            self.annotation = {"measures": {"r": {"title": "Revenue", "format": "currency"}}}

    got = chart(Result(), kind="bar")
    assert got.spec.kind == "bar" and got.option["aiser"]["axisFormats"] == {"yAxis": "currency"}


def test_a_real_session_query_becomes_a_line_with_its_values():
    session = sessions.Session()
    try:
        session.sources.load_sample()
        result = session.sql(
            "SELECT date_trunc('month', order_date) AS month, sum(revenue) AS revenue "
            "FROM orders GROUP BY 1 ORDER BY 1"
        )
        got = chart(result)
        assert got.spec == ChartSpec("line", "month", ["revenue"], None, got.reason)
        data = got.option["series"][0]["data"]
        assert len(data) == 24 and got.notes == []
        assert [v for _, v in data] == result.df["revenue"].tolist()
        assert [t for t, _ in data] == [t.isoformat() for t in result.df["month"]]
    finally:
        session.close()


def test_a_semantic_query_carries_its_titles_and_currency_into_the_chart():
    session = sessions.Session()
    try:
        session.sources.load_sample()
        session.load_model("examples/model/retail.yml")
        result = session.query(
            {
                "measures": ["orders.revenue"],
                "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
            }
        )
        got = chart(result)
        assert got.spec.kind == "line" and "orders.order_date.month" in got.reason
        assert got.option["yAxis"]["name"] == "Orders Revenue"
        assert got.option["aiser"]["axisFormats"] == {"yAxis": "currency"}
        assert got.option["xAxis"]["name"] == "Orders Order Date"
    finally:
        session.close()


def test_chart_accepts_a_polars_frame():
    pl = pytest.importorskip("polars")
    got = chart(pl.DataFrame({"a": [1.0, 2.0, 3.0], "b": [2.0, 4.0, 6.0]}))
    assert got.spec.kind == "scatter"
    assert got.option["series"][0]["data"] == [[1.0, 2.0], [2.0, 4.0], [3.0, 6.0]]


def test_public_api_chart_of_a_semantic_result():
    import aiser_jupyter as aiser

    session = aiser.session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    result = aiser.query({"measures": ["orders.revenue"], "dimensions": ["customers.region"]})
    drawn = aiser.chart(result)
    assert drawn.spec.kind in {"bar", "pie"}
    assert drawn.reason
    values = sorted(
        v["value"] if isinstance(v, dict) else v for v in drawn.option["series"][0]["data"]
    )
    assert values == pytest.approx(sorted(result.df["orders.revenue"].tolist()))


def test_exact_decimals_chart_as_numbers():
    """DuckDB sums integers into DECIMAL; such a column is a measure to draw, not a label."""
    from decimal import Decimal

    frame = pd.DataFrame({"reason": ["sick", "vacation"], "days": [Decimal(3), Decimal(5)]})
    frame["hours"] = [24.0, 40.0]
    made = chart(frame)
    assert made.spec.kind == "bar" and made.spec.y == ["days", "hours"]
    assert [s["data"] for s in made.option["series"]] == [[3.0, 5.0], [24.0, 40.0]]
