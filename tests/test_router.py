"""The router against real engines: PostgreSQL on loopback, Parquet files in DuckDB.

Every answer is checked against one computed apart: pandas on the same data, or the same
SQL on one DuckDB that holds copies of every table.
"""

from __future__ import annotations

import duckdb
import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiser_jupyter import sessions
from aiser_jupyter.engines.catalog import RoutingError
from aiser_jupyter.engines.connection import Connection
from aiser_jupyter.engines.duckdb import DuckDBEngine
from aiser_jupyter.engines.registry import _KINDS, EngineKind, engine_kind
from aiser_jupyter.errors import QueryError
from aiser_jupyter.sources.sample import retail_tables

RETAIL = retail_tables()


@pytest.fixture
def session():
    """A Session with the routing methods (the class Session will be once they are wired)."""
    made = sessions.Session()
    yield made
    made.close()


@pytest.fixture
def fed(session, pg_retail, tmp_path):
    """orders as a Parquet file in DuckDB; customers and products on PostgreSQL."""
    path = tmp_path / "orders.parquet"
    pq.write_table(RETAIL["orders"], path)
    session.connect(str(path), name="orders")
    session.connect(pg_retail, name="pg")
    session.sources.use("duckdb")
    return session


def frames_equal(got: pd.DataFrame, expected: pd.DataFrame) -> None:
    """Same rows (order ignored), same columns, numbers to 1e-6 (nullable integers and
    floats alike)."""
    got, expected = numbers_as_floats(got), numbers_as_floats(expected)
    assert list(got.columns) == list(expected.columns)
    key = list(got.columns)
    pd.testing.assert_frame_equal(
        got.sort_values(key).reset_index(drop=True),
        expected.sort_values(key).reset_index(drop=True),
        check_dtype=False,
        rtol=1e-6,
    )


def numbers_as_floats(frame: pd.DataFrame) -> pd.DataFrame:
    frame = frame.reset_index(drop=True)
    for column in frame.columns:
        if pd.api.types.is_numeric_dtype(frame[column]) and frame[column].dtype != bool:
            frame[column] = frame[column].astype("float64")
    return frame


def test_postgres_table_joined_with_parquet_matches_pandas(fed):
    sql = """
        SELECT c.region, count(*) AS orders, sum(o.revenue) AS revenue
        FROM orders o JOIN customers c ON o.customer_id = c.customer_id
        WHERE c.segment = 'enterprise' AND o.status = 'completed'
          AND o.order_date >= DATE '2024-01-01'
        GROUP BY c.region
    """
    result = fed.router.run(sql)

    orders = RETAIL["orders"].to_pandas()
    customers = RETAIL["customers"].to_pandas()
    merged = orders.merge(customers, on="customer_id")
    kept = merged[
        (merged.segment == "enterprise")
        & (merged.status == "completed")
        & (pd.to_datetime(merged.order_date) >= pd.Timestamp("2024-01-01"))
    ]
    expected = (
        kept.groupby("region")
        .agg(orders=("order_id", "size"), revenue=("revenue", "sum"))
        .reset_index()
    )
    frames_equal(result.df, expected)
    assert result.plan.decision == "federate"
    assert "federated in DuckDB (duckdb + pg)" in result.caption()


def test_the_sql_sent_to_postgres_carries_the_filter_and_only_the_columns_used(fed):
    plan = fed.router.route(
        "SELECT c.region, sum(o.revenue) AS revenue FROM orders o "
        "JOIN customers c ON o.customer_id = c.customer_id "
        "WHERE c.segment = 'enterprise' GROUP BY ALL"
    )
    [read, joined] = plan.steps
    assert read.connection == "pg" and read.dialect == "postgres"
    assert "WHERE segment = 'enterprise'" in read.sql
    assert "email" not in read.sql and "signup_date" not in read.sql
    assert '"region"' in read.sql and '"customer_id"' in read.sql
    assert "(2 columns" not in read.role and "1 filter pushed down" in read.role
    assert joined.connection == "duckdb" and "GROUP BY ALL" in joined.sql
    assert any("DuckDB joins them" in reason for reason in plan.reasons)
    assert "-- reads pg.public.customers" in plan.explain()


