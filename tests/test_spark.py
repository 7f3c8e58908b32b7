"""Spark in local mode: files, lakes, the same answers as DuckDB, cancellation, read-only runs.

One local Spark session serves the whole module (starting one costs ~8 s).
"""

from __future__ import annotations

import math
import socket
import time

import duckdb
import pyarrow as pa
import pyarrow.orc as orc
import pyarrow.parquet as pq
import pytest
import sqlglot

from aiser_jupyter.errors import (
    ConnectionFailed,
    QueryError,
    QueryInterrupted,
    QueryTimeout,
    UnsafeSQLError,
)

pytest.importorskip("pyspark")

from aiser_jupyter.engines.spark import SparkEngine, SparkProgress, master_of, require_java

CONFIG = {
    "spark.sql.shuffle.partitions": "2",
    "spark.default.parallelism": "2",
    "spark.sql.session.timeZone": "UTC",
    # Tests run small queries on a busy machine: the JVM's quick compiler alone and a serial
    # collector start Spark and its first queries 2-4x sooner (slower on big data).
    "spark.driver.extraJavaOptions": "-XX:TieredStopAtLevel=1 -XX:+UseSerialGC",
}
LONG_QUERY = "SELECT sum(id % 7) AS s FROM range(0, 1000000000000, 1, 2)"
REGIONS = ["North", "South", "East", "West"]


@pytest.fixture(scope="module")
def spark():
    engine = SparkEngine("local[2]", config=CONFIG, progress=False)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def sales_rows():
    """1,000 sales: id, region, amount, day (known values, so sums are computed by hand)."""
    return [
        {
            "id": i,
            "region": REGIONS[i % 4],
            "amount": round(i * 1.5, 2),
            "day": f"2024-{1 + i % 12:02d}-{1 + i % 28:02d}",
        }
        for i in range(1, 1001)
    ]


@pytest.fixture(scope="module")
def sales_parquet(tmp_path_factory, sales_rows, spark):
    """The sales as a Parquet file, read by Spark as the view `sales`."""
    table = pa.Table.from_pylist(sales_rows)
    table = table.set_column(3, "day", table.column("day").cast(pa.date32()))
    path = tmp_path_factory.mktemp("spark") / "sales.parquet"
    pq.write_table(table, path)
    spark.read("sales", str(path))
    return path


def sorted_rows(table: pa.Table) -> list[tuple]:
    """Rows as tuples, floats rounded, sorted: engines may order ties and types differently."""
    rows = []
    for row in table.to_pylist():
        rows.append(tuple(round(v, 6) if isinstance(v, float) else v for v in row.values()))
    return sorted(rows, key=repr)


def test_parquet_group_by_matches_a_hand_computation(spark, sales_parquet, sales_rows):
    table = spark.execute(
        "SELECT region, count(*) AS n, sum(amount) AS total FROM sales GROUP BY region"
    )
    expected = {}
    for row in sales_rows:
        n, total = expected.get(row["region"], (0, 0.0))
        expected[row["region"]] = (n + 1, total + row["amount"])
    got = {r["region"]: (r["n"], r["total"]) for r in table.to_pylist()}
    assert got.keys() == expected.keys()
    for region, (n, total) in expected.items():
        assert got[region][0] == n
        assert math.isclose(got[region][1], total)


CORPUS = [
    "SELECT region, sum(amount) AS total FROM sales GROUP BY ALL",
    "SELECT id, region, amount, rank() OVER (PARTITION BY region ORDER BY amount DESC) AS r "
    "FROM sales QUALIFY r <= 3",
    "SELECT date_trunc('month', day) AS month, count(*) AS n FROM sales GROUP BY 1",
    "SELECT region, avg(amount) AS a, max(day) AS last_day FROM sales "
    "WHERE day >= DATE '2024-06-01' GROUP BY region HAVING count(*) > 10",
    "SELECT region, sum(amount) OVER (PARTITION BY region ORDER BY id "
    "ROWS BETWEEN 2 PRECEDING AND CURRENT ROW) AS running FROM sales WHERE id <= 40",
    "SELECT extract(year FROM day) AS y, count(DISTINCT region) AS regions FROM sales GROUP BY y",
]


@pytest.mark.parametrize("query", CORPUS)
def test_the_same_query_on_duckdb_and_spark_gives_the_same_rows(spark, sales_parquet, query):
    con = duckdb.connect()
    con.execute(f"CREATE VIEW sales AS SELECT * FROM read_parquet('{sales_parquet}')")
    on_duckdb = con.sql(query).to_arrow_table()
    [spark_sql] = sqlglot.transpile(query, read="duckdb", write="spark")
    on_spark = spark.execute(spark_sql)
    assert on_duckdb.num_rows > 0
    assert on_spark.column_names == on_duckdb.column_names
    duck_rows = [
        tuple(v.date() if hasattr(v, "date") and callable(v.date) else v for v in row)
        for row in sorted_rows(on_duckdb)
    ]
    spark_rows = [
        tuple(v.date() if hasattr(v, "date") and callable(v.date) else v for v in row)
        for row in sorted_rows(on_spark)
    ]
    assert spark_rows == duck_rows


