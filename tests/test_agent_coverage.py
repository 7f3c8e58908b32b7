"""With a model, the same guarantees as offline: a semantic query runs only when it covers the
planner's reading of the question; one repair round, then the user is asked, with no numbers.

The first tests drive litellm's real client against tools/fake_llm.py's loopback server (the
fixtures of test_agent_model) over the sample retail data; expected numbers come from SQL on
the raw tables. The last ones check `coverage_gaps` itself on pairs of queries.
"""

from __future__ import annotations

import json
import re
from datetime import datetime

import pytest
from test_agent_model import REVENUE_BY_REGION, last_tool_result, llm, raw, retail  # noqa: F401

from aiser_jupyter.agent.coverage import coverage_gaps, phrasing
from aiser_jupyter.agent.planner import plan_question
from tools.fake_llm import Call

ENTERPRISE_2024 = "revenue for enterprise customers in 2024"
YEAR_2024 = {"dimension": "orders.order_date", "dateRange": ["2024-01-01", "2024-12-31"]}
NO_SEGMENT = {"measures": ["orders.revenue"], "timeDimensions": [YEAR_2024]}
WITH_SEGMENT = {
    **NO_SEGMENT,
    "filters": [{"member": "customers.segment", "operator": "equals", "values": ["enterprise"]}],
}
SEGMENT_GAP = "filter customers.segment = enterprise is missing"
BY_REGION_SQL = (
    "SELECT region, sum(revenue) FROM orders JOIN customers USING (customer_id) GROUP BY 1"
)


def gaps_sent(body: dict) -> list[str]:
    """The gaps listed in the tool result the model was sent last (one per "- " line)."""
    error = last_tool_result(body)["error"]
    assert error.startswith("Not run:")
    return [line[2:] for line in error.splitlines() if line.startswith("- ")]


def tool_oks(answer) -> list[bool]:
    return [step.ok for step in answer.steps if step.kind == "tool"]


def by_region(session) -> dict[str, float]:
    return dict(raw(session, BY_REGION_SQL))


def test_a_dropped_filter_is_sent_back_and_repaired(retail, llm):  # noqa: F811
    (expected,) = raw(
        retail,
        "SELECT sum(o.revenue) FROM orders o JOIN customers c USING (customer_id) "
        "WHERE c.segment = 'enterprise' AND o.order_date BETWEEN '2024-01-01' AND '2024-12-31'",
    )[0]

    def repair(body):
        assert gaps_sent(body) == [SEGMENT_GAP]
        return Call("run_semantic_query", {"query": WITH_SEGMENT})

    def answer(body):
        value = float(last_tool_result(body)["tool_result"].splitlines()[2])
        return f"Enterprise customers brought ${value:,.2f} of revenue in 2024."

    llm.script(Call("run_semantic_query", {"query": NO_SEGMENT}), repair, answer)
    result = retail.ask(ENTERPRISE_2024)
    assert result.status == "answered"
    assert tool_oks(result) == [False, True]  # the uncovered query did not run
    assert result.query == WITH_SEGMENT
    assert result.df.iloc[0, 0] == pytest.approx(expected)
    assert result.text == f"Enterprise customers brought ${expected:,.2f} of revenue in 2024."
    assert result.notes == []


def test_an_anchored_today_reads_the_same_with_a_model(retail, llm):  # noqa: F811
    """AISER_TODAY anchors "last quarter" for the model path's check as for the planner: the
    model's query with the anchored quarter's dates covers the question; real today's not."""
    retail.settings.today = "2025-01-15"
    q4 = {"dimension": "orders.order_date", "dateRange": ["2024-10-01", "2024-12-31"]}
    q3 = {"dimension": "orders.order_date", "dateRange": ["2024-07-01", "2024-09-30"]}
    (expected,) = raw(
        retail,
        "SELECT sum(revenue) FROM orders WHERE order_date BETWEEN '2024-10-01' AND '2024-12-31'",
    )[0]

    def repair(body):
        assert gaps_sent(body) == [
            "period 2024-10-01 to 2024-12-31 on orders.order_date is missing",
            "period 2024-07-01 to 2024-09-30 on orders.order_date was not asked for",
        ]
        return Call(
            "run_semantic_query",
            {"query": {"measures": ["orders.revenue"], "timeDimensions": [q4]}},
        )

    llm.script(
        Call(
            "run_semantic_query",
            {"query": {"measures": ["orders.revenue"], "timeDimensions": [q3]}},
        ),
        repair,
        lambda body: "Revenue last quarter: see the table.",
    )
    try:
        result = retail.ask("revenue last quarter")
    finally:
        retail.settings.today = ""
    assert result.status == "answered"
    assert tool_oks(result) == [False, True]
    assert result.df.iloc[0, 0] == pytest.approx(expected)


