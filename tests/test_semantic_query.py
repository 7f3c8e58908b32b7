"""Cube queries answered through the model, checked against hand-written SQL on the same data."""

from __future__ import annotations

import pandas as pd
import pytest
import sqlglot

import aiser_jupyter as aiser
from aiser_jupyter.errors import AiserError
from aiser_jupyter.semantic.compiler import to_sql
from aiser_jupyter.semantic.loader import ModelError
from tests.conftest import run, run_failing

MODEL = "examples/model/retail.yml"


def rows(frame: pd.DataFrame) -> list[tuple]:
    return [
        tuple(None if pd.isna(v) else (round(v, 4) if isinstance(v, float) else v) for v in row)
        for row in frame.itertuples(index=False)
    ]


def hand(session, sql: str) -> list[tuple]:
    return rows(session.sql(sql).df)


def test_measures_by_a_joined_dimension_with_a_filter(retail):
    got = retail.query(
        {
            "measures": ["orders.count", "orders.revenue", "orders.average_order_value"],
            "dimensions": ["customers.region"],
            "filters": [{"member": "orders.status", "operator": "equals", "values": ["completed"]}],
            "order": {"customers.region": "asc"},
        }
    )
    assert list(got.df.columns) == [
        "customers.region",
        "orders.count",
        "orders.revenue",
        "orders.average_order_value",
    ]
    assert rows(got.df) == hand(
        retail,
        """
        SELECT c.region, count(*), sum(o.revenue), sum(o.revenue) / count(*)
        FROM orders o JOIN customers c ON c.customer_id = o.customer_id
        WHERE o.status = 'completed' GROUP BY 1 ORDER BY 1""",
    )


def test_one_side_measure_is_not_multiplied_by_the_many_side(retail):
    got = retail.query(
        {
            "measures": ["customers.count", "orders.count"],
            "dimensions": ["orders.status"],
            "order": [["orders.status", "asc"]],
        }
    )
    expected = hand(
        retail,
        """
        SELECT o.status, count(DISTINCT c.customer_id), count(o.order_id)
        FROM customers c LEFT JOIN orders o ON o.customer_id = c.customer_id
        GROUP BY 1 ORDER BY 1 NULLS LAST""",
    )
    assert rows(got.df) == expected
    naive = hand(retail, "SELECT count(*) FROM customers c JOIN orders o USING (customer_id)")
    assert sum(r[1] for r in expected) != naive[0][0]  # a plain join would have multiplied


def test_average_over_the_one_side_is_not_weighted_by_orders(retail):
    got = retail.query(
        {
            "measures": ["products.average_price"],
            "dimensions": ["orders.status"],
            "order": [["orders.status", "asc"]],
        }
    )
    assert rows(got.df) == hand(
        retail,
        """
        SELECT status, avg(unit_price) FROM (
            SELECT DISTINCT o.status, p.product_id, p.unit_price
            FROM orders o JOIN products p ON p.product_id = o.product_id)
        GROUP BY 1 ORDER BY 1""",
    )
    weighted = hand(
        retail,
        """SELECT o.status, avg(p.unit_price) FROM orders o
        JOIN products p USING (product_id) GROUP BY 1 ORDER BY 1""",
    )
    assert rows(got.df) != weighted


def test_measure_filter_segment_case_dimension_and_having(retail):
    got = retail.query(
        {
            "measures": ["orders.completed_revenue", "orders.gross_margin"],
            "dimensions": ["products.category", "orders.size"],
            "segments": ["orders.completed"],
            "filters": [
                {
                    "or": [
                        {
                            "member": "products.category",
                            "operator": "startsWith",
                            "values": ["Elec"],
                        },
                        {"member": "products.category", "operator": "equals", "values": ["Toys"]},
                    ]
                },
                {"member": "orders.revenue", "operator": "gt", "values": ["100000"]},
            ],
            "order": [["products.category", "asc"], ["orders.size", "asc"]],
        }
    )
    assert rows(got.df) == hand(
        retail,
        """
        SELECT p.category,
               CASE WHEN o.quantity >= 10 THEN 'bulk' WHEN o.quantity >= 3 THEN 'medium'
                    ELSE 'single' END AS size,
               sum(o.revenue), sum(o.revenue - o.quantity * p.unit_cost)
        FROM orders o LEFT JOIN products p ON p.product_id = o.product_id
        WHERE o.status = 'completed' AND (p.category ILIKE 'Elec%' OR p.category = 'Toys')
        GROUP BY 1, 2 HAVING sum(o.revenue) > 100000 ORDER BY 1, 2""",
    )