def test_csv_and_orc_files(spark, tmp_path):
    (tmp_path / "a.csv").write_text("city,people\nOslo,700\nBergen,290\n")
    orc.write_table(pa.table({"k": [1, 2, 3], "v": ["x", "y", "z"]}), tmp_path / "b.orc")
    spark.read("cities", str(tmp_path / "a.csv"))
    spark.read("letters", str(tmp_path / "b.orc"))
    assert spark.execute("SELECT sum(people) AS p FROM cities").to_pylist() == [{"p": 990}]
    assert spark.execute("SELECT v FROM letters WHERE k = 2").to_pylist() == [{"v": "y"}]
    with pytest.raises(ConnectionFailed, match="fmt="):
        spark.read("x", str(tmp_path / "a.dat"))


def test_named_parameters_and_a_row_limit(spark):
    table = spark.execute("SELECT id FROM range(100) WHERE id >= :low", {"low": 90}, limit=3)
    assert table.num_rows == 3
    assert all(v >= 90 for v in table.column("id").to_pylist())


def test_a_statement_without_rows_returns_none(spark):
    assert spark.execute("CREATE OR REPLACE TEMP VIEW tiny AS SELECT 1 AS one") is None
    assert spark.execute("SELECT one FROM tiny").to_pylist() == [{"one": 1}]
    columns = spark.columns().to_pylist()
    assert {"schema": "", "table": "tiny", "column": "one", "type": "int"} in columns


def test_spark_errors_are_one_line_without_the_jvm_stack(spark):
    with pytest.raises(QueryError) as caught:
        spark.execute("SELECT * FROM no_such_table")
    message = str(caught.value)
    assert "no_such_table" in message
    assert "TABLE_OR_VIEW_NOT_FOUND" in message
    assert "\n" not in message and "org.apache" not in message
    assert spark.execute("SELECT 2 AS two").to_pylist() == [{"two": 2}]


def test_interrupting_a_long_query_cancels_its_jobs_and_reports_progress(spark, interrupt_soon):
    reports: list[SparkProgress] = []
    watched = SparkEngine("local[2]", progress=reports.append)  # the same session
    try:
        interrupt_soon(2.5)
        started = time.monotonic()
        with pytest.raises(QueryInterrupted, match="Spark cancelled"):
            watched.execute(LONG_QUERY)
        assert time.monotonic() - started < 60
    finally:
        watched.close()
    assert reports, "no progress was reported during a query of several seconds"
    assert reports[-1].tasks >= 2 and reports[-1].stages >= 1
    assert "Spark: stage" in str(reports[-1])
    tracker = spark.spark.sparkContext.statusTracker()
    deadline = time.monotonic() + 10
    while tracker.getActiveJobsIds() and time.monotonic() < deadline:
        time.sleep(0.1)
    assert tracker.getActiveJobsIds() == []
    assert spark.execute("SELECT 3 AS three").to_pylist() == [{"three": 3}]


def test_read_only_runs_have_a_time_limit_a_row_cap_and_the_guard(spark):
    with pytest.raises(QueryTimeout, match="1 s time limit"):
        spark.execute_read_only(LONG_QUERY, limit=10, timeout=1)
    capped = spark.execute_read_only("SELECT id FROM range(100)", limit=5, timeout=30)
    assert capped.num_rows == 5
    for statement in ("INSERT INTO tiny VALUES (2)", "DROP VIEW tiny", "SET x = 1"):
        with pytest.raises(UnsafeSQLError):
            spark.execute_read_only(statement, limit=5, timeout=30)
    assert spark.execute("SELECT count(*) AS n FROM tiny").to_pylist() == [{"n": 1}]


def test_lake_tables_reach_spark_through_arrow(spark, tmp_path):
    from deltalake import write_deltalake

    from aiser_jupyter.sources.lakes import catalog_options, local_catalog, open_lake

    data = pa.table({"id": [1, 2, 3], "amount": [1.5, 2.5, 3.5]})
    catalog = local_catalog(tmp_path / "ice")
    catalog.create_namespace("db")
    iceberg = catalog.create_table("db.sales", schema=data.schema)
    iceberg.append(data)
    first = iceberg.current_snapshot().snapshot_id
    with iceberg.update_schema() as update:
        update.rename_column("amount", "total")
    iceberg.append(pa.table({"id": [4], "total": [4.5]}))
    lake = open_lake("iceberg://local/db.sales", **catalog_options(tmp_path / "ice"))
    spark.register("ice_sales", lake)
    assert spark.execute("SELECT sum(total) AS t FROM ice_sales").to_pylist() == [{"t": 12.0}]
    old = open_lake("iceberg://local/db.sales", snapshot=first, **catalog_options(tmp_path / "ice"))
    spark.register("ice_sales_then", old)
    assert spark.execute("SELECT sum(amount) AS t FROM ice_sales_then").to_pylist() == [{"t": 7.5}]

    write_deltalake(tmp_path / "delta", data)
    write_deltalake(
        tmp_path / "delta",
        pa.table({"id": [4], "amount": [4.5], "region": ["N"]}),
        mode="append",
        schema_mode="merge",
    )
    spark.register("delta_sales", open_lake(f"delta://{tmp_path / 'delta'}"))
    assert spark.execute(
        "SELECT count(region) AS r, sum(amount) AS t FROM delta_sales"
    ).to_pylist() == [{"r": 1, "t": 12.0}]