def test_filters_on_the_null_side_of_an_outer_join_are_not_pushed(fed):
    """WHERE c.region IS NULL after a LEFT JOIN keeps orders with no such customer: pushing
    it into the read of customers would change the answer, so it stays in DuckDB; a filter
    in the LEFT JOIN's ON clause may be pushed (it only narrows the joined side)."""
    sql = """
        SELECT count(*) AS n, count(c.customer_id) AS matched
        FROM orders o LEFT JOIN customers c
          ON o.customer_id = c.customer_id AND c.country = 'DE'
        WHERE c.region IS NULL OR c.region = 'West'
    """
    plan = fed.router.route(sql)
    read = plan.steps[0].sql
    assert "country = 'DE'" in read and "region IS NULL" not in read

    both = duckdb.connect()
    both.register("orders", RETAIL["orders"])
    both.register("customers", RETAIL["customers"])
    expected = both.sql(sql).df()
    frames_equal(fed.router.run(sql).df, expected)


def test_a_query_on_postgres_alone_is_pushed_down_whole_and_transpiled(fed, pg_server):
    sql = (
        "SELECT category, count(*) AS n FROM products "
        "WHERE unit_price > 100 GROUP BY ALL ORDER BY category"
    )
    result = fed.router.run(sql)
    assert result.plan.decision == "pushdown" and result.plan.connection == "pg"
    assert "GROUP BY 1" in result.plan.sql  # PostgreSQL has no GROUP BY ALL
    expected = pg_server.psql(
        "SELECT category, count(*) FROM products WHERE unit_price > 100 "
        "GROUP BY category ORDER BY category"
    )
    got = "\n".join(f"{c}|{n}" for c, n in result.df.itertuples(index=False))
    assert got == expected


def test_engine_override_pulls_the_table_into_duckdb_with_the_same_answer(fed):
    sql = "SELECT segment, count(*) AS n FROM customers WHERE region = 'North' GROUP BY ALL"
    pushed = fed.router.run(sql)
    pulled = fed.router.run(sql, engine="duckdb")
    assert pushed.plan.decision == "pushdown" and pulled.plan.decision == "federate"
    assert "WHERE region = 'North'" in pulled.plan.steps[0].sql
    assert "--engine duckdb chose duckdb" in pulled.plan.reasons[0]
    frames_equal(pulled.df, pushed.df)


def test_an_engine_that_cannot_run_the_query_is_refused(fed):
    with pytest.raises(RoutingError, match="cannot run this query"):
        fed.router.route("SELECT * FROM orders JOIN customers USING (customer_id)", engine="pg")
    with pytest.raises(RoutingError, match="nosuch cannot run"):
        fed.router.route("SELECT * FROM customers", engine="nosuch")


def test_timings_decide_between_engines_and_say_so(fed):
    sql = "SELECT count(*) FROM customers WHERE region = 'East'"
    plan = fed.router.route(sql)
    assert plan.candidates == ["pg", "duckdb"]
    fed.router.planner.timings.record(plan.shape, "pg", 0.300)
    fed.router.planner.timings.record(plan.shape, "duckdb", 0.020)
    chosen = fed.router.route("SELECT count(*) FROM customers WHERE region = 'West'")  # same shape
    assert chosen.connection == "duckdb" and chosen.decision == "federate"
    assert "pg 300 ms (median of 1), duckdb 20 ms (median of 1)" in chosen.reasons[0]
    for _ in range(2):
        fed.router.planner.timings.record(plan.shape, "duckdb", 0.900)
    assert fed.router.route(sql).connection == "pg"  # the median moved


def test_parameters_stay_in_duckdb_and_bind(fed):
    sql = (
        "SELECT count(*) AS n FROM orders o JOIN customers c USING (customer_id) "
        "WHERE c.country = :country AND o.quantity >= :q"
    )
    result = fed.router.run(sql, params={"country": "FR", "q": 3})
    assert ":country" not in result.plan.steps[0].sql
    merged = RETAIL["orders"].to_pandas().merge(RETAIL["customers"].to_pandas(), on="customer_id")
    assert result.df["n"].tolist() == [
        int(((merged.country == "FR") & (merged.quantity >= 3)).sum())
    ]