def test_a_filter_dropped_twice_asks_the_user_with_no_numbers(retail, llm):  # noqa: F811
    def again(body):
        assert gaps_sent(body) == [SEGMENT_GAP]
        return Call("run_semantic_query", {"query": NO_SEGMENT})

    def gives_up(body):
        assert gaps_sent(body) == [SEGMENT_GAP]
        assert "Do not query again" in last_tool_result(body)["error"]
        return "Revenue in 2024 was $6,123,456.78."

    llm.script(Call("run_semantic_query", {"query": NO_SEGMENT}), again, gives_up)
    result = retail.ask(ENTERPRISE_2024)
    assert result.status == "clarify"
    assert result.result is None and result.df is None and result.chart is None
    assert result.sql is None and result.query is None
    assert not re.search(r"\d", result.text)
    assert "filter on customers.segment" in result.text
    assert f"Not matched: {SEGMENT_GAP}" in result.notes
    # the suggestion is the planner's reading of the question, in words it reads back
    plan = plan_question(ENTERPRISE_2024, retail.model, retail.agent.workbench.value_index())
    (suggestion,) = result.suggestions
    assert (
        plan_question(suggestion, retail.model, retail.agent.workbench.value_index()).query
        == plan.query
    )
    assert tool_oks(result) == [False, False] and llm.pending == 0


def test_the_wrong_measure_is_named_and_repaired(retail, llm):  # noqa: F811
    expected = by_region(retail)

    def repair(body):
        assert gaps_sent(body) == [
            "measure orders.revenue (Revenue) is missing",
            "measure orders.count (Orders) was not asked for",
        ]
        return Call("run_semantic_query", {"query": REVENUE_BY_REGION})

    wrong = {"measures": ["orders.count"], "dimensions": ["customers.region"]}
    llm.script(Call("run_semantic_query", {"query": wrong}), repair, "Revenue by region, above.")
    result = retail.ask("revenue by region")
    assert result.status == "answered" and tool_oks(result) == [False, True]
    got = dict(zip(result.df.iloc[:, 0], result.df.iloc[:, 1], strict=True))
    assert got == pytest.approx(expected)


def test_an_invented_headline_number_is_replaced_by_the_results_own(retail, llm):  # noqa: F811
    expected = by_region(retail)
    top = max(expected, key=expected.get)
    llm.script(Call("run_semantic_query", {"query": REVENUE_BY_REGION}), "West made $9,876,543.21.")
    result = retail.ask("revenue by region")
    assert result.notes == [
        "Numbers in this answer that no query returned (check them): $9,876,543.21"
    ]
    assert "9,876,543" not in result.text
    assert result.text.startswith(f"{top} leads on Revenue with ${expected[top]:,.2f}")
    assert any(s.kind == "note" and s.name == "narrate" for s in result.steps)


def test_a_derived_number_keeps_the_text_beside_its_note(retail, llm):  # noqa: F811
    expected = by_region(retail)
    gap = expected["West"] - expected["North"]  # worked out, so in no result
    text = f"West leads with ${expected['West']:,.2f}, ${gap:,.2f} ahead of North."
    llm.script(Call("run_semantic_query", {"query": REVENUE_BY_REGION}), text)
    result = retail.ask("revenue by region")
    assert result.status == "answered" and result.text == text
    assert result.notes == [
        f"Numbers in this answer that no query returned (check them): ${gap:,.2f}"
    ]


