"""Tests for the deterministic retail sample dataset."""

from __future__ import annotations

import datetime as dt
import itertools
import statistics
from collections.abc import Iterator

import duckdb
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiser_jupyter.sources.sample import PLANTED_ANOMALIES, retail_tables, write_retail


def _row(con: duckdb.DuckDBPyConnection, query: str) -> tuple:
    """The single row a query returns."""
    (row,) = con.sql(query).fetchall()
    return row


@pytest.fixture(scope="module")
def tables() -> dict[str, pa.Table]:
    return retail_tables()


@pytest.fixture(scope="module")
def con(tables: dict[str, pa.Table]) -> Iterator[duckdb.DuckDBPyConnection]:
    connection = duckdb.connect()
    for name, table in tables.items():
        connection.register(name, table)
    yield connection
    connection.close()


@pytest.fixture(scope="module")
def daily(con: duckdb.DuckDBPyConnection) -> dict[dt.date, int]:
    rows = con.sql("select order_date, count(*) from orders group by all").fetchall()
    return dict(rows)


def test_same_seed_gives_identical_tables_and_other_seed_differs(tables):
    again = retail_tables(7)
    assert list(again) == ["customers", "products", "orders"]
    for name, table in tables.items():
        assert again[name].equals(table, check_metadata=True)
    assert not retail_tables(8)["orders"].equals(tables["orders"])


def test_schemas(tables):
    expected = {
        "customers": [
            ("customer_id", pa.int64()),
            ("name", pa.string()),
            ("email", pa.string()),
            ("region", pa.string()),
            ("segment", pa.string()),
            ("country", pa.string()),
            ("signup_date", pa.date32()),
        ],
        "products": [
            ("product_id", pa.int64()),
            ("name", pa.string()),
            ("category", pa.string()),
            ("unit_price", pa.float64()),
            ("unit_cost", pa.float64()),
        ],
        "orders": [
            ("order_id", pa.int64()),
            ("order_date", pa.date32()),
            ("customer_id", pa.int64()),
            ("product_id", pa.int64()),
            ("quantity", pa.int64()),
            ("unit_price", pa.float64()),
            ("discount", pa.float64()),
            ("revenue", pa.float64()),
            ("status", pa.string()),
        ],
    }
    for name, fields in expected.items():
        assert [(f.name, f.type) for f in tables[name].schema] == fields


def test_row_counts_and_ids_are_one_to_n(con):
    for table, key, low, high in [
        ("customers", "customer_id", 1_500, 2_500),
        ("products", "product_id", 100, 150),
        ("orders", "order_id", 40_000, 80_000),
    ]:
        n, lo, hi, distinct = _row(
            con, f"select count(*), min({key}), max({key}), count(distinct {key}) from {table}"
        )
        assert low <= n <= high
        assert (lo, hi, distinct) == (1, n, n)


def test_referential_integrity(con):
    orphans = _row(
        con,
        """
        select
            (select count(*) from orders o left join customers c using (customer_id)
             where c.customer_id is null),
            (select count(*) from orders o left join products p using (product_id)
             where p.product_id is null)
        """,
    )
    assert orphans == (0, 0)


def test_orders_only_by_customers_who_had_signed_up(con):
    early = _row(
        con,
        "select count(*) from orders join customers using (customer_id) "
        "where order_date < signup_date",
    )
    assert early == (0,)


def test_value_domains(con):
    assert _row(con, "select min(order_date), max(order_date) from orders") == (
        dt.date(2023, 1, 1),
        dt.date(2024, 12, 31),
    )
    regions = con.sql("select distinct region from customers").fetchall()
    assert {r for (r,) in regions} == {"North", "South", "East", "West"}
    segments = con.sql("select distinct segment from customers").fetchall()
    assert {s for (s,) in segments} == {"consumer", "smb", "enterprise"}
    statuses = dict(con.sql("select status, count(*) from orders group by all").fetchall())
    assert set(statuses) == {"completed", "returned", "cancelled"}
    assert statuses["completed"] > 0.8 * sum(statuses.values())
    (n_categories,) = _row(con, "select count(distinct category) from products")
    assert 5 <= n_categories <= 6
    bad = _row(
        con,
        """
        select
            (select count(*) from products where not (0 < unit_cost and unit_cost < unit_price)),
            (select count(*) from orders where quantity < 1 or discount < 0 or discount > 0.3),
            (select count(*) from customers
             where not regexp_full_match(email, '[a-z]+[.][a-z]+[0-9]+@example[.]com')),
            (select count(*) from customers where length(country) <> 2)
        """,
    )
    assert bad == (0, 0, 0, 0)


