"""Lineage of members and results; profiles against hand-written SQL; each data check passing
and failing on crafted data; personal data masked before it reaches a language model."""

from __future__ import annotations

import hashlib
import json

import pytest
from governance_model import ADMIN, NORTH, governed_session, rows

from aiser_jupyter.agent.tools import rows_text
from aiser_jupyter.config import home
from aiser_jupyter.governance.checks import Check, CheckError
from aiser_jupyter.governance.lineage import COLUMN
from aiser_jupyter.security.context import AccessDenied
from aiser_jupyter.sessions import Session


@pytest.fixture
def retail_gov():
    session = Session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    return session


def test_lineage_of_a_measure_and_a_derived_one(retail_gov):
    assert retail_gov.governance.lineage("orders.revenue").sources == {
        "orders.revenue": ["orders.revenue"]
    }
    derived = retail_gov.governance.lineage("orders.average_order_value")
    assert derived.sources == {"orders.average_order_value": ["orders.order_id", "orders.revenue"]}
    assert ("orders.revenue", "orders.average_order_value") in derived.edges
    assert ("orders.order_id" + COLUMN, "orders.count") in derived.edges
    margin = retail_gov.governance.lineage("orders.gross_margin").sources["orders.gross_margin"]
    assert margin == ["orders.quantity", "orders.revenue", "products.unit_cost"]


def test_lineage_through_joins_and_of_results(retail_gov):
    assert retail_gov.governance.lineage("orders.region").sources == {
        "orders.region": ["customers.region"]
    }
    result = retail_gov.query(
        {
            "measures": ["orders.completed_revenue"],
            "dimensions": ["products.category"],
            "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
        }
    )
    graph = retail_gov.governance.lineage(result)
    assert graph.sources == {
        "products.category": ["products.category"],
        "orders.order_date.month": ["orders.order_date"],
        "orders.completed_revenue": ["orders.revenue", "orders.status"],  # its filter reads status
    }
    raw = retail_gov.sql(
        "SELECT c.segment, sum(o.quantity * o.unit_price) AS gross FROM orders o "
        "JOIN customers c ON c.customer_id = o.customer_id GROUP BY 1"
    )
    assert retail_gov.governance.lineage(raw).sources == {
        "segment": ["customers.segment"],
        "gross": ["orders.quantity", "orders.unit_price"],
    }
    assert retail_gov.governance.lineage(raw, "gross").sources == {
        "gross": ["orders.quantity", "orders.unit_price"]
    }


def test_lineage_as_a_graph_and_a_tree(retail_gov):
    graph = retail_gov.governance.lineage("orders.average_order_value")
    option = json.loads(json.dumps(graph.echarts()))
    series = option["series"][0]
    assert series["type"] == "graph"
    names = {node["name"] for node in series["data"]}
    assert names == {
        "orders.average_order_value",
        "orders.revenue",
        "orders.count",
        "orders.revenue" + COLUMN,
        "orders.order_id" + COLUMN,
    }
    assert {(link["source"], link["target"]) for link in series["links"]} == set(graph.edges)
    assert graph.tree().splitlines()[0] == "orders.average_order_value"
    assert "orders.order_id (column)" in graph._repr_html_()
    assert list(graph.frame()["column"]) == ["order_id", "revenue"]


def test_profile_against_hand_sql(retail_gov):
    retail_gov.sql(
        "CREATE TABLE people AS SELECT * FROM (VALUES (1, 'a', 10.0), (2, 'b', NULL),"
        " (3, 'a', 30.0), (4, NULL, 40.0), (5, 'a', 50.0)) AS t(id, tag, score)"
    )
    profile = retail_gov.governance.profile("people")
    assert profile.rows == 5 and profile.suspected_keys == ["id"]
    tag, score = profile.column("tag"), profile.column("score")
    assert (tag.nulls, tag.distinct, tag.min, tag.max) == (1, 2, "a", "b")
    assert tag.top == [("a", 3), ("b", 1)]
    assert (score.nulls, score.distinct, float(score.min), float(score.max)) == (1, 4, 10.0, 50.0)
    assert sum(n for _, _, n in score.histogram) == 4
    assert score.histogram[0][2] == 1 and score.histogram[-1][2] == 1  # 10 and 50 at the ends

    orders = retail_gov.governance.profile("orders")
    ((count, nulls, distinct, low, high),) = rows(
        retail_gov,
        "SELECT count(*), count(*) - count(status), count(DISTINCT customer_id),"
        " min(order_date), max(order_date) FROM orders",
    )
    assert orders.rows == count and orders.column("status").nulls == nulls
    assert orders.column("customer_id").distinct == distinct
    assert (orders.column("order_date").min, orders.column("order_date").max) == (low, high)
    top = rows(retail_gov, "SELECT status, count(*) FROM orders GROUP BY 1")
    assert sorted(orders.column("status").top) == top
    assert orders.suspected_keys == ["order_id"]
    assert "suspected keys: order_id" in orders._repr_html_()


def crafted(session):
    session.sql(
        "CREATE TABLE q AS SELECT * FROM (VALUES"
        " (1, 1, 'a', 1, now() - INTERVAL 1 HOUR), (2, 1, 'b', 5, now() - INTERVAL 2 HOUR),"
        " (3, 2, 'x', 10, now() - INTERVAL 3 HOUR), (4, 3, NULL, -1, now() - INTERVAL 4 HOUR),"
        " (5, 4, 'a', 3, now() - INTERVAL 5 HOUR)) AS t(id, dup, status, amount, ts)"
    )