def test_numbers_with_no_query_behind_them_are_not_an_answer(retail, llm):  # noqa: F811
    llm.script("Revenue by region: West $5,000,000, North $2,500,000.")
    result = retail.ask("revenue by region")
    assert result.status == "clarify" and result.result is None
    assert not re.search(r"\d", result.text)
    assert "$5,000,000" in result.notes[0]


def test_another_grouping_is_a_gap_and_raw_sql_does_not_get_round_it(retail, llm):  # noqa: F811
    def around(body):
        assert gaps_sent(body) == [
            "grouping by orders.region (Region) is missing",
            "grouping by products.category (Category) was not asked for",
        ]
        return Call(
            "run_sql",
            {
                "sql": "SELECT category, sum(revenue) FROM orders JOIN products USING (product_id) "
                "GROUP BY 1"
            },
        )

    by_category = {"measures": ["orders.revenue"], "dimensions": ["products.category"]}
    llm.script(Call("run_semantic_query", {"query": by_category}), around, "By category, above.")
    result = retail.ask("revenue by region")
    assert result.status == "clarify" and result.result is None and result.sql is None
    assert tool_oks(result) == [False, True]
    assert "grouping by orders.region (Region)" in result.text


def test_the_prompt_says_the_query_is_checked(retail, llm):  # noqa: F811
    llm.script("I cannot tell.")
    retail.ask("revenue by region")
    system = llm.requests[0]["messages"][0]["content"]
    assert "checked against the question" in system and "instead of guessing" in system


# -- coverage_gaps on pairs of queries --------------------------------------------------------

NOW = datetime(2025, 6, 15, 12)
"""Relative ranges in a query resolve against this: "last year" is 2024."""


@pytest.fixture
def gaps(retail):  # noqa: F811
    """The gaps of a query against the plan of a question, over the retail model."""

    def check(question: str, query: dict) -> list[str]:
        plan = plan_question(question, retail.model, retail.agent.workbench.value_index())
        return coverage_gaps(plan, query, retail.model, now=NOW)

    return check


def test_the_plans_own_query_covers_it(gaps, retail):  # noqa: F811
    for question in (ENTERPRISE_2024, "revenue by region", "orders by month in 2024"):
        plan = plan_question(question, retail.model, retail.agent.workbench.value_index())
        assert coverage_gaps(plan, plan.query, retail.model, now=NOW) == []


def test_view_members_and_joined_dimensions_mean_their_cubes_members(gaps):
    through_view = {
        "measures": ["sales.revenue"],
        "timeDimensions": [{"dimension": "sales.order_date", "dateRange": YEAR_2024["dateRange"]}],
        "filters": [
            {"member": "sales.customers_segment", "operator": "equals", "values": ["enterprise"]}
        ],
    }
    assert gaps(ENTERPRISE_2024, through_view) == []
    # orders.region is {customers.region}; sales.customers_region is customers.region
    for region in ("customers.region", "orders.region", "sales.customers_region"):
        assert (
            gaps("revenue by region", {"measures": ["orders.revenue"], "dimensions": [region]})
            == []
        )


def test_a_measure_of_the_same_sql_but_another_filter_is_another_measure(gaps):
    query = {"measures": ["orders.completed_revenue"], "dimensions": ["customers.region"]}
    assert gaps("revenue by region", query) == [
        "measure orders.revenue (Revenue) is missing",
        "measure orders.completed_revenue (Completed Revenue) was not asked for",
    ]


@pytest.mark.parametrize(
    "period",
    [
        ["2024-01-01", "2024-12-31"],
        ["2024-01-01T00:00:00", "2024-12-31T23:59:59.999"],
        "last year",
        "from 2024-01-01 to 2024-12-31",
    ],
)
def test_a_range_covering_the_same_days_is_the_same_period(gaps, period):
    query = {
        "measures": ["orders.count"],
        "timeDimensions": [
            {"dimension": "orders.order_date", "granularity": "month", "dateRange": period}
        ],
    }
    assert gaps("orders by month in 2024", query) == []