def test_order_unit_price_is_the_product_price(con):
    mismatched = _row(
        con,
        "select count(*) from orders o join products p using (product_id) "
        "where o.unit_price <> p.unit_price",
    )
    assert mismatched == (0,)


def test_revenue_is_rounded_quantity_times_discounted_price(tables):
    orders = tables["orders"].to_pylist()
    for row in orders:
        exact = row["quantity"] * row["unit_price"] * (1 - row["discount"])
        # Rounded to the cent: within half a cent of the exact value, and a whole cent.
        assert abs(row["revenue"] - exact) <= 0.005 + 1e-9
        assert abs(row["revenue"] * 100 - round(row["revenue"] * 100)) < 1e-6


def test_planted_anomalies_are_well_formed():
    days = sorted(a.day for a in PLANTED_ANOMALIES)
    assert 3 <= len(days) <= 4
    assert all(b - a > dt.timedelta(days=1) for a, b in itertools.pairwise(days))
    assert days[0] >= dt.date(2023, 1, 1) + dt.timedelta(days=30)
    assert days[-1] <= dt.date(2024, 12, 31)
    assert {a.kind for a in PLANTED_ANOMALIES} == {"spike", "drop"}
    for a in PLANTED_ANOMALIES:
        assert (a.factor > 1) if a.kind == "spike" else (0 < a.factor < 1)


def test_planted_anomalies_stand_out_in_daily_orders(daily):
    for anomaly in PLANTED_ANOMALIES:
        around = [
            daily[anomaly.day + dt.timedelta(days=d)]
            for d in range(-14, 15)
            if d != 0 and anomaly.day + dt.timedelta(days=d) in daily
        ]
        ratio = daily[anomaly.day] / statistics.median(around)
        if anomaly.kind == "spike":
            assert ratio > 2.5, anomaly
        else:
            assert ratio < 0.4, anomaly


def test_weekends_busier_than_weekdays(daily):
    planted = {a.day for a in PLANTED_ANOMALIES}
    normal = {day: n for day, n in daily.items() if day not in planted}
    weekend = [n for day, n in normal.items() if day.weekday() >= 5]
    weekday = [n for day, n in normal.items() if day.weekday() < 5]
    assert statistics.mean(weekend) > 1.15 * statistics.mean(weekday)


def test_november_december_busier_than_other_months(daily):
    planted = {a.day for a in PLANTED_ANOMALIES}
    normal = {day: n for day, n in daily.items() if day not in planted}
    peak = [n for day, n in normal.items() if day.month in (11, 12)]
    rest = [n for day, n in normal.items() if day.month not in (11, 12)]
    assert statistics.mean(peak) > 1.2 * statistics.mean(rest)


def test_upward_trend(con, daily):
    q4 = dict(
        con.sql(
            "select year(order_date), sum(revenue) from orders "
            "where month(order_date) >= 10 group by all"
        ).fetchall()
    )
    assert q4[2024] > q4[2023]
    first_quarter = [n for day, n in daily.items() if day < dt.date(2023, 4, 1)]
    last_quarter = [n for day, n in daily.items() if day >= dt.date(2024, 10, 1)]
    assert statistics.mean(last_quarter) > statistics.mean(first_quarter)


def test_west_is_the_biggest_region_and_enterprise_buys_most(con):
    regions = con.sql(
        "select region from orders join customers using (customer_id) "
        "group by region order by count(*) desc"
    ).fetchall()
    assert regions[0] == ("West",)
    segments = con.sql(
        "select segment from orders join customers using (customer_id) "
        "group by segment order by avg(quantity) desc"
    ).fetchall()
    assert segments[0] == ("enterprise",)


def test_write_retail_round_trips(tables, tmp_path):
    target = tmp_path / "nested" / "retail"
    paths = write_retail(target)
    assert paths == {name: target / f"{name}.parquet" for name in tables}
    for name, path in paths.items():
        assert path.is_file()
        assert pq.read_table(path).equals(tables[name])
    query = f"select count(*) from read_parquet('{paths['orders']}')"
    assert _row(duckdb.connect(), query) == (tables["orders"].num_rows,)
