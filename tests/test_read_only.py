"""Read-only execution in the engines, the wall behind the guard: these call the engines
directly, guard bypassed, to show that a write or a file read still cannot happen.

Real DuckDB, a real PostgreSQL server on loopback, and SQLite through SQLAlchemy.
"""

from __future__ import annotations

import time

import pandas as pd
import pytest

from aiser_jupyter.engines.direct import PostgresEngine, ReconnectedWarning, SqlAlchemyEngine
from aiser_jupyter.engines.duckdb import DuckDBEngine
from aiser_jupyter.errors import QueryError, QueryInterrupted, QueryTimeout, UnsafeSQLError

# About 8 s on this machine when not stopped: a missed stop fails the test, never hangs it.
SLOW = "SELECT count(*) AS n FROM range(3000000000) a WHERE a.range % 7 = 3"


@pytest.fixture
def duck():
    engine = DuckDBEngine()
    engine.execute("CREATE TABLE orders AS SELECT range AS id, range % 5 AS kind FROM range(1000)")
    yield engine
    engine.close()


def read(engine, sql: str, *, limit: int = 1000, timeout: float = 30, params=None) -> list:
    return engine.execute_read_only(sql, params, limit=limit, timeout=timeout).to_pylist()


def count(engine, table: str) -> int:
    return engine.execute(f"SELECT count(*) AS n FROM {table}").to_pylist()[0]["n"]


# DuckDB: a second database with external access off


def test_duckdb_read_only_reads_no_file_even_without_the_guard(duck, tmp_path, monkeypatch):
    secret = tmp_path / "secret.csv"
    secret.write_text("password\nhunter2\n")
    monkeypatch.chdir(tmp_path)
    # The threat is real: the engine itself reads a dotted name as a file.
    assert duck.execute("SELECT * FROM secret.csv").to_pylist() == [{"password": "hunter2"}]
    for sql in (f"SELECT * FROM read_csv('{secret}')", f"SELECT * FROM '{secret}'"):
        with pytest.raises(QueryError, match=r"disabled by configuration|does not exist"):
            read(duck, sql)
    with pytest.raises(QueryError, match=r"Table secret\.csv does not exist"):
        read(duck, "SELECT * FROM secret.csv")
    with pytest.raises(QueryError, match="disabled by configuration"):
        read(duck, f"COPY (SELECT 1) TO '{tmp_path / 'out.csv'}'")
    with pytest.raises(QueryError, match="disabled by configuration"):
        read(duck, f"ATTACH '{tmp_path / 'other.duckdb'}' AS other")
    with pytest.raises(QueryError):
        read(duck, "INSTALL httpfs")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["secret.csv"]


def test_duckdb_sandbox_keeps_external_access_off_for_good(duck):
    assert read(duck, "SELECT current_setting('enable_external_access') AS on") == [{"on": False}]
    with pytest.raises(QueryError, match=r"configuration has been locked|Cannot enable"):
        read(duck, "SET enable_external_access = true")
    assert read(duck, "SELECT current_setting('enable_external_access') AS on") == [{"on": False}]


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO orders VALUES (5000, 1)",
        "DELETE FROM orders",
        "UPDATE orders SET kind = 0",
        "DROP TABLE orders",
        "ALTER TABLE orders ADD COLUMN x INT",
        "CREATE TABLE orders2 AS SELECT * FROM orders",
        "CREATE TABLE fresh AS SELECT 1 AS x",
    ],
)
def test_duckdb_writes_in_the_read_only_path_never_reach_the_database(duck, sql):
    with pytest.raises(QueryError):
        read(duck, sql)
    assert count(duck, "orders") == 1000
    assert duck.execute("SELECT count(*) AS n FROM orders WHERE kind = 0").to_pylist() == [
        {"n": 200}
    ]
    tables = duck.execute("SELECT table_name FROM information_schema.tables").to_pylist()
    assert tables == [{"table_name": "orders"}]
    with pytest.raises(QueryError, match="does not exist"):
        read(duck, "SELECT * FROM fresh")  # nothing lingers in the sandbox either


