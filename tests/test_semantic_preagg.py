"""Rollup pre-aggregations: the same numbers as the raw tables, served only when they can be."""

from __future__ import annotations

import copy

import pandas as pd
import pytest
import yaml

import aiser_jupyter as aiser
from aiser_jupyter.semantic import preagg
from aiser_jupyter.semantic.loader import ModelError
from tests.test_semantic_query import hand, rows

with open("examples/model/retail.yml", encoding="utf-8") as file:
    RETAIL = yaml.safe_load(file)


def without_rollups() -> dict:
    model = copy.deepcopy(RETAIL)
    for cube in model["cubes"]:
        cube.pop("pre_aggregations", None)
    return model


@pytest.fixture
def retail():
    session = aiser.session()
    session.sources.load_sample()
    session.load_model(copy.deepcopy(RETAIL))
    return session


def raw_answer(session, query):
    rollups = session.model
    session.load_model(without_rollups())
    try:
        return session.query(query).df
    finally:
        session.semantic.model, session.semantic._rollups = rollups, preagg.rollups(rollups)


SERVED = [
    {"measures": ["orders.count", "orders.revenue"], "dimensions": ["customers.region"]},
    {
        "measures": ["orders.average_order_value", "orders.quantity"],
        "dimensions": ["orders.status", "products.category"],
    },
    {
        "measures": ["orders.revenue", "orders.cumulative_revenue"],
        "timeDimensions": [
            {
                "dimension": "orders.order_date",
                "granularity": "month",
                "dateRange": ["2024-01-01", "2024-06-30"],
            }
        ],
    },
    {
        "measures": ["orders.count"],
        "timeDimensions": [{"dimension": "orders.order_date", "granularity": "week"}],
        "limit": 500,
    },
    {
        "measures": ["orders.count"],
        "dimensions": ["orders.status"],
        "filters": [
            {"member": "products.category", "operator": "equals", "values": ["Toys", "Home"]},
            {"member": "orders.count", "operator": "gt", "values": ["1000"]},
        ],
    },
    {
        "measures": ["orders.buyers"],
        "dimensions": ["orders.status", "customers.region", "products.category"],
        "timeDimensions": [{"dimension": "orders.order_date", "granularity": "day"}],
        "limit": 100000,
    },
]


@pytest.mark.parametrize("query", SERVED, ids=range(len(SERVED)))
def test_rollup_serves_and_matches_the_raw_answer(retail, query):
    served = retail.query(query)
    assert served.pre_aggregation == "orders.daily_by_region"
    assert "pre-aggregation orders.daily_by_region" in served.caption()
    expected = raw_answer(retail, query)

    def ordered(frame):  # rows tied on the query's order may come in any order
        frame = pd.DataFrame(frame)
        return frame.sort_values(list(frame.columns)).reset_index(drop=True)

    pd.testing.assert_frame_equal(
        ordered(served.df), ordered(expected), check_dtype=False, check_exact=False, rtol=1e-9
    )