def test_a_period_written_as_a_filter_counts(gaps):
    query = {
        "measures": ["orders.revenue"],
        "filters": [
            {"member": "customers.segment", "operator": "equals", "values": ["enterprise"]},
            {
                "member": "orders.order_date",
                "operator": "inDateRange",
                "values": ["2024-01-01", "2024-12-31"],
            },
        ],
    }
    assert gaps(ENTERPRISE_2024, query) == []


def test_another_period_and_another_grain_are_gaps(gaps):
    query = {
        "measures": ["orders.count"],
        "timeDimensions": [
            {
                "dimension": "orders.order_date",
                "granularity": "quarter",
                "dateRange": ["2024-01-01", "2024-11-30"],
            }
        ],
    }
    assert gaps("orders by month in 2024", query) == [
        "grouping by month of orders.order_date (Order Date) is missing",
        "grouping by quarter of orders.order_date (Order Date) was not asked for",
        "period 2024-01-01 to 2024-12-31 on orders.order_date is missing",
        "period 2024-01-01 to 2024-11-30 on orders.order_date was not asked for",
    ]


def test_another_filter_value_is_a_gap(gaps):
    query = {
        **NO_SEGMENT,
        "filters": [{"member": "customers.segment", "operator": "equals", "values": ["smb"]}],
    }
    assert gaps(ENTERPRISE_2024, query) == [
        SEGMENT_GAP,
        "filter customers.segment = smb was not asked for",
    ]


def test_what_the_question_did_not_ask_is_a_gap(gaps):
    query = {
        **REVENUE_BY_REGION,
        "timeDimensions": [YEAR_2024],
        "filters": [{"or": [{"member": "orders.status", "operator": "equals", "values": ["x"]}]}],
    }
    found = gaps("revenue by region", query)
    assert found == [
        'filter {"or":[{"member":"orders.status","operator":"equals","values":["x"]}]} '
        "was not asked for",
        "period 2024-01-01 to 2024-12-31 on orders.order_date was not asked for",
    ]


def test_grouping_by_a_filtered_dimension_only_labels_the_row(gaps):
    query = {**WITH_SEGMENT, "dimensions": ["customers.segment"]}
    assert gaps(ENTERPRISE_2024, query) == []
    query = {**WITH_SEGMENT, "dimensions": ["customers.region"]}
    assert gaps(ENTERPRISE_2024, query) == [
        "grouping by customers.region (Region) was not asked for"
    ]


def test_a_partial_plan_judges_only_what_it_read(gaps, retail):  # noqa: F811
    # "frobnicator" is no word of the model: the planner read only "revenue"
    assert plan_question("revenue by frobnicator", retail.model).status != "answered"
    query = {"measures": ["orders.revenue"], "dimensions": ["products.category"]}
    assert gaps("revenue by frobnicator", query) == []
    query = {"measures": ["orders.count"], "dimensions": ["products.category"]}
    assert gaps("revenue by frobnicator", query) == ["measure orders.revenue (Revenue) is missing"]


@pytest.mark.parametrize(
    "question",
    [
        ENTERPRISE_2024,
        "top 5 products by revenue",
        "bottom 3 regions by orders",
        "revenue excluding the west by category",
        "orders by month in 2024",
    ],
)
def test_a_plan_in_words_reads_back_as_the_same_plan(retail, question):  # noqa: F811
    values = retail.agent.workbench.value_index()
    plan = plan_question(question, retail.model, values)
    again = plan_question(phrasing(plan.query, retail.model), retail.model, values)
    assert (again.status, again.query) == ("answered", plan.query)


def test_the_gap_message_reaches_the_model_as_data(retail, llm):  # noqa: F811
    def repair(body):
        sent = json.loads(body["messages"][-1]["content"])
        assert set(sent) == {"error"} and SEGMENT_GAP in sent["error"]
        return "I could not filter to enterprise customers."

    llm.script(Call("run_semantic_query", {"query": NO_SEGMENT}), repair)
    result = retail.ask(ENTERPRISE_2024)
    assert result.status == "clarify" and result.result is None