def test_time_dimension_granularity_date_range_and_running_total(retail):
    got = retail.query(
        {
            "measures": ["orders.revenue", "orders.cumulative_revenue"],
            "timeDimensions": [
                {
                    "dimension": "orders.order_date",
                    "granularity": "month",
                    "dateRange": ["2024-01-01", "2024-06-30"],
                }
            ],
        }
    )
    monthly = retail.sql("""
        SELECT date_trunc('month', order_date) AS m, sum(revenue) AS r FROM orders
        WHERE order_date BETWEEN DATE '2024-01-01' AND DATE '2024-06-30' GROUP BY 1 ORDER BY 1
    """).df
    assert list(got.df.columns) == [
        "orders.order_date.month",
        "orders.revenue",
        "orders.cumulative_revenue",
    ]
    assert len(got.df) == 6
    assert got.df["orders.revenue"].round(2).tolist() == monthly["r"].round(2).tolist()
    assert got.df["orders.cumulative_revenue"].round(2).tolist() == (
        monthly["r"].cumsum().round(2).tolist()
    )


@pytest.mark.parametrize("granularity", ["day", "week", "quarter", "year"])
def test_each_granularity(retail, granularity):
    got = retail.query(
        {
            "measures": ["orders.count"],
            "timeDimensions": [{"dimension": "orders.order_date", "granularity": granularity}],
            "limit": 50000,
        }
    )
    assert rows(got.df) == hand(
        retail,
        f"""
        SELECT date_trunc('{granularity}', order_date), count(*)
        FROM orders GROUP BY 1 ORDER BY 1""",
    )


@pytest.mark.parametrize(
    "filter_, where",
    [
        (
            {"member": "customers.segment", "operator": "notEquals", "values": ["smb"]},
            "(c.segment <> 'smb' OR c.segment IS NULL)",
        ),
        (
            {"member": "customers.email", "operator": "contains", "values": ["ADAMS"]},
            "c.email ILIKE '%adams%'",
        ),
        (
            {"member": "customers.region", "operator": "notContains", "values": ["th"]},
            "NOT c.region ILIKE '%th%'",
        ),
        (
            {"member": "customers.region", "operator": "endsWith", "values": ["st"]},
            "c.region ILIKE '%st'",
        ),
        (
            {
                "member": "orders.order_date",
                "operator": "inDateRange",
                "values": ["2024-03-01", "2024-03-31"],
            },
            "o.order_date BETWEEN DATE '2024-03-01' AND DATE '2024-03-31'",
        ),
        (
            {
                "member": "orders.order_date",
                "operator": "notInDateRange",
                "values": ["2023-01-01", "2024-11-30"],
            },
            "o.order_date > DATE '2024-11-30'",
        ),
        (
            {"member": "orders.order_date", "operator": "beforeDate", "values": ["2023-02-01"]},
            "o.order_date < DATE '2023-02-01'",
        ),
        (
            {"member": "orders.order_date", "operator": "afterOrOnDate", "values": ["2024-12-25"]},
            "o.order_date >= DATE '2024-12-25'",
        ),
        ({"member": "customers.signup_date", "operator": "set"}, "c.signup_date IS NOT NULL"),
        ({"member": "orders.order_id", "operator": "lte", "values": ["100"]}, "o.order_id <= 100"),
        (
            {"member": "orders.completed_revenue", "operator": "measureFilter"},
            "o.status = 'completed'",
        ),
    ],
)
def test_filter_operators(retail, filter_, where):
    got = retail.query({"measures": ["orders.count"], "filters": [filter_]})
    expected = hand(
        retail,
        f"""SELECT count(*) FROM orders o
        LEFT JOIN customers c ON c.customer_id = o.customer_id WHERE {where}""",
    )
    assert rows(got.df) == expected


def test_views_answer_like_their_cubes(retail):
    through_view = retail.query(
        {
            "measures": ["sales.count", "sales.revenue"],
            "dimensions": ["sales.customers_region"],
            "order": {"sales.customers_region": "asc"},
        }
    )
    direct = retail.query(
        {
            "measures": ["orders.count", "orders.revenue"],
            "dimensions": ["customers.region"],
            "order": {"customers.region": "asc"},
        }
    )
    assert rows(through_view.df) == rows(direct.df)
    assert list(through_view.df.columns) == [
        "sales.customers_region",
        "sales.count",
        "sales.revenue",
    ]


