"""Insights: series with a known trend, seasons and planted anomalies (precision and recall
reported), pure noise (nothing claimed), the sample data's planted anomalies and seasons,
and contributions checked against hand-written SQL."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from aiser_jupyter.analysis import Insights, InsightsError, analyze, insights_text
from aiser_jupyter.sources.sample import PLANTED_ANOMALIES

WEEKDAY = np.array([1.0, 1.0, 1.0, 1.0, 1.05, 1.3, 1.25])
MONTH = np.array([0.9, 0.85, 0.95, 1.0, 1.0, 1.05, 1.1, 1.05, 1.0, 1.0, 1.2, 1.4])
DAILY_REVENUE = {
    "measures": ["orders.revenue"],
    "timeDimensions": [{"dimension": "orders.order_date", "granularity": "day"}],
}


def insights(session, data, **options) -> Insights:
    """``Session.insights`` (the mixin's method, whichever Session class carries it)."""
    return session.analyst.insights(data, **options)


def synthetic(seed: int, days: int = 3 * 365, growth: float = 0.3, noise: float = 0.05):
    """A daily series: +`growth` linear trend × weekday × month factors × lognormal noise,
    with spikes and drops planted on random days; the series and the planted days."""
    rng = np.random.default_rng(seed)
    index = pd.date_range("2021-01-01", periods=days, freq="D")
    level = 1000 * (1 + growth * np.linspace(0, 1, days))
    expected = level * WEEKDAY[index.day_of_week] * MONTH[index.month - 1]
    values = expected * np.exp(rng.normal(0, noise, days))
    planted = rng.choice(np.arange(30, days - 30), 8, replace=False)
    factors = rng.choice([0.6, 0.75, 1.3, 1.5, 2.0], 8)
    values[planted] *= factors
    return pd.Series(values, index=index, name="sales"), set(index[planted])


def anomaly_dates(found: Insights, time: str = "day") -> set[pd.Timestamp]:
    return {pd.Timestamp(i.where[time]) for i in found.of_kind("anomaly")}


def frame_of(series: pd.Series) -> pd.DataFrame:
    return series.rename_axis("day").reset_index()


def test_planted_anomalies_are_found_in_a_trending_seasonal_series():
    hits = claimed = planted_total = 0
    for seed in range(6):
        series, planted = synthetic(seed)
        found = anomaly_dates(analyze(frame_of(series), limit=None))
        true = len(found & planted)
        hits, claimed, planted_total = (
            hits + true,
            claimed + len(found),
            planted_total + len(planted),
        )
        assert len(found - planted) <= 2, f"seed {seed}: false alarms {sorted(found - planted)}"
    precision, recall = hits / claimed, hits / planted_total
    print(f"\nsynthetic anomalies: precision {precision:.2f}, recall {recall:.2f}")
    assert recall >= 0.75
    assert precision >= 0.9


def test_pure_noise_claims_no_anomaly_no_season_no_trend():
    for seed in range(8):
        rng = np.random.default_rng(100 + seed)
        index = pd.date_range("2022-01-01", periods=730, freq="D")
        for values in (100 + rng.normal(0, 5, 730), rng.poisson(40, 730).astype(float)):
            found = analyze(pd.DataFrame({"day": index, "sales": values}), limit=None)
            assert not found.of_kind("anomaly"), found.of_kind("anomaly")
            assert not found.of_kind("seasonality"), found.of_kind("seasonality")
            (trend,) = found.of_kind("trend")
            assert "no significant trend" in trend.text


def test_trend_season_and_forecast_match_what_was_built_in():
    series, _ = synthetic(3, growth=0.3)
    found = analyze(frame_of(series), limit=None)
    (trend,) = found.of_kind("trend")
    assert trend.numbers["change"] == pytest.approx(0.3, abs=0.04)
    assert trend.numbers["p_value"] < 0.001
    seasons = {i.numbers["season"]: i for i in found.of_kind("seasonality")}
    assert set(seasons) == {"weekly", "yearly"}
    assert {seasons["weekly"].numbers["peak"]} <= {"Saturday", "Sunday"}
    weekly = seasons["weekly"].numbers["effects"]
    # Saturday is 1.3 / (mean weekday factor 1.086) - 1 = +19.7% against the average day.
    assert weekly["Saturday"] == pytest.approx(1.3 / WEEKDAY.mean() - 1, abs=0.03)
    assert seasons["yearly"].numbers["peak"] == "Dec"
    assert seasons["yearly"].numbers["low"] == "Feb"


def test_forecast_interval_covers_what_came_next():
    inside = total = 0
    errors = []
    for seed in range(10):
        series, _ = synthetic(200 + seed, days=2 * 365 + 14)
        clean = series.copy()
        history, future = clean.iloc[:-14], clean.iloc[-14:]
        (forecast,) = analyze(frame_of(history), limit=None).of_kind("forecast")
        table = forecast.data.set_index("date")
        assert list(table.index) == list(future.index)
        inside += int(((future >= table["lower"]) & (future <= table["upper"])).sum())
        total += len(future)
        errors.append(abs(table["forecast"].mean() / future.mean() - 1))
    coverage = inside / total
    print(f"\n95% forecast interval coverage {coverage:.2f}, median error {np.median(errors):.3f}")
    assert 0.85 <= coverage <= 1.0
    assert np.median(errors) < 0.05


def test_sample_daily_revenue_yields_the_planted_anomalies_and_the_weekly_season(retail):
    for measure in ("orders.revenue", "orders.count"):
        found = insights(retail, {**DAILY_REVENUE, "measures": [measure]}, limit=None)
        dates = anomaly_dates(found, "orders.order_date.day")
        planted = {pd.Timestamp(a.day) for a in PLANTED_ANOMALIES}
        assert planted <= dates, f"{measure}: missed {planted - dates}"
        assert len(dates - planted) <= 2, f"{measure}: false alarms {dates - planted}"
        kinds = {
            pd.Timestamp(i.where["orders.order_date.day"]): i.numbers["change"] > 0
            for i in found.of_kind("anomaly")
        }
        for anomaly in PLANTED_ANOMALIES:
            assert kinds[pd.Timestamp(anomaly.day)] == (anomaly.kind == "spike")
        seasons = {i.numbers["season"]: i for i in found.of_kind("seasonality")}
        assert seasons["weekly"].numbers["peak"] in {"Saturday", "Sunday"}
        assert seasons["yearly"].numbers["peak"] == "Dec"
        # What matters most comes first: the four planted days and the growth lead the list.
        assert {i.kind for i in found[:5]} == {"anomaly", "trend"}
    outage = next(
        i for i in found if i.where.get("orders.order_date.day") == pd.Timestamp("2024-03-12")
    )
    assert outage.text.startswith("Orders on 2024-03-12 was 6,")


def test_result_titles_and_formats_reach_the_text(retail):
    result = retail.query(DAILY_REVENUE)
    found = insights(retail, result)
    (trend,) = found.of_kind("trend")
    assert trend.text.startswith("Revenue grew")
    assert "$" in trend.text
    assert trend.measure == "orders.revenue"
    assert "orders.order_date.day" in trend.members
    assert [i.score for i in found] == sorted((i.score for i in found), reverse=True)


def test_contribution_matches_hand_written_sql(retail):
    query = {
        "measures": ["orders.revenue"],
        "dimensions": ["customers.region"],
        "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
    }
    periods = (("2024-01-01", "2024-03-31"), ("2024-04-01", "2024-06-30"))
    found = insights(retail, query, compare=periods, limit=None)
    (contribution,) = found.of_kind("contribution")
    hand = retail.sql(
        """
        SELECT c.region,
               SUM(o.revenue) FILTER (WHERE o.order_date BETWEEN '2024-01-01' AND '2024-03-31')
                   AS before,
               SUM(o.revenue) FILTER (WHERE o.order_date BETWEEN '2024-04-01' AND '2024-06-30')
                   AS after
        FROM orders o JOIN customers c USING (customer_id)
        GROUP BY c.region
        """
    ).df.set_index("region")
    before, after = hand["before"].sum(), hand["after"].sum()
    assert contribution.numbers["before"] == pytest.approx(before)
    assert contribution.numbers["after"] == pytest.approx(after)
    assert contribution.numbers["change"] == pytest.approx(after / before - 1)
    points = (hand["after"] - hand["before"]) / before * 100
    for region, value in points.items():
        assert contribution.numbers["points"][region] == pytest.approx(value)
    assert sum(contribution.numbers["points"].values()) == pytest.approx((after / before - 1) * 100)
    drivers = points[np.sign(points) == np.sign(after - before)]
    leader = drivers.abs().idxmax()
    assert f"{leader} explains {points[leader]:+.1f} points" in contribution.text
    assert f"{abs(after / before - 1) * 100:.1f}%" in contribution.text


def test_contribution_says_which_member_drove_a_fall():
    rows = []
    for month in ("2024-01-01", "2024-02-01"):
        for region, value in {"West": 500, "North": 300, "East": 200}.items():
            drop = 0.7 if (region == "West" and month == "2024-02-01") else 1.0
            rows.append({"month": pd.Timestamp(month), "region": region, "sales": value * drop})
    found = analyze(pd.DataFrame(rows), by="region", limit=None)
    (contribution,) = found.of_kind("contribution")
    # 1000 → 850: -15.0%, all of it West's (-150 of 1000 = -15.0 points).
    assert contribution.text.startswith("sales fell 15.0% (Feb 2024 vs Jan 2024: 1,000 → 850)")
    assert "West explains -15.0 points" in contribution.text
    assert contribution.where == {"region": ["West"]}


def test_movers_concentration_and_outliers_by_hand():
    rng = np.random.default_rng(5)
    members = [f"p{i:02d}" for i in range(20)]
    before = pd.Series(rng.uniform(90, 110, 20), index=members)
    after = before * rng.uniform(0.95, 1.05, 20)
    after["p03"], after["p07"], before["p19"], after["p19"] = (
        before["p03"] * 1.6,
        before["p07"] * 0.5,
        2000.0,
        2100.0,
    )
    frame = pd.concat(
        [
            pd.DataFrame({"when": pd.Timestamp("2024-01-01"), "product": members, "units": before}),
            pd.DataFrame({"when": pd.Timestamp("2024-01-02"), "product": members, "units": after}),
        ]
    )
    found = analyze(frame, compare=(("2024-01-01", "2024-01-01"), ("2024-01-02", "2024-01-02")))
    (movers,) = found.of_kind("movers")
    assert "up: p03 +60%" in movers.text and "down: p07 -50%" in movers.text
    (concentration,) = found.of_kind("concentration")
    totals = frame.groupby("product")["units"].sum().sort_values(ascending=False)
    share = totals.iloc[:3].sum() / totals.sum()
    assert concentration.numbers["share"] == pytest.approx(share)
    assert f"hold {share * 100:.0f}% of units" in concentration.text
    # p19 sells 20 times as much as the rest; p07 (150 in all) sits far below their ~200.
    outliers = {i.where["product"]: i.numbers["z"] for i in found.of_kind("outlier")}
    assert set(outliers) == {"p19", "p07"}
    assert outliers["p19"] > 0 > outliers["p07"]


def test_a_members_own_anomaly_is_found_and_the_totals_explained():
    rng = np.random.default_rng(11)
    index = pd.date_range("2023-01-01", periods=400, freq="D")
    parts = []
    for k in range(10):
        values = (100 + 10 * k) * WEEKDAY[index.day_of_week] * np.exp(rng.normal(0, 0.2, 400))
        if k == 0:
            values[200] *= 3.0  # the smallest member: a blip in the total
        if k == 9:
            values[300] *= 4.0  # the biggest: moves the total
        parts.append(pd.DataFrame({"day": index, "store": f"m{k}", "sales": values}))
    found = analyze(pd.concat(parts), limit=None)
    anomalies = found.of_kind("anomaly")
    own = [pd.Timestamp(i.where["day"]) for i in anomalies if i.where.get("store") == "m0"]
    assert own == [index[200]]
    total = [i for i in anomalies if "store" not in i.where]
    assert [pd.Timestamp(i.where["day"]) for i in total] == [index[300]]
    assert "share of the gap: m9" in total[0].text
    assert next(iter(total[0].numbers["explained_by"])) == "m9"
    assert len(anomalies) <= 4  # at most `top` (3) members' own anomalies besides


def test_display_and_text_for_a_model():
    series, _ = synthetic(1)
    found = analyze(frame_of(series))
    page = found._repr_html_()
    assert page.startswith('<ol class="aiser-insights"') and page.count("<li>") == len(found)
    text = insights_text(found, limit=5)
    lines = text.splitlines()
    assert len(lines) == 6 and lines[-1] == f"({len(found) - 5} more, less important)"
    assert lines[0].startswith(f"1. [{found[0].kind} {found[0].score:.2f}] ")
    assert len(text) < 1500
    assert found.frame()["kind"].tolist() == [i.kind for i in found]
    assert Insights()._repr_html_() == "<p><em>No insights: nothing stood out.</em></p>"
    html_escaped = analyze(pd.DataFrame({"k": ["<b>", "x", "y", "z"], "v": [9.0, 2, 3, 1]}))
    assert "&lt;b&gt;" in html_escaped._repr_html_()


def test_bad_input_is_a_clear_error_and_the_session_still_works(retail):
    with pytest.raises(InsightsError, match="Cannot draw insights from a list"):
        insights(retail, [1, 2, 3])
    with pytest.raises(InsightsError, match="No rows"):
        insights(retail, pd.DataFrame({"day": [], "sales": []}))
    with pytest.raises(InsightsError, match="No numeric measure"):
        analyze(pd.DataFrame({"name": ["a", "b"]}))
    with pytest.raises(InsightsError, match="No measure column 'nope'"):
        insights(retail, DAILY_REVENUE, measures="nope")
    with pytest.raises(InsightsError, match=r"compare must be \(\(start, end\), \(start, end\)\)"):
        insights(retail, {**DAILY_REVENUE, "dimensions": ["customers.region"]}, compare="2024")
    assert len(retail.query(DAILY_REVENUE)) == 731


def test_hourly_monthly_irregular_and_signed_series():
    rng = np.random.default_rng(1)
    hours = pd.date_range("2024-01-01", periods=24 * 21, freq="h")
    load = 50 + 30 * np.sin(2 * np.pi * hours.hour.to_numpy() / 24) + rng.normal(0, 3, len(hours))
    load[100] += 60
    found = analyze(pd.DataFrame({"ts": hours, "load": load}), horizon=5, limit=None)
    (daily,) = [i for i in found.of_kind("seasonality") if i.numbers["season"] == "daily"]
    assert daily.numbers["peak"] in {"05:00", "06:00", "07:00"}  # sin peaks at 06:00
    assert anomaly_dates(found, "ts") == {hours[100]}
    assert "on 2024-01-05 04:00 was" in found.of_kind("anomaly")[0].text
    assert len(found.of_kind("forecast")[0].data) == 5

    months = pd.date_range("2023-01-01", periods=24, freq="MS")
    sales = 1000 * np.tile(MONTH, 2) * np.linspace(1, 1.3, 24) * np.exp(rng.normal(0, 0.03, 24))
    found = analyze(pd.DataFrame({"month": months, "sales": sales}), limit=None)
    assert found.of_kind("seasonality")[0].numbers["peak"] == "Dec"
    assert not found.of_kind("anomaly")  # 24 points, 13 parameters: too few to call one
    (forecast,) = found.of_kind("forecast")
    assert list(forecast.data["date"]) == list(pd.date_range("2025-01-01", periods=6, freq="MS"))

    stamps = pd.Timestamp("2024-01-01") + pd.to_timedelta(np.sort(rng.uniform(0, 300, 80)), "D")
    found = analyze(pd.DataFrame({"at": stamps, "x": rng.normal(10, 1, 80)}), limit=None)
    assert [i.kind for i in found] == ["trend"]  # irregular: no seasons, no forecast
    first, last = (stamps[i].strftime("%Y-%m-%d") for i in (0, -1))
    assert f"from {first} to {last} (" in found[0].text

    days = pd.date_range("2024-01-01", periods=200, freq="D")
    profit = rng.normal(0, 10, 200)
    profit[50] = 80
    found = analyze(pd.DataFrame({"d": days, "profit": profit}), limit=None)
    (anomaly,) = found.of_kind("anomaly")
    expected = anomaly.numbers["expected"]
    assert f"was 80, {80 - expected:,.2f} above the expected" in anomaly.text


def test_missing_days_of_a_plain_frame_are_unknown_not_zero():
    rng = np.random.default_rng(4)
    weekdays = pd.bdate_range("2024-01-01", periods=200)
    found = analyze(pd.DataFrame({"d": weekdays, "x": rng.normal(100, 5, 200)}), limit=None)
    assert not found.of_kind("anomaly")
    assert not found.of_kind("seasonality")


def test_a_measure_that_does_not_add_up_is_averaged(retail):
    query = {
        "measures": ["orders.average_order_value", "orders.revenue"],
        "dimensions": ["products.category"],
        "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
    }
    found = insights(retail, query, limit=None)
    aov = [i for i in found if i.measure == "orders.average_order_value"]
    assert {i.kind for i in aov} >= {"trend", "movers"}
    assert not {"contribution", "concentration"} & {i.kind for i in aov}
    revenue = [i for i in found if i.measure == "orders.revenue"]
    assert {"contribution", "concentration"} <= {i.kind for i in revenue}
    hand = retail.sql(
        """
        SELECT p.category, SUM(o.revenue) / COUNT(*) AS aov
        FROM orders o JOIN products p USING (product_id)
        WHERE o.order_date >= '2024-12-01'
        GROUP BY p.category
        """
    ).df.set_index("category")["aov"]
    before = retail.sql(
        """
        SELECT p.category, SUM(o.revenue) / COUNT(*) AS aov
        FROM orders o JOIN products p USING (product_id)
        WHERE o.order_date >= '2024-11-01' AND o.order_date < '2024-12-01'
        GROUP BY p.category
        """
    ).df.set_index("category")["aov"]
    (movers,) = [i for i in aov if i.kind == "movers"]
    for category, change in (hand / before - 1).items():
        assert movers.numbers["pct_change"][category] == pytest.approx(change)


def test_what_the_magic_line_names(retail):
    from aiser_jupyter.magics import line_target

    result = retail.query(DAILY_REVENUE)
    namespace = {"daily": result, "_": result}
    assert line_target("daily", namespace) is result
    assert line_target("", namespace) is result
    assert line_target('{"measures": ["orders.count"]}', {}) == {"measures": ["orders.count"]}
    found = insights(
        retail,
        line_target(
            '{"measures": ["orders.count"], "timeDimensions": '
            '[{"dimension": "orders.order_date", "granularity": '
            '"month"}]}',
            {},
        ),
    )
    assert found.of_kind("trend")[0].text.startswith("Orders grew")
    with pytest.raises(InsightsError, match="No variable named 'nope'"):
        line_target("nope", namespace)
    with pytest.raises(InsightsError, match="Nothing to look at"):
        line_target(None, {})
    with pytest.raises(InsightsError, match="Expected a variable name or a Cube query as JSON"):
        line_target("revenue by region", namespace)
    with pytest.raises(InsightsError, match="is a JSON object"):
        line_target("[1, 2]", namespace)


def test_iso_date_text_is_read_as_time():
    series, planted = synthetic(2, days=400)
    typed = frame_of(series).rename(columns={"day": "date"})
    text = typed.assign(date=typed["date"].dt.strftime("%Y-%m-%d"))
    found = analyze(text, limit=None)
    assert not found.of_kind("concentration")  # not a dimension of 400 values
    dates = anomaly_dates(found, "date")
    assert dates == anomaly_dates(analyze(typed, limit=None), "date")
    assert len(dates) >= 4 and dates <= planted


def test_an_answer_and_a_polars_frame_are_read_too(retail):
    answer = retail.ask("revenue per day", offline=True)
    found = insights(retail, answer, limit=None)
    assert anomaly_dates(found, answer.result.df.columns[0]) >= {
        pd.Timestamp(a.day) for a in PLANTED_ANOMALIES
    }
    polars = pytest.importorskip("polars")
    series, planted = synthetic(4)
    found = insights(retail, polars.from_pandas(frame_of(series)), limit=None)
    assert anomaly_dates(found) <= planted and found.of_kind("trend")


def test_only_the_largest_members_get_their_own_series():
    from aiser_jupyter.analysis.analyze import MAX_MEMBERS

    rng = np.random.default_rng(8)
    index = pd.date_range("2024-01-01", periods=120, freq="D")
    parts = []
    for k in range(MAX_MEMBERS + 10):
        values = (1000 - 10 * k) * np.exp(rng.normal(0, 0.05, 120))
        if k == 0:
            values[40] *= 1.5  # the largest store: too little to move the total
        if k == MAX_MEMBERS + 9:
            values[80] *= 3.0  # the smallest, beyond the cap
        parts.append(pd.DataFrame({"day": index, "store": f"s{k:02d}", "sales": values}))
    found = analyze(pd.concat(parts), limit=None)
    assert {(i.where.get("store"), i.where["day"]) for i in found.of_kind("anomaly")} == {
        ("s00", index[40])
    }