def test_duckdb_read_only_reads_tables_views_frames_and_qualified_names(duck, tmp_path):
    (tmp_path / "prices.csv").write_text("sku,price\na,1.5\nb,2.5\n")
    duck.execute(f"CREATE VIEW prices AS SELECT * FROM read_csv('{tmp_path / 'prices.csv'}')")
    duck.execute('CREATE SCHEMA shop; CREATE TABLE shop."Odd Name" AS SELECT 7 AS v')
    duck.register("frame", pd.DataFrame({"k": [1, 2, 3], "label": ["x", "y", "z"]}))
    assert read(duck, "SELECT sku, price FROM prices ORDER BY sku") == [
        {"sku": "a", "price": 1.5},
        {"sku": "b", "price": 2.5},
    ]
    assert read(duck, "SELECT label FROM frame WHERE k > $1 ORDER BY k", params=[1]) == [
        {"label": "y"},
        {"label": "z"},
    ]
    assert read(duck, 'SELECT v FROM shop."odd name"') == [{"v": 7}]
    assert read(duck, "SELECT count(*) AS n FROM memory.main.orders") == [{"n": 1000}]
    columns = "SELECT count(*) AS n FROM information_schema.columns WHERE table_name = 'orders'"
    assert read(duck, columns) == [{"n": 2}]
    self_join = (
        "SELECT count(*) AS n FROM orders a JOIN orders b ON a.id = b.id + 1 AND a.kind = b.kind"
    )
    assert read(duck, self_join) == [{"n": 0}]
    # A CTE named like a table hides it; the qualified table is still the table.
    shadowed = (
        "WITH orders AS (SELECT 1 AS x) "
        "SELECT (SELECT count(*) FROM main.orders) AS n, x FROM orders"
    )
    assert read(duck, shadowed) == [{"n": 1000, "x": 1}]
    assert read(duck, "DESCRIBE orders") == duck.execute("DESCRIBE orders").to_pylist()


def test_duckdb_columns_resolve_as_they_do_directly(duck):
    duck.execute("CREATE TABLE a AS SELECT range AS id, range * 10 AS v, 'a' AS tag FROM range(5)")
    duck.execute("CREATE TABLE b AS SELECT range AS id, range * 20 AS v FROM range(3, 8)")
    for sql in (
        "SELECT id, (SELECT max(v) FROM b WHERE b.id = a.id) AS m FROM a ORDER BY id",
        "SELECT id FROM a WHERE v IN (SELECT v FROM b) ORDER BY id",
        "SELECT tag AS id, count(*) AS v FROM a GROUP BY tag",
        "SELECT a FROM a ORDER BY id",
        "SELECT * FROM a NATURAL JOIN b",
        "SELECT count(*) AS n FROM a, b",
    ):
        assert read(duck, sql) == duck.execute(sql).to_pylist(), sql


def test_duckdb_time_limit_stops_a_query_and_duckdb_keeps_working(duck):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"stopped after its 0\.5 s time limit"):
        read(duck, SLOW, timeout=0.5)
    assert time.monotonic() - started < 4
    assert read(duck, "SELECT count(*) AS n FROM orders") == [{"n": 1000}]
    assert count(duck, "orders") == 1000


def test_duckdb_time_limit_stops_work_inside_the_engines_own_database(duck):
    duck.execute(f"CREATE VIEW slow AS {SLOW}")
    started = time.monotonic()
    with pytest.raises(QueryTimeout):
        read(duck, "SELECT n FROM slow", timeout=0.5)
    assert time.monotonic() - started < 4
    assert duck.execute("SELECT 1 AS ok").to_pylist() == [{"ok": 1}]
    assert read(duck, "SELECT 2 AS ok") == [{"ok": 2}]