def test_rollup_answer_against_hand_written_sql(retail):
    served = retail.query(
        {
            "measures": ["orders.revenue"],
            "dimensions": ["customers.region"],
            "order": {"customers.region": "asc"},
        }
    )
    assert served.pre_aggregation is not None
    assert rows(served.df) == hand(
        retail,
        """SELECT c.region, sum(o.revenue) FROM orders o
        JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )


NOT_SERVED = {
    "count_distinct below the rollup's grain": {
        "measures": ["orders.buyers"],
        "dimensions": ["customers.region"],
    },
    "a dimension the rollup lacks": {
        "measures": ["orders.count"],
        "dimensions": ["customers.segment"],
    },
    "a date range that cuts days": {
        "measures": ["orders.count"],
        "timeDimensions": [
            {"dimension": "orders.order_date", "dateRange": ["2024-01-01T12:00:00", "2024-01-31"]}
        ],
    },
    "a segment": {"measures": ["orders.count"], "segments": ["orders.completed"]},
    "a measure not in the rollup": {"measures": ["orders.gross_margin"]},
    "a measure filter": {
        "measures": ["orders.count"],
        "filters": [{"member": "orders.completed_revenue", "operator": "measureFilter"}],
    },
    "ungrouped": {"measures": ["orders.count"], "dimensions": ["orders.status"], "ungrouped": True},
}


@pytest.mark.parametrize("query", NOT_SERVED.values(), ids=NOT_SERVED.keys())
def test_queries_a_rollup_cannot_answer_exactly_go_to_the_raw_tables(retail, query):
    result = retail.query(query)
    assert result.pre_aggregation is None
    assert rows(result.df) == rows(raw_answer(retail, query))


def test_refresh_key_sql_rebuilds_when_the_data_changes(retail, monkeypatch):
    monkeypatch.setattr(preagg, "REFRESH_CHECK_SECONDS", 0.0)
    model = copy.deepcopy(RETAIL)
    rollup = model["cubes"][0]["pre_aggregations"][0]
    rollup["refresh_key"] = {"sql": "SELECT count(*) FROM orders"}
    retail.load_model(model)
    query = {"measures": ["orders.count"]}
    before = retail.query(query).df["orders.count"].iloc[0]
    retail.sql("DELETE FROM orders WHERE status = 'cancelled'")
    after = retail.query(query)
    assert after.pre_aggregation is not None
    remaining = hand(retail, "SELECT count(*) FROM orders")[0][0]
    assert remaining < before
    assert after.df["orders.count"].iloc[0] == remaining


def test_without_a_refresh_key_change_the_rollup_is_reused(retail):
    query = {"measures": ["orders.count"]}
    first = retail.query(query).df["orders.count"].iloc[0]
    retail.sql("DELETE FROM orders WHERE status = 'cancelled'")
    # Within its 'every' window a rollup keeps serving what it was built from, as in Cube.
    assert retail.query(query).df["orders.count"].iloc[0] == first
    assert retail.semantic.refresh_pre_aggregations() == ["orders.daily_by_region", "products.copy"]
    assert (
        retail.query(query).df["orders.count"].iloc[0]
        == hand(retail, "SELECT count(*) FROM orders")[0][0]
    )


def test_a_changed_definition_rebuilds(retail):
    retail.query({"measures": ["orders.count"]})
    model = copy.deepcopy(RETAIL)
    model["cubes"][0]["pre_aggregations"][0]["dimensions"].append("customers.segment")
    retail.load_model(model)
    served = retail.query(
        {
            "measures": ["orders.count"],
            "dimensions": ["customers.segment"],
            "order": {"customers.segment": "asc"},
        }
    )
    assert served.pre_aggregation == "orders.daily_by_region"
    assert rows(served.df) == hand(
        retail,
        """SELECT c.segment, count(*) FROM orders o
        JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )


def test_a_file_cache_survives_the_session(tmp_path, monkeypatch):
    monkeypatch.setenv("AISER_PREAGGREGATION_CACHE", str(tmp_path / "rollups.duckdb"))
    first = aiser.session()
    first.sources.load_sample()
    first.load_model(copy.deepcopy(RETAIL))
    first.query({"measures": ["orders.count"]})
    built = first.semantic.preaggregations().state(first.semantic._rollups[0])[2]
    first.close()

    from aiser_jupyter.sessions import Session

    second = Session()
    second.sources.load_sample()
    second.load_model(copy.deepcopy(RETAIL))
    served = second.query({"measures": ["orders.count"]})
    assert served.pre_aggregation is not None
    assert second.semantic.preaggregations().state(second.semantic._rollups[0])[2] == built
    second.semantic.preaggregations().engine.close()


