"""The offline planner: plain questions over the sample data, each answered through the model
and checked against hand-written SQL over the raw tables (customers, products, orders)."""

from __future__ import annotations

import datetime as dt
import math

import pytest

import aiser_jupyter as aiser
from aiser_jupyter.agent.planner import Plan, ValueIndex, plan_question
from aiser_jupyter.agent.vocabulary import stem

MODEL = "examples/model/retail.yml"
JOINED = "orders o JOIN customers c USING (customer_id) JOIN products p USING (product_id)"


@pytest.fixture
def retail():
    session = aiser.session()
    session.sources.load_sample()
    model = session.load_model(MODEL)
    values = ValueIndex.build(model, lambda q: session.query(q).to_arrow())
    return session, model, values


def rows(result) -> list[tuple]:
    return [tuple(_plain(v) for v in row.values()) for row in result.to_arrow().to_pylist()]


def _plain(value):
    if isinstance(value, dt.datetime):
        return value.date() if value.time() == dt.time() else value
    return value


def same(got: list[tuple], want: list[tuple]) -> bool:
    """Equal rows in the same order; floats equal to 1e-9 (sums may add in another order)."""
    if len(got) != len(want):
        return False
    for a, b in zip(got, want, strict=True):
        if len(a) != len(b):
            return False
        for x, y in zip(a, b, strict=True):
            if isinstance(x, float) or isinstance(y, float):
                if not math.isclose(float(x), float(y), rel_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


def answer(session, plan: Plan) -> list[tuple]:
    return rows(session.query(plan.query))


def hand(session, sql: str) -> list[tuple]:
    return rows(session.sql(sql))


MONTH_2024 = "order_date BETWEEN DATE '2024-01-01' AND DATE '2024-12-31'"
QUESTIONS = [
    ("total revenue", "SELECT sum(revenue) FROM orders"),
    ("how many orders", "SELECT count(*) FROM orders"),
    ("How many customers do we have?", "SELECT count(*) FROM customers"),
    (
        "revenue by region",
        "SELECT c.region, sum(revenue) FROM orders JOIN customers c USING (customer_id) "
        "GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "revenue per month in 2024",
        f"SELECT date_trunc('month', order_date), sum(revenue) FROM orders WHERE {MONTH_2024} "
        "GROUP BY 1 ORDER BY 1",
    ),
    (
        "orders by quarter",
        "SELECT date_trunc('quarter', order_date), count(*) FROM orders GROUP BY 1 ORDER BY 1",
    ),
    (
        "revenue in March 2024",
        "SELECT sum(revenue) FROM orders WHERE order_date >= DATE '2024-03-01' "
        "AND order_date < DATE '2024-04-01'",
    ),
    (
        "top 5 products by revenue",
        "SELECT product_id, sum(revenue) FROM orders GROUP BY 1 ORDER BY 2 DESC LIMIT 5",
    ),
    (
        "worst 3 regions by revenue",
        "SELECT c.region, sum(revenue) FROM orders JOIN customers c USING (customer_id) "
        "GROUP BY 1 ORDER BY 2 ASC LIMIT 3",
    ),
    (
        "revenue for enterprise customers",
        "SELECT sum(revenue) FROM orders JOIN customers c USING (customer_id) "
        "WHERE c.segment = 'enterprise'",
    ),
    ("how many completed orders", "SELECT count(*) FROM orders WHERE status = 'completed'"),
    (
        "revenue excluding returned orders",
        "SELECT sum(revenue) FROM orders WHERE status <> 'returned'",
    ),
    (
        "average order value by segment",
        "SELECT c.segment, sum(revenue) / count(*) FROM orders "
        "JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "average price by category",
        "SELECT category, avg(unit_price) FROM products GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "buyers per year",
        "SELECT date_trunc('year', order_date), count(DISTINCT customer_id) FROM orders "
        "GROUP BY 1 ORDER BY 1",
    ),
    (
        "units sold by category",
        "SELECT p.category, sum(quantity) FROM orders JOIN products p USING (product_id) "
        "GROUP BY 1 ORDER BY 2 DESC",
    ),
    ("sales by status", "SELECT status, sum(revenue) FROM orders GROUP BY 1 ORDER BY 2 DESC"),
    (
        "monthly orders in 2023",
        "SELECT date_trunc('month', order_date), count(*) FROM orders "
        "WHERE year(order_date) = 2023 GROUP BY 1 ORDER BY 1",
    ),
    (
        "revenue between 2024-01-01 and 2024-03-31",
        "SELECT sum(revenue) FROM orders "
        "WHERE order_date BETWEEN DATE '2024-01-01' AND DATE '2024-03-31'",
    ),
    (
        "revenue since 2024-07-01",
        "SELECT sum(revenue) FROM orders WHERE order_date >= DATE '2024-07-01'",
    ),
    (
        "how many customers signed up per year",
        "SELECT date_trunc('year', signup_date), count(*) FROM customers GROUP BY 1 ORDER BY 1",
    ),
    (
        "revenue by category in the West",
        f"SELECT p.category, sum(revenue) FROM {JOINED} WHERE c.region = 'West' "
        "GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "completed revenue by region",
        "SELECT c.region, sum(revenue) FILTER (WHERE status = 'completed') FROM orders "
        "JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "number of orders by size",
        "SELECT CASE WHEN quantity >= 10 THEN 'bulk' WHEN quantity >= 3 THEN 'medium' "
        "ELSE 'single' END, count(*) FROM orders GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "top 3 categories by quantity in 2024",
        f"SELECT p.category, sum(quantity) FROM orders JOIN products p USING (product_id) "
        f"WHERE {MONTH_2024} GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
    ),
    (
        "revenue by region and segment",
        "SELECT c.region, c.segment, sum(revenue) FROM orders "
        "JOIN customers c USING (customer_id) GROUP BY 1, 2 ORDER BY 3 DESC",
    ),
    (
        "weekly revenue in March 2024",
        "SELECT date_trunc('week', order_date), sum(revenue) FROM orders "
        "WHERE order_date BETWEEN DATE '2024-03-01' AND DATE '2024-03-31' GROUP BY 1 ORDER BY 1",
    ),
    ("how many products in Toys", "SELECT count(*) FROM products WHERE category = 'Toys'"),
    (
        "gross margin by category",
        "SELECT p.category, sum(revenue - quantity * p.unit_cost) FROM orders "
        "JOIN products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "revenue by region for Electronics and Toys",
        f"SELECT c.region, sum(revenue) FROM {JOINED} "
        "WHERE p.category IN ('Electronics', 'Toys') GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "Which region has the most orders?",
        "SELECT c.region, count(*) FROM orders JOIN customers c USING (customer_id) "
        "GROUP BY 1 ORDER BY 2 DESC LIMIT 1",
    ),
    (
        "customers by region",
        "SELECT region, count(*) FROM customers GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "revenue 2023 vs 2024",
        "SELECT date_trunc('year', order_date), sum(revenue) FROM orders GROUP BY 1 ORDER BY 1",
    ),
    (
        "revenue in Q4 2024 by region",
        "SELECT c.region, sum(revenue) FROM orders JOIN customers c USING (customer_id) "
        "WHERE order_date BETWEEN DATE '2024-10-01' AND DATE '2024-12-31' "
        "GROUP BY 1 ORDER BY 2 DESC",
    ),
    (
        "how many enterprise customers",
        "SELECT count(*) FROM customers WHERE segment = 'enterprise'",
    ),
    ("how many clients in the North", "SELECT count(*) FROM customers WHERE region = 'North'"),
    (
        "revenue from customers other than enterprise",
        "SELECT sum(revenue) FROM orders JOIN customers c USING (customer_id) "
        "WHERE c.segment <> 'enterprise'",
    ),
    ("What is the average price of our products?", "SELECT avg(unit_price) FROM products"),
    (
        "revenue over time",
        "SELECT date_trunc('month', order_date), sum(revenue) FROM orders GROUP BY 1 ORDER BY 1",
    ),
    (
        "how many orders were returned or cancelled",
        "SELECT count(*) FROM orders WHERE status IN ('returned', 'cancelled')",
    ),
]


@pytest.mark.parametrize(("question", "sql"), QUESTIONS, ids=[q for q, _ in QUESTIONS])
def test_plain_question_matches_hand_written_sql(retail, question, sql):
    session, model, values = retail
    plan = plan_question(question, model, values)
    assert plan.status == "answered", plan.explain()
    assert plan.not_understood == [], plan.explain()
    assert same(answer(session, plan), hand(session, sql)), plan.explain()


def test_the_question_set_is_big_enough():
    assert len(QUESTIONS) >= 25


def test_it_says_what_it_understood(retail):
    _, model, values = retail
    plan = plan_question("revenue per month in 2024 for enterprise customers", model, values)
    assert plan.understood == [
        "measure: Revenue (orders.revenue)",
        "grouped by month of Order Date (orders.order_date)",
        "date range: 2024 on Order Date",
        "filter: Segment (customers.segment) = enterprise",
    ]
    text = plan.explain()
    assert text.startswith("Answered offline")
    assert "Not understood" not in text


def test_a_word_it_cannot_use_means_no_answer(retail):
    _, model, values = retail
    plan = plan_question("revenue by region for unicorns", model, values)
    assert plan.status == "clarify"
    assert plan.not_understood == ["unicorns"]
    assert "'unicorns'" in plan.reason
    assert "Not understood: unicorns" in plan.explain()
    assert "revenue by region" in plan.suggestions
    for suggestion in plan.suggestions:
        assert plan_question(suggestion, model, values).status == "answered"


def test_descriptions_match_but_never_swallow_a_word(retail):
    _, model, values = retail
    plan = plan_question("discounts", model, values)  # orders.revenue: "Revenue after discounts"
    assert plan.status != "answered"
    assert "revenue" in plan.suggestions  # a description is a suggestion, never a meaning
    plan = plan_question("revenue by discount", model, values)  # no discount dimension
    assert plan.status == "unanswerable"
    assert plan.not_understood == ["discount"]
    assert plan.suggestions


def test_nonsense_is_not_answered_with_a_guess(retail):
    _, model, values = retail
    plan = plan_question("what is the meaning of life", model, values)
    assert plan.status == "clarify"
    assert plan.not_understood == ["meaning", "life"]
    assert plan.query == {}
    assert plan.explain().startswith("Not answered (clarify)")
    assert not any(ch.isdigit() for ch in plan.reason)
    assert 1 <= len(plan.suggestions) <= 3


def test_an_average_the_model_lacks_is_not_invented(retail):
    _, model, values = retail
    plan = plan_question("average revenue", model, values)
    assert plan.status == "unanswerable"
    assert plan.not_understood == [
        "average revenue (the model has no average of Revenue; none was made up)"
    ]
    assert plan.suggestions


def test_follow_ups_refine_the_previous_answer(retail):
    session, model, values = retail
    first = plan_question("revenue by region in 2024", model, values)
    by_month = plan_question("now by month", model, values, previous=first)
    assert by_month.query["dimensions"] == []
    assert by_month.query["timeDimensions"] == [
        {
            "dimension": "orders.order_date",
            "granularity": "month",
            "dateRange": ["2024-01-01", "2024-12-31"],
        }
    ]
    assert (
        by_month.understood[0]
        == "follow-up of the previous question: kept its measures, date range"
    )
    only = plan_question("only enterprise", model, values, previous=by_month)
    assert same(
        answer(session, only),
        hand(
            session,
            "SELECT date_trunc('month', order_date), sum(revenue) FROM orders "
            f"JOIN customers c USING (customer_id) WHERE c.segment = 'enterprise' AND {MONTH_2024} "
            "GROUP BY 1 ORDER BY 1",
        ),
    )
    regions = plan_question("and by region", model, values, previous=only)
    assert regions.query["dimensions"] == ["orders.region"]
    assert regions.query["timeDimensions"][0]["granularity"] == "month"
    top = plan_question(
        "top 3 instead", model, values, previous=plan_question("revenue by region", model, values)
    )
    assert same(
        answer(session, top),
        hand(
            session,
            "SELECT c.region, sum(revenue) FROM orders JOIN customers c USING (customer_id) "
            "GROUP BY 1 ORDER BY 2 DESC LIMIT 3",
        ),
    )
    other = plan_question("what about orders", model, values, previous=first)
    assert other.query["measures"] == ["orders.count"]
    assert other.query["dimensions"] == ["orders.region"]
    fresh = plan_question("how many customers", model, values, previous=first)
    assert fresh.query == {"measures": ["customers.count"], "dimensions": []}


def test_a_relative_range_outside_the_data_is_not_answered(retail):
    session, model, values = retail
    question = "orders per day in the last 90 days"
    plan = plan_question(question, model, values, today=dt.date(2026, 12, 5))
    assert plan.status == "clarify"
    assert "runs from 2023-01-01 to 2024-12-31" in plan.reason
    assert plan.suggestions[0] == "orders per day between 2024-10-03 and 2024-12-31"
    anchored = plan_question(question, model, values, today=dt.date(2025, 1, 1))
    assert anchored.status == "answered"
    assert anchored.query["timeDimensions"][0]["dateRange"] == ["2024-10-03", "2024-12-31"]
    assert same(
        answer(session, anchored),
        hand(
            session,
            "SELECT date_trunc('day', order_date), count(*) FROM orders "
            "WHERE order_date BETWEEN DATE '2024-10-03' AND DATE '2024-12-31' "
            "GROUP BY 1 ORDER BY 1",
        ),
    )


def test_values_need_the_value_index(retail):
    _, model, _ = retail
    plan = plan_question("revenue for enterprise customers", model)
    assert plan.status == "clarify"
    assert "enterprise" in plan.not_understood


def test_glossary_terms_are_the_users_own_words(retail):
    _, model, values = retail
    glossary = [("big accounts", "enterprise customers"), ("takings", "orders.revenue")]
    plan = plan_question("takings from big accounts", model, values, glossary=glossary)
    assert plan.query["measures"] == ["orders.revenue"]
    assert plan.query["filters"] == [
        {"member": "customers.segment", "operator": "equals", "values": ["enterprise"]}
    ]
    assert "glossary: 'big accounts' means 'enterprise customers'" in plan.understood


def test_planning_runs_no_query_and_is_deterministic(retail):
    session, model, values = retail
    before = len(session.history)
    plans = [plan_question("top 5 products by revenue in 2024", model, values) for _ in range(2)]
    assert len(session.history) == before
    assert plans[0] == plans[1]


def test_automodel_path(tmp_path):
    """No model written by hand: the automodel's model answers plain questions too."""
    session = aiser.session()
    session.sources.load_sample()
    path = tmp_path / "auto.yml"
    session.semantic.auto_model(path=str(path))
    model = session.load_model(path)
    values = ValueIndex.build(model, lambda q: session.query(q).to_arrow())
    plan = plan_question("how many orders", model, values)
    assert plan.status == "answered"
    assert same(answer(session, plan), hand(session, "SELECT count(*) FROM orders"))
    plan = plan_question("average revenue by status in the US", model, values)
    assert plan.query["measures"] == ["orders.revenue_avg"]
    assert same(
        answer(session, plan),
        hand(
            session,
            "SELECT status, avg(revenue) FROM orders JOIN customers c USING (customer_id) "
            "WHERE c.country = 'US' GROUP BY 1 ORDER BY 2 DESC",
        ),
    )
    plan = plan_question("top 3 products by revenue", model, values)
    assert same(
        answer(session, plan),
        hand(
            session,
            "SELECT p.name, product_id, sum(revenue) FROM orders JOIN products p "
            "USING (product_id) GROUP BY 1, 2 ORDER BY 3 DESC LIMIT 3",
        ),
    )


def test_value_index_keeps_small_string_dimensions_only(retail):
    _, _, values = retail
    assert sorted(values.values["customers.segment"]) == ["consumer", "enterprise", "smb"]
    assert "customers.email" not in values.values  # pii, and too many values
    assert values.time_bounds["orders.order_date"] == (dt.date(2023, 1, 1), dt.date(2024, 12, 31))


@pytest.mark.parametrize(
    ("a", "b"),
    [
        ("categories", "category"),
        ("returned", "returns"),
        ("cancelled", "cancellation"),
        ("orders", "order"),
        ("statuses", "status"),
        ("avg", "average"),
        ("prices", "pricing"),
    ],
)
def test_simple_stems_match(a, b):
    assert stem(a) == stem(b)