def test_a_connection_named_in_the_query_owns_that_table(fed):
    fed.sources.default_duckdb().engine.store(
        "customers", RETAIL["customers"]
    )  # DuckDB has one too
    plan = fed.router.route("SELECT count(*) FROM pg.customers")
    assert plan.connection == "pg" and plan.decision == "pushdown"
    assert fed.router.route("SELECT count(*) FROM customers").connection == "duckdb"


def test_a_table_in_two_other_connections_is_ambiguous(fed, pg_retail):
    fed.connect(pg_retail, name="pg2")
    fed.sources.use("duckdb")
    with pytest.raises(RoutingError, match=r"several connections \(pg, pg2\)"):
        fed.router.route("SELECT * FROM products")


def test_unknown_tables_and_statements_run_as_written_where_addressed(fed):
    plan = fed.router.route("SELECT * FROM no_such_table")
    assert plan.decision == "as written" and plan.connection == "duckdb"
    with pytest.raises(QueryError, match="no_such_table"):
        fed.router.run("SELECT * FROM no_such_table")
    made = fed.router.run("CREATE TABLE fresh AS SELECT 42 AS answer")
    assert made.plan.decision == "as written" and not made.plan.is_query
    assert fed.router.run("SELECT answer FROM fresh").df["answer"].tolist() == [42]


def test_sql_written_for_postgres_reaches_it_untouched(fed):
    text = "SELECT count(*)::int AS n FROM customers WHERE email ~ '^ava'"
    plan = fed.router.route(text, connection="pg")
    assert plan.decision == "as written" and plan.sql == text


def test_a_bigger_engine_takes_queries_over_the_size_limit(session, tmp_path, monkeypatch):
    """An engine kind plugs in by registering: here a second DuckDB posing as a cluster."""

    class Cluster(DuckDBEngine):
        kind = "cluster"

        def read(self, name: str, path: list[str]) -> None:  # as SparkEngine.read
            self.con.register(name, self.con.read_parquet(path))

    monkeypatch.setitem(_KINDS, "cluster", EngineKind("cluster", reads_files=True, scale=2))
    small = EngineKind("duckdb", federates=True, reads_files=True, max_bytes=1000)
    monkeypatch.setitem(_KINDS, "duckdb", small)
    path = tmp_path / "orders.parquet"
    pq.write_table(RETAIL["orders"], path)
    session.connect(str(path), name="orders")
    session.sources.connections["cluster"] = Connection("cluster", Cluster(), "cluster://")
    sql = "SELECT status, sum(revenue) AS revenue FROM orders GROUP BY ALL"
    result = session.router.run(sql)
    assert result.plan.decision == "scale out" and result.plan.connection == "cluster"
    assert "KiB, over the 1000 B duckdb is set to handle" in result.plan.reasons[0]
    expected = RETAIL["orders"].to_pandas().groupby("status")["revenue"].sum().reset_index()
    frames_equal(result.df, expected)
    assert engine_kind("unknown").scale == 1


CORPUS = {
    "window": """
        SELECT customer_id, order_id,
               sum(revenue) OVER (PARTITION BY customer_id ORDER BY order_id) AS running,
               lag(order_id) OVER (PARTITION BY customer_id ORDER BY order_id) AS previous,
               rank() OVER (PARTITION BY customer_id ORDER BY revenue DESC, order_id) AS r
        FROM orders WHERE customer_id <= 20
    """,
    "dates": """
        SELECT date_trunc('month', order_date) AS month,
               extract(year FROM order_date) AS y,
               strftime(order_date, '%Y-%m') AS label,
               min(order_date + INTERVAL 7 DAY) AS week_after,
               count(*) AS n
        FROM orders WHERE order_date < DATE '2023-04-01' GROUP BY ALL
    """,
    "datediff": """
        SELECT customer_id, date_diff('day', signup_date, DATE '2024-12-31') AS days
        FROM customers WHERE customer_id < 50
    """,
    "qualify": """
        SELECT p.category, p.name, sum(o.revenue) AS revenue
        FROM orders o JOIN products p ON o.product_id = p.product_id
        GROUP BY p.category, p.name
        QUALIFY row_number() OVER (PARTITION BY p.category ORDER BY sum(o.revenue) DESC) = 1
    """,
    "group_by_all_filter": """
        SELECT c.country, c.segment,
               count(*) FILTER (WHERE o.status = 'returned') AS returned,
               round(avg(o.discount), 4) AS avg_discount
        FROM orders o JOIN customers c USING (customer_id) GROUP BY ALL
    """,
    "strings": """
        SELECT lower(name) || '@' || upper(country) AS tag, length(email) AS len
        FROM customers WHERE name ILIKE 'a%' AND customer_id < 300
    """,
}