def test_order_limit_offset_total(retail):
    got = retail.query(
        {
            "measures": ["orders.count"],
            "dimensions": ["products.category"],
            "order": [["orders.count", "desc"]],
            "limit": 2,
            "offset": 1,
            "total": True,
        }
    )
    expected = hand(
        retail,
        """SELECT p.category, count(*) FROM orders o
        JOIN products p USING (product_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 2 OFFSET 1""",
    )
    assert rows(got.df) == expected
    assert got.total == 6


def test_default_order_and_dimensions_only(retail):
    got = retail.query({"dimensions": ["customers.segment"]})
    assert rows(got.df) == hand(retail, "SELECT DISTINCT segment FROM customers ORDER BY 1")


def test_ungrouped_returns_rows(retail):
    got = retail.query(
        {
            "dimensions": ["orders.order_id", "orders.status"],
            "measures": ["orders.revenue"],
            "ungrouped": True,
            "order": [["orders.order_id", "asc"]],
            "limit": 5,
        }
    )
    assert rows(got.df) == hand(
        retail,
        """SELECT order_id, status, revenue FROM orders
        ORDER BY order_id LIMIT 5""",
    )


def test_count_distinct_and_approx(retail):
    got = retail.query({"measures": ["orders.buyers"]})
    assert rows(got.df) == hand(retail, "SELECT count(DISTINCT customer_id) FROM orders")


def test_result_carries_annotation_and_query(retail):
    query = {"measures": ["orders.revenue"], "dimensions": ["orders.status"]}
    result = aiser.query(query)
    assert result.query == query
    assert result.annotation["measures"]["orders.revenue"]["format"] == "currency"
    assert "semantic query" in result.df._repr_html_()
    assert retail.history[-1].kind == "query"


def test_query_magic_json_and_yaml(ip):
    run(ip, "%aiser sample")
    run(ip, f"%aiser model load {MODEL}")
    from_yaml = run(
        ip,
        "%%query -o by_segment\nmeasures: [orders.count]\n"
        "dimensions: [customers.segment]\norder: {customers.segment: asc}\n",
    )
    from_json = run(
        ip,
        '%%query\n{"measures": ["orders.count"], "dimensions": '
        '["customers.segment"], "order": [["customers.segment", "asc"]]}',
    )
    assert rows(from_yaml) == rows(from_json) == rows(ip.user_ns["by_segment"])
    assert rows(from_yaml) == hand(
        aiser.session(),
        """SELECT c.segment, count(*) FROM orders o
        JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )


def test_query_errors_are_clear_and_lose_nothing(ip):
    run(ip, "%aiser sample")
    assert isinstance(run_failing(ip, '%%query\n{"measures": ["orders.count"]}'), AiserError)
    run(ip, f"%aiser model load {MODEL}")
    for body, message in [
        ('{"measures": ["orders.nope"]}', "no member 'nope'"),
        ('{"measures": ["nowhere.count"]}', "unknown cube or view 'nowhere'"),
        ('{"measures": ["orders.status"]}', "is a dimension, not a measure"),
        (
            '{"measures": ["orders.count"], "timeDimensions": [{"dimension": "orders.order_date",'
            ' "granularity": "fortnight"}]}',
            "fortnight",
        ),
        (
            '{"measures": ["orders.count"], "filters": [{"member": "orders.status",'
            ' "operator": "sortOf", "values": ["x"]}]}',
            "operator",
        ),
        (
            '{"measures": ["orders.count"], "timeDimensions": [{"dimension": "orders.order_date",'
            ' "dateRange": "last blue moon"}]}',
            "last blue moon",
        ),
        ("measures: [orders.count", "not valid YAML"),
    ]:
        error = run_failing(ip, f"%%query\n{body}")
        assert isinstance(error, AiserError), (body, error)
        assert message in str(error), (body, str(error))
    assert len(run(ip, '%%query\n{"measures": ["orders.count"]}')) == 1


def test_sql_for_each_dialect(retail):
    query = {
        "measures": ["customers.count", "orders.average_order_value"],
        "dimensions": ["products.category"],
        "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
        "filters": [{"member": "orders.count", "operator": "gt", "values": ["10"]}],
    }
    for dialect in ("duckdb", "postgres", "spark", "snowflake", "bigquery"):
        text = to_sql(retail.model, query, dialect=dialect)
        assert sqlglot.parse_one(text, read=dialect) is not None


def test_the_same_answers_on_postgres(retail, pg_retail):
    aiser.connect(pg_retail, name="pg")
    for query in (
        {
            "measures": ["orders.count", "orders.revenue"],
            "dimensions": ["customers.region"],
            "order": {"customers.region": "asc"},
        },
        {
            "measures": ["customers.count", "orders.count"],
            "dimensions": ["orders.status"],
            "order": [["orders.status", "asc"]],
        },
        {
            "measures": ["orders.revenue"],
            "timeDimensions": [
                {
                    "dimension": "orders.order_date",
                    "granularity": "quarter",
                    "dateRange": ["2024-01-01", "2024-12-31"],
                }
            ],
        },
    ):
        on_pg = retail.query(query, connection="pg").df
        on_duckdb = retail.query(query, connection="duckdb").df
        assert rows(on_pg.astype(on_duckdb.dtypes.to_dict(), errors="ignore")) == rows(on_duckdb)


def test_no_model_loaded():
    with pytest.raises(AiserError, match="No semantic model loaded"):
        aiser.query({"measures": ["orders.count"]})


def test_model_api_and_auto(retail, tmp_path):
    assert aiser.model() is retail.model
    path = tmp_path / "drafted.yml"
    text = aiser.model.auto(tables=["orders", "customers"], path=str(path))
    assert path.read_text() == text
    drafted = aiser.model(str(path))
    got = aiser.query(
        {
            "measures": ["orders.count"],
            "dimensions": ["customers.segment"],
            "order": {"customers.segment": "asc"},
        }
    )
    assert drafted is aiser.model()
    assert rows(got.df) == hand(
        retail,
        """SELECT c.segment, count(*) FROM orders o
        JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )
    with pytest.raises(ModelError):
        aiser.model({"cubes": [{"name": "x"}]})
    assert aiser.model() is drafted