def test_a_session_connects_spark_binds_parameters_and_shares_lakes(spark, tmp_path):
    from deltalake import write_deltalake

    from aiser_jupyter.sessions import Session

    session = Session()
    try:
        connection = session.sources.connect_spark("spark://local[2]", progress=False)
        assert connection.kind == "spark" and session.sources.current == "spark"
        result = session.sql("SELECT id * 2 AS d FROM range(10) WHERE id = :x", params={"x": 4})
        assert result.to_arrow().to_pylist() == [{"d": 8}]
        guarded = session.sql("SELECT id FROM range(50)", read_only=True)
        assert guarded.to_arrow().num_rows == 50
        write_deltalake(tmp_path / "d", pa.table({"id": [1, 2]}))
        session.sources.connect_lake(f"delta://{tmp_path / 'd'}", "shared", spark="spark")
        write_deltalake(tmp_path / "d", pa.table({"id": [3]}), mode="append")
        assert session.sources.refresh_external("shared") == []
        in_spark = session.sql("SELECT sum(id) AS s FROM shared", "spark").to_arrow()
        in_duckdb = session.sql("SELECT sum(id) AS s FROM shared", "duckdb").to_arrow()
        assert in_spark.to_pylist() == in_duckdb.to_pylist() == [{"s": 6}]
    finally:
        session.close()
    # Closing the Session's engine left the shared Spark session running for the others.
    assert spark.execute("SELECT 4 AS four").to_pylist() == [{"four": 4}]


def test_hudi_tables_and_cells_of_several_statements(spark, tmp_path):
    """A Hudi table (written by tools/hudi_writer, read by hudi-rs) in Spark and DuckDB, and
    a cell of two statements on Spark, which runs one statement per ``spark.sql``."""
    pytest.importorskip("hudi")
    from aiser_jupyter.sessions import Session
    from tools.hudi_writer import write_commit

    first = {"id": pa.array([1, 2, 3], pa.int64()), "fare": [10.0, 20.0, 5.0]}
    write_commit(tmp_path / "t", pa.table(first), "20240101000000000", name="t", record_key="id")
    update = {"id": pa.array([2, 4], pa.int64()), "fare": [25.0, 7.5]}
    write_commit(tmp_path / "t", pa.table(update), "20240102000000000", name="t", record_key="id")
    session = Session()
    try:
        session.sources.connect_spark("spark://local[2]", progress=False)
        session.sources.connect_lake(f"hudi://{tmp_path / 't'}", "trips", spark="spark")
        total = "SELECT count(*) AS n, sum(fare) AS s FROM trips"
        expected = [{"n": 4, "s": 47.5}]  # 10 + 25 (trip 2 updated) + 5 + 7.5
        assert session.sql(total, "spark").to_arrow().to_pylist() == expected
        assert session.sql(total, "duckdb").to_arrow().to_pylist() == expected
        cell = (
            "CREATE OR REPLACE TEMP VIEW cheap AS SELECT * FROM trips WHERE fare < 10;\n"
            "SELECT count(*) AS n, sum(fare) AS s FROM cheap;"
        )
        result = session.sql(cell, "spark")
        assert result.to_arrow().to_pylist() == [{"n": 2, "s": 12.5}]  # trips 3 and 4
        assert "2 statements ran" in result.notes
    finally:
        session.close()


def test_urls_and_a_missing_java(monkeypatch):
    assert master_of("sc://cluster:15002") == ("sc://cluster:15002", True)
    assert master_of("spark://local") == ("local[*]", False)
    assert master_of("spark://local[4]") == ("local[4]", False)
    assert master_of("spark://head:7077") == ("spark://head:7077", False)
    with socket.socket() as probe:  # a port where nothing listens
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    with pytest.raises(ConnectionFailed, match=f"No Spark Connect server answers at .*:{port}"):
        SparkEngine(f"sc://127.0.0.1:{port}")
    monkeypatch.setenv("PATH", "/nonexistent")
    monkeypatch.delenv("JAVA_HOME", raising=False)
    with pytest.raises(ConnectionFailed, match="Java 17"):
        require_java()