def test_duckdb_user_interrupt_is_not_a_time_limit(duck, interrupt_soon):
    interrupt_soon(0.5)
    with pytest.raises(QueryInterrupted) as stopped:
        read(duck, SLOW, timeout=60)
    assert not isinstance(stopped.value, QueryTimeout)
    assert read(duck, "SELECT 1 AS ok") == [{"ok": 1}]


def test_duckdb_row_cap(duck):
    assert len(read(duck, "SELECT * FROM range(1000000)", limit=7)) == 7
    rows = read(duck, "SELECT id FROM orders ORDER BY id DESC", limit=3)
    assert rows == [{"id": 999}, {"id": 998}, {"id": 997}]


def test_duckdb_temporary_tables_and_unregistered_frames_are_not_read(duck):
    duck.execute("CREATE TEMP TABLE scratch AS SELECT 1 AS v")
    with pytest.raises(QueryError, match="scratch is a temporary table"):
        read(duck, "SELECT * FROM scratch")
    local_frame = pd.DataFrame({"v": [1]})  # found by the engine by its variable name
    assert duck.execute("SELECT v FROM local_frame").to_pylist() == [{"v": 1}]
    with pytest.raises(QueryError, match="local_frame does not exist"):
        read(duck, "SELECT v FROM local_frame")
    assert len(local_frame) == 1


def test_duckdb_sandbox_follows_the_engines_time_zone(duck):
    sql = "SELECT CAST(TIMESTAMPTZ '2024-01-01 00:00:00+00' AS VARCHAR) AS t"
    duck.execute("SET TimeZone = 'Asia/Tokyo'")
    assert read(duck, sql) == [{"t": "2024-01-01 09:00:00+09"}]
    duck.execute("SET TimeZone = 'America/New_York'")
    assert read(duck, sql) == [{"t": "2023-12-31 19:00:00-05"}]


def test_duckdb_errors_while_rows_stream_are_query_errors(duck):
    duck.execute("CREATE TABLE words AS SELECT range::VARCHAR AS s FROM range(300000)")
    duck.execute("INSERT INTO words VALUES ('x')")
    sql = "SELECT CAST(s AS INTEGER) AS n FROM words"
    for run in (lambda: duck.execute(sql, limit=10**6), lambda: read(duck, sql, limit=10**6)):
        with pytest.raises(QueryError, match="Could not convert string 'x' to INT32"):
            run()
    assert read(duck, "SELECT count(*) AS n FROM words") == [{"n": 300001}]


def test_duckdb_one_statement_at_a_time(duck):
    with pytest.raises(QueryError, match="exactly one statement"):
        read(duck, "SELECT 1; DROP TABLE orders")
    assert count(duck, "orders") == 1000


# PostgreSQL: BEGIN READ ONLY, statement_timeout, always rolled back


@pytest.fixture
def pg(pg_url):
    engine = PostgresEngine(pg_url)
    yield engine
    engine.close()


def settings(pg) -> list:
    return pg.execute(
        "SELECT current_setting('transaction_read_only') AS read_only, "
        "current_setting('statement_timeout') AS timeout"
    ).to_pylist()


@pytest.mark.parametrize(
    "sql",
    [
        "INSERT INTO sales VALUES (5000, 'North', 1, DATE '2024-01-01')",
        "DELETE FROM sales",
        "UPDATE sales SET amount = 0",
        "WITH gone AS (DELETE FROM sales RETURNING *) SELECT count(*) FROM gone",
        "CREATE TABLE stolen AS SELECT * FROM sales",
        "DROP TABLE sales",
        "SELECT * FROM sales FOR UPDATE",
    ],
)
def test_postgres_refuses_writes_in_the_read_only_path_without_the_guard(pg, pg_server, sql):
    with pytest.raises(QueryError, match="read-only transaction") as refused:
        read(pg, sql)
    assert "SQLSTATE 25006" in str(refused.value)
    assert pg_server.psql("SELECT count(*), sum(amount) FROM sales") == "1000|750750.00"