def test_compare_date_range(retail):
    got = retail.query(
        {
            "measures": ["orders.count"],
            "timeDimensions": [
                {
                    "dimension": "orders.order_date",
                    "granularity": "year",
                    "compareDateRange": [
                        ["2023-01-01", "2023-03-31"],
                        ["2024-01-01", "2024-03-31"],
                    ],
                }
            ],
        }
    )
    assert list(got.df.columns) == ["orders.order_date.year", "orders.count", "compareDateRange"]
    assert got.df["compareDateRange"].tolist() == [
        "2023-01-01 - 2023-03-31",
        "2024-01-01 - 2024-03-31",
    ]
    assert got.df["orders.count"].tolist() == [
        hand(
            retail,
            f"""SELECT count(*) FROM orders
        WHERE order_date BETWEEN DATE '{y}-01-01' AND DATE '{y}-03-31'""",
        )[0][0]
        for y in (2023, 2024)
    ]


def test_table_is_cubes_older_name_for_cube(retail):
    model = {
        "cubes": [
            {
                "name": "o",
                "sql_table": "orders",
                "measures": [{"name": "revenue", "type": "sum", "sql": "{TABLE}.revenue"}],
            }
        ]
    }
    aiser.model(model)
    assert rows(aiser.query({"measures": ["o.revenue"]}).df) == hand(
        retail, "SELECT sum(revenue) FROM orders"
    )


def test_order_priority_is_part_of_the_query(retail):
    """{"a": "asc", "b": "desc"} and {"b": "desc", "a": "asc"} sort differently: the
    compiled-SQL cache must not mix them up."""
    base = {"measures": ["orders.count"], "dimensions": ["orders.status", "products.category"]}
    first = retail.query({**base, "order": {"orders.status": "asc", "products.category": "desc"}})
    second = retail.query({**base, "order": {"products.category": "desc", "orders.status": "asc"}})
    frame = first.df
    assert frame.equals(
        frame.sort_values(
            ["orders.status", "products.category"], ascending=[True, False]
        ).reset_index(drop=True)
    )
    other = second.df
    assert other.equals(
        other.sort_values(
            ["products.category", "orders.status"], ascending=[False, True]
        ).reset_index(drop=True)
    )
    assert not frame.equals(other)