@pytest.mark.parametrize("name", list(CORPUS))
def test_duckdb_sql_transpiled_to_postgres_gives_duckdbs_answer(session, pg_retail, name):
    """Written for DuckDB, run on PostgreSQL (it owns the tables), compared with DuckDB's own
    answer on a copy of the same data."""
    session.connect(pg_retail, name="pg")
    session.sources.use("duckdb")
    result = session.router.run(CORPUS[name])
    assert result.plan.connection == "pg" and result.plan.dialect == "postgres"

    local = duckdb.connect()
    for table, data in RETAIL.items():
        local.register(table, data)
    expected = local.sql(CORPUS[name]).to_arrow_table().to_pandas()  # as Result.df converts
    got = result.df
    frames_equal(got, expected)


def test_dialect_option_reads_another_dialect(fed):
    plan = fed.router.route(
        "SELECT TOP 3 category FROM products ORDER BY category", dialect="tsql", connection="pg"
    )
    assert plan.decision == "pushdown" and plan.sql.endswith("LIMIT 3")
    result = fed.router.run("SELECT TOP 3 category FROM products ORDER BY category", dialect="tsql")
    assert result.df["category"].tolist() == ["Apparel"] * 3


def test_sql_sqlglot_cannot_read_reaches_the_database_which_says_why(fed):
    plan = fed.router.route("SELECT * FROM orders WHERE (")
    assert plan.decision == "as written" and "sqlglot could not read it" in plan.reasons[0]
    with pytest.raises(QueryError, match="syntax error"):
        fed.router.run("SELECT * FROM orders WHERE (")
    assert fed.router.route("SELECT 1; SELECT 2").sql == "SELECT 1; SELECT 2"
    with pytest.raises(RoutingError, match="one statement at a time; this has 2"):
        fed.router.route("SELECT 1; SELECT 2", dialect="tsql")


def test_frames_registered_in_duckdb_join_postgres(fed):
    fed.connect(pa.table({"region": ["West", "East"], "target": [10.0, 20.0]}), name="targets")
    fed.sources.use("duckdb")
    sql = (
        "SELECT t.region, t.target, count(*) AS n FROM targets t "
        "JOIN customers c ON c.region = t.region GROUP BY ALL"
    )
    result = fed.router.run(sql)
    counts = RETAIL["customers"].to_pandas().region.value_counts()
    expected = pd.DataFrame(
        {"region": ["West", "East"], "target": [10.0, 20.0], "n": [counts["West"], counts["East"]]}
    )
    frames_equal(result.df, expected)


def test_too_big_for_duckdb_goes_to_a_real_spark_and_gives_duckdbs_answer(
    session, tmp_path, monkeypatch
):
    """A local Spark session as the bigger engine: it reads the Parquet file itself."""
    pytest.importorskip("pyspark")
    from aiser_jupyter.engines.spark import SparkEngine

    monkeypatch.setitem(
        _KINDS, "duckdb", EngineKind("duckdb", federates=True, reads_files=True, max_bytes=1000)
    )
    path = tmp_path / "orders.parquet"
    pq.write_table(RETAIL["orders"], path)
    session.connect(str(path), name="orders")
    config = {"spark.sql.shuffle.partitions": "2", "spark.sql.session.timeZone": "UTC"}
    spark = SparkEngine("local[2]", config=config, progress=False)
    session.sources.connections["spark"] = Connection("spark", spark, "local[2]")
    sql = (
        "SELECT status, count(*) AS n, round(sum(revenue), 2) AS revenue FROM orders "
        "WHERE order_date >= DATE '2024-06-01' GROUP BY ALL"
    )
    result = session.router.run(sql)
    assert result.plan.decision == "scale out" and result.plan.connection == "spark"
    assert result.plan.dialect == "spark"
    on_duckdb = session.router.run(sql, engine="duckdb")
    assert on_duckdb.plan.connection == "duckdb"
    frames_equal(result.df, on_duckdb.df)