def test_postgres_several_statements_do_not_escape_the_transaction(pg, pg_server):
    with pytest.raises(QueryError):
        read(pg, "COMMIT; DELETE FROM sales")
    assert pg_server.psql("SELECT count(*) FROM sales") == "1000"


def test_postgres_connection_is_back_to_normal_after(pg):
    assert read(pg, "SELECT count(*) AS n FROM sales") == [{"n": 1000}]
    assert settings(pg) == [{"read_only": "off", "timeout": "0"}]
    pg.execute("CREATE TEMP TABLE after_read_only (v int)")
    pg.execute("INSERT INTO after_read_only VALUES (1)")
    assert pg.execute("SELECT v FROM after_read_only").to_pylist() == [{"v": 1}]


def test_postgres_statement_timeout_and_the_next_query(pg):
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"stopped after its 0\.5 s time limit"):
        read(pg, "SELECT pg_sleep(5)", timeout=0.5)
    assert time.monotonic() - started < 3
    assert read(pg, "SELECT 1 AS ok") == [{"ok": 1}]
    assert settings(pg) == [{"read_only": "off", "timeout": "0"}]


def test_postgres_row_cap_and_types(pg):
    rows = read(pg, "SELECT g FROM generate_series(1, 200000) AS g ORDER BY g", limit=10)
    assert rows == [{"g": g} for g in range(1, 11)]
    amounts = read(pg, "SELECT amount FROM sales ORDER BY id", limit=2)
    assert amounts == [{"amount": 1.5}, {"amount": 3.0}]  # numeric as numbers, as execute
    assert read(pg, "SELECT 2 AS ok") == [{"ok": 2}]


def test_postgres_read_only_query_reruns_on_a_new_connection(pg, pg_server):
    assert read(pg, "SELECT 1 AS ok") == [{"ok": 1}]
    assert pg_server.terminate_connections() >= 1
    with pytest.warns(ReconnectedWarning, match="re-established"):
        assert read(pg, "SELECT count(*) AS n FROM sales") == [{"n": 1000}]
    assert settings(pg) == [{"read_only": "off", "timeout": "0"}]


def test_postgres_user_interrupt_is_not_a_time_limit(pg, interrupt_soon):
    interrupt_soon(0.5)
    with pytest.raises(QueryInterrupted) as stopped:
        read(pg, "SELECT pg_sleep(20)", timeout=60)
    assert not isinstance(stopped.value, QueryTimeout)
    assert read(pg, "SELECT 3 AS ok") == [{"ok": 3}]


# SQLAlchemy (SQLite): the guard, query_only, a rolled-back transaction, interrupt()


@pytest.fixture
def lite(tmp_path):
    engine = SqlAlchemyEngine(f"sqlite:///{tmp_path / 'lite.db'}")
    engine.execute("CREATE TABLE t (v INTEGER)")
    engine.execute("INSERT INTO t SELECT value FROM json_each('[1, 2, 3, 4, 5]')")
    yield engine
    engine.close()


def test_sqlalchemy_read_only_guards_caps_and_rolls_back(lite):
    assert read(lite, "SELECT v FROM t ORDER BY v", limit=2) == [{"v": 1}, {"v": 2}]
    with pytest.raises(UnsafeSQLError, match="DELETE writes data"):
        read(lite, "DELETE FROM t")
    assert count(lite, "t") == 5
    lite.execute("INSERT INTO t VALUES (6)")  # query_only is off again afterwards
    assert count(lite, "t") == 6


def test_sqlalchemy_time_limit_interrupts_sqlite(lite):
    endless = (
        "WITH RECURSIVE c(x) AS (SELECT 1 UNION ALL SELECT x + 1 FROM c WHERE x < 1000000000) "
        "SELECT count(*) AS n FROM c"
    )
    started = time.monotonic()
    with pytest.raises(QueryTimeout, match=r"0\.3 s time limit"):
        read(lite, endless, timeout=0.3)
    assert time.monotonic() - started < 4
    assert read(lite, "SELECT count(*) AS n FROM t") == [{"n": 5}]