@pytest.mark.parametrize(
    ("passing", "failing", "failing_rows"),
    [
        (Check("not_null", "q", "id"), Check("not_null", "q", "status"), 1),
        (Check("unique", "q", "id"), Check("unique", "q", "dup"), 1),
        (
            Check("accepted_values", "q", "status", options={"values": ["a", "b", "x"]}),
            Check("accepted_values", "q", "status", options={"values": ["a", "b"]}),
            1,
        ),
        (
            Check("range", "q", "amount", options={"min": -1, "max": 10}),
            Check("range", "q", "amount", options={"min": 0, "max": 5}),
            2,
        ),
        (
            Check("freshness", "q", "ts", options={"max_age": "2h"}),
            Check("freshness", "q", "ts", options={"max_age": "30m"}),
            1,
        ),
        (
            Check("row_count", "q", options={"min": 5, "max": 5}),
            Check("row_count", "q", options={"min": 6}),
            1,
        ),
    ],
)
def test_each_check_passes_and_fails(retail_gov, passing, failing, failing_rows):
    crafted(retail_gov)
    report = retail_gov.governance.check([passing, failing])
    assert [r.passed for r in report.results] == [True, False]
    assert report.failures[0].failing == failing_rows
    assert report.results[0].total == 5
    assert not report.passed
    assert "✗ fail" in report._repr_html_() and "✓ pass" in report._repr_html_()
    with pytest.raises(CheckError, match="1 data check"):
        report.raise_on_failure()


def test_row_count_change(retail_gov):
    crafted(retail_gov)
    check = Check("row_count", "q", options={"max_change": 0.2})
    first = retail_gov.governance.check(check).results[0]
    assert first.passed and "first count" in first.detail
    assert retail_gov.governance.check(check).results[0].passed
    retail_gov.sql("INSERT INTO q SELECT id + 5, dup, status, amount, ts FROM q")
    grown = retail_gov.governance.check(check).results[0]
    assert not grown.passed and "was 5" in grown.detail and "+100%" in grown.detail


def test_checks_declared_in_the_model(retail_gov):
    session = governed_session()
    session.governance.set_context(ADMIN)  # a policy model is closed to no one in particular
    report = session.governance.check(cube="orders")
    assert [(r.check.kind, r.check.target, r.passed) for r in report.results] == [
        ("not_null", "orders.status", True),
        ("accepted_values", "orders.status", True),
        ("range", "orders.quantity", True),
    ]
    (total,) = rows(session, "SELECT count(*) FROM orders")[0]
    assert report.results[0].total == total


def test_declared_check_failing_and_bad_checks(retail_gov):
    model = {
        "cubes": [
            {
                "name": "orders",
                "sql_table": "orders",
                "meta": {"checks": [{"row_count": {"max": 10}}]},
                "dimensions": [
                    {"name": "order_id", "sql": "order_id", "type": "number", "primary_key": True},
                    {
                        "name": "quantity",
                        "sql": "quantity",
                        "type": "number",
                        "meta": {"checks": [{"range": {"max": 10}}]},
                    },
                ],
            }
        ]
    }
    retail_gov.load_model(model)
    report = retail_gov.governance.check()
    (over,) = rows(retail_gov, "SELECT count(*) FROM orders WHERE quantity > 10")
    assert [r.passed for r in report.results] == [False, False]
    assert report.results[1].failing == over[0]
    with pytest.raises(CheckError, match="unknown check 'sorted'"):
        Check("sorted", "q", "id")
    with pytest.raises(CheckError, match="needs 'max_age'"):
        crafted(retail_gov)
        retail_gov.governance.check(Check("freshness", "q", "ts"))


def test_checks_of_members_run_within_the_tenant():
    session = governed_session()
    session.governance.set_context(NORTH)
    report = session.governance.check(Check("not_null", member="customers.region"))
    (north,) = rows(session, "SELECT count(*) FROM customers WHERE region = 'North'")
    assert report.results[0].total == north[0]
    with pytest.raises(AccessDenied):
        session.governance.profile("customers")
    with pytest.raises(AccessDenied):
        session.governance.check(Check("not_null", "customers", "email"))


def test_personal_data_masked_for_the_model(retail_gov):
    raw = retail_gov.sql("SELECT customer_id, email, region FROM customers ORDER BY 1 LIMIT 5")
    emails = list(raw.df["email"])
    masked = retail_gov.governance.mask_for_model(raw)
    salt = (home() / "mask.salt").read_text().strip()
    hashed = [hashlib.md5((salt + e).encode()).hexdigest() for e in emails]
    assert list(masked.df["email"]) == hashed
    assert list(raw.df["email"]) == emails  # the user's own result is untouched
    text = rows_text(masked)
    assert not any(e in text for e in emails)
    assert text.splitlines()[1] == "customer_id,email,region"
    assert retail_gov.governance.mask_for_model(raw, allow_pii=True) is raw

    semantic = retail_gov.query({"dimensions": ["customers.email"], "limit": 3})
    assert all("@" in e for e in semantic.df["customers.email"])  # the owner sees it
    assert all(
        "@" not in e for e in retail_gov.governance.mask_for_model(semantic).df["customers.email"]
    )


def test_already_masked_results_are_not_masked_twice():
    session = governed_session()
    result = session.query({"dimensions": ["customers.email"], "limit": 3}, context=NORTH)
    assert session.governance.mask_for_model(result) is result


def test_lineage_on_a_policy_model_follows_visibility():
    session = governed_session()
    assert session.governance.lineage("orders.region").sources == {
        "orders.region": ["customers.region"]
    }
    session.governance.set_context(NORTH)
    assert session.governance.lineage("customers.email").sources == {
        "customers.email": ["customers.email"]
    }
    with pytest.raises(AccessDenied, match="segment"):
        session.governance.lineage("customers.segment")