def test_rollup_built_from_postgres_is_served_locally(retail, pg_retail):
    aiser.connect(pg_retail, name="pg")
    query = {
        "measures": ["orders.revenue"],
        "dimensions": ["customers.region"],
        "order": {"customers.region": "asc"},
    }
    served = retail.query(query, connection="pg")
    assert served.pre_aggregation == "orders.daily_by_region"
    assert served.connection == "pre-aggregations"
    assert rows(served.df) == hand(
        retail,
        """SELECT c.region, sum(o.revenue) FROM orders o
        JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )


def test_broken_rollups_are_model_errors():
    model = copy.deepcopy(RETAIL)
    model["cubes"][0]["pre_aggregations"][0]["measures"].append("nope")
    with pytest.raises(ModelError, match="no member 'nope'"):
        aiser.model(model)
    model = copy.deepcopy(RETAIL)
    model["cubes"][0]["pre_aggregations"][0]["refresh_key"] = {"every": "soon"}
    with pytest.raises(ModelError, match="refresh_key"):
        aiser.model(model)


def test_original_sql_copy_answers_queries_on_its_cube_alone(retail):
    served = retail.query(
        {
            "measures": ["products.average_price", "products.cheapest"],
            "dimensions": ["products.category"],
            "order": {"products.category": "asc"},
        }
    )
    assert served.pre_aggregation == "products.copy"
    assert rows(served.df) == hand(
        retail,
        """SELECT category, avg(unit_price), min(unit_price)
        FROM products GROUP BY 1 ORDER BY 1""",
    )
    joined = retail.query({"measures": ["products.count"], "dimensions": ["orders.status"]})
    assert joined.pre_aggregation is None


def test_incremental_refresh_rebuilds_only_the_update_window(retail, monkeypatch):
    from datetime import date, datetime

    monkeypatch.setattr(preagg, "REFRESH_CHECK_SECONDS", 0.0)
    days = (date.today() - date(2024, 7, 15)).days  # the window opens in July 2024
    model = copy.deepcopy(RETAIL)
    rollup = model["cubes"][0]["pre_aggregations"][0]
    rollup["partition_granularity"] = "month"
    rollup["refresh_key"] = {
        "sql": "SELECT count(*) FROM orders",
        "incremental": True,
        "update_window": f"{days} day",
    }
    retail.load_model(model)
    by_year = {
        "measures": ["orders.count"],
        "timeDimensions": [{"dimension": "orders.order_date", "granularity": "year"}],
    }
    before = dict(rows(retail.query(by_year).df))
    # Orders change on both sides of the window; only the window's partitions are rebuilt.
    retail.sql("DELETE FROM orders WHERE order_date IN ('2023-03-01', '2024-10-01')")
    after = retail.query(by_year)
    assert after.pre_aggregation == "orders.daily_by_region"
    raw = dict(
        hand(
            retail,
            """SELECT date_trunc('year', order_date)::TIMESTAMP, count(*)
        FROM orders GROUP BY 1""",
        )
    )
    y2023, y2024 = datetime(2023, 1, 1), datetime(2024, 1, 1)
    assert dict(rows(after.df))[y2024] == raw[y2024] < before[y2024]  # inside: refreshed
    assert dict(rows(after.df))[y2023] == before[y2023] > raw[y2023]  # outside: kept as built
    assert retail.semantic.refresh_pre_aggregations()  # a forced refresh rebuilds every partition
    assert dict(rows(retail.query(by_year).df)) == raw


def test_incremental_needs_partitions():
    model = copy.deepcopy(RETAIL)
    model["cubes"][0]["pre_aggregations"][0]["refresh_key"] = {
        "every": "1 hour",
        "incremental": True,
    }
    with pytest.raises(ModelError, match="partition_granularity"):
        aiser.model(model)


def test_approximate_distinct_counts_merge_across_the_rollups_groups(retail):
    served = retail.query(
        {
            "measures": ["orders.approximate_buyers"],
            "dimensions": ["customers.region"],
            "order": {"customers.region": "asc"},
        }
    )
    assert served.pre_aggregation == "orders.daily_by_region"  # coarser than the rollup
    exact = hand(
        retail,
        """SELECT c.region, count(DISTINCT o.customer_id) FROM orders o
        JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )
    assert rows(served.df) == exact
    raw = raw_answer(
        retail,
        {
            "measures": ["orders.approximate_buyers"],
            "dimensions": ["customers.region"],
            "order": {"customers.region": "asc"},
        },
    )
    for (_, sketch), (_, estimate) in zip(exact, rows(raw), strict=True):
        assert estimate == pytest.approx(sketch, rel=0.1)  # the raw path estimates