def test_a_notebook_dataframe_duckdb_finds_by_name_runs_without_rereading_catalogs(
    fed, monkeypatch
):
    from aiser_jupyter.engines import router as router_module

    notebook_frame = pd.DataFrame({"x": [1, 2, 3]})  # noqa: F841 - DuckDB reads it by name
    reads = []
    real = router_module.Catalog.read
    monkeypatch.setattr(
        router_module.Catalog, "read", staticmethod(lambda c: reads.append(c.name) or real(c))
    )
    fed.router.forget()
    sql = "SELECT sum(x) AS s FROM notebook_frame"
    first = fed.router.run(sql)
    assert first.plan.decision == "as written" and first.df["s"].tolist() == [6]
    assert sorted(reads) == ["duckdb", "duckdb", "pg", "pg"]  # read, then once again
    fed.router.run(sql)
    assert len(reads) == 4  # the name is known to be nobody's for a while


def test_three_sources_two_of_them_databases(fed, pg_retail):
    fed.connect(pg_retail, name="pg2")
    fed.sources.use("duckdb")
    sql = """
        SELECT c.segment, count(*) AS n, sum(o.quantity) AS units
        FROM orders o
        JOIN pg.customers c ON o.customer_id = c.customer_id
        JOIN pg2.products p ON o.product_id = p.product_id
        WHERE p.category = 'Toys' AND c.country = 'GB'
        GROUP BY ALL
    """
    result = fed.router.run(sql)
    reads = {step.connection: step.sql for step in result.plan.steps[:-1]}
    assert "country = 'GB'" in reads["pg"] and "category = 'Toys'" in reads["pg2"]
    orders = RETAIL["orders"].to_pandas()
    merged = orders.merge(RETAIL["customers"].to_pandas(), on="customer_id").merge(
        RETAIL["products"].to_pandas(), on="product_id"
    )
    kept = merged[(merged.category == "Toys") & (merged.country == "GB")]
    expected = (
        kept.groupby("segment").agg(n=("order_id", "size"), units=("quantity", "sum")).reset_index()
    )
    frames_equal(result.df, expected)


SHAPES = {
    "cte": (
        "WITH x AS (SELECT * FROM customers WHERE region = 'North') "
        "SELECT count(*) AS n FROM orders JOIN x USING (customer_id)",
        "WHERE region = 'North'",
    ),
    "in_subquery": (
        "SELECT count(*) AS n FROM orders "
        "WHERE customer_id IN (SELECT customer_id FROM customers WHERE segment = 'smb')",
        "WHERE segment = 'smb'",
    ),
    "comma_join": (
        "SELECT c.region, count(DISTINCT o.product_id) AS n FROM orders o, customers c "
        "WHERE o.customer_id = c.customer_id AND c.country = 'US' GROUP BY 1",
        "WHERE country = 'US'",
    ),
    "right_join": (  # the preserved side is kept whole: nothing is pushed past an outer join
        "SELECT c.region, count(o.order_id) AS n FROM orders o RIGHT JOIN customers c "
        "ON o.customer_id = c.customer_id AND o.quantity > 5 "
        "WHERE c.segment = 'enterprise' GROUP BY 1",
        None,
    ),
    "star": (
        "SELECT * FROM orders o JOIN customers c USING (customer_id) "
        "WHERE c.region = 'West' ORDER BY order_id LIMIT 5",
        "WHERE region = 'West'",
    ),
}


@pytest.mark.parametrize("name", list(SHAPES))
def test_query_shapes_federate_to_the_answer_of_one_duckdb_with_both(fed, name):
    sql, pushed = SHAPES[name]
    result = fed.router.run(sql)
    [read] = result.plan.steps[:-1]
    assert (pushed in read.sql) if pushed else "WHERE" not in read.sql
    both = duckdb.connect()
    for table, data in RETAIL.items():
        both.register(table, data)
    frames_equal(result.df, both.sql(sql).to_arrow_table().to_pandas())
