"""The read-only guard: attacks are refused with a reason that names them; analysis passes.

Every query the guard lets through is also run, read-only, on a real DuckDB and a real
PostgreSQL holding the sample retail tables, and must give the answer the same query gives
when run directly: a guard that passes a query the engines then cannot run is no use.
"""

from __future__ import annotations

import math

import pytest

from aiser_jupyter.engines.direct import PostgresEngine
from aiser_jupyter.engines.duckdb import DuckDBEngine
from aiser_jupyter.errors import QueryError, UnsafeSQLError
from aiser_jupyter.security import check_sql
from aiser_jupyter.sources.sample import retail_tables

BOTH = ("duckdb", "postgres")

ATTACKS_ANY_DIALECT = [
    ("DROP TABLE orders", "DROP changes the database"),
    ("DELETE FROM orders", "DELETE writes data"),
    ("UPDATE orders SET revenue = 0", "UPDATE writes data"),
    ("INSERT INTO orders SELECT * FROM orders", "INSERT writes data"),
    ("CREATE TABLE copy AS SELECT * FROM orders", "CREATE changes the database"),
    ("CREATE VIEW v AS SELECT 1", "CREATE changes the database"),
    ("ALTER TABLE orders ADD COLUMN x INT", "ALTER changes the database"),
    ("TRUNCATE orders", "TRUNCATE deletes data"),
    ("SELECT 1; DROP TABLE orders", "2 statements"),
    ("SELECT 1; SELECT 2", "2 statements"),
    ("SELECT * INTO copy FROM orders", "SELECT INTO creates a table"),
    ("SELECT * FROM orders FOR UPDATE", "locks rows"),
    ("COPY orders TO '/tmp/stolen.csv'", "COPY reads or writes files"),
    ("COPY orders FROM '/tmp/evil.csv'", "COPY reads or writes files"),
    ("SET search_path = evil", "SET changes settings"),
    ("RESET ALL", "RESET changes settings"),
    ("BEGIN", "transaction control"),
    ("COMMIT", "transaction control"),
    ("ROLLBACK", "transaction control"),
    ("CALL do_something()", "CALL runs a procedure"),
    ("VACUUM", "VACUUM rewrites storage"),
    ("EXPLAIN ANALYZE DELETE FROM orders", "EXPLAIN ANALYZE runs the statement"),
    ("SELECT nextval('orders_seq')", "nextval() advances a sequence"),
    ("SELECT setseed(0.5)", "setseed() changes the random state"),
    ("SELECT current_setting('data_directory')", "current_setting() reads"),
    ("SELECT * FROM orders WHERE order_id IN (SELECT nextval('s'))", "nextval()"),
    ("WITH x AS (SELECT 1) SELECT * FROM x; DELETE FROM orders", "2 statements"),
    ("", "there is no statement"),
    ("-- only a comment", "there is no statement"),
    ("SELECT * FROM (", "could not parse the SQL (Expected table name"),
    ("SELEC 1", "could not parse the SQL"),
]

ATTACKS = {
    "duckdb": [
        ("SELECT * FROM read_csv('/etc/passwd')", "read_csv() reads files"),
        ("SELECT * FROM read_csv_auto('/etc/passwd')", "read_csv_auto() reads files"),
        ("SELECT * FROM read_parquet('s3://bucket/x.parquet')", "read_parquet() reads files"),
        ("SELECT * FROM read_json_auto('x.json')", "read_json_auto() reads files"),
        ("SELECT * FROM read_ndjson('x.json')", "read_ndjson() reads files"),
        ("SELECT * FROM read_text('/etc/passwd')", "read_text() reads files"),
        ("SELECT * FROM read_blob('/etc/shadow')", "read_blob() reads files"),
        ("SELECT * FROM glob('/home/*')", "glob() lists files"),
        ("FROM parquet_scan('x.parquet')", "parquet_scan() reads files"),
        ("SELECT * FROM sqlite_scan('other.db', 't')", "sqlite_scan() opens another database"),
        ("SELECT * FROM postgres_scan('host=x', 'public', 't')", "opens another database"),
        ("SELECT * FROM mysql_scan('x', 't')", "mysql_scan() opens another database"),
        ("SELECT * FROM iceberg_scan('s3://lake/t')", "iceberg_scan() reads files"),
        ("SELECT * FROM delta_scan('s3://lake/t')", "delta_scan() reads files"),
        ("SELECT * FROM query('DROP TABLE orders')", "query() runs SQL from a string"),
        ("SELECT * FROM query_table('orders')", "query_table() runs SQL from a string"),
        ("SELECT * FROM '/etc/passwd'", "FROM '/etc/passwd' reads a file or URL"),
        ("SELECT * FROM 'https://example.com/x.parquet'", "reads a file or URL"),
        ("FROM 'data/*.csv'", "FROM 'data/*.csv' reads a file or URL"),
        ('SELECT * FROM "orders.csv"', "FROM 'orders.csv' reads a file or URL"),
        ("SELECT * FROM data.csv", "FROM 'data.csv' reads a file or URL"),
        ("SELECT * FROM exports.parquet", "reads a file or URL"),
        ("SELECT getenv('HOME')", "getenv() reads the environment"),
        ("SELECT * FROM duckdb_settings()", "duckdb_settings() reveals engine state"),
        ("SELECT * FROM duckdb_secrets()", "duckdb_secrets() reveals engine state"),
        ("SELECT * FROM duckdb_databases", "the table duckdb_databases reveals"),
        ("SELECT * FROM pragma_database_list", "the table pragma_database_list reveals"),
        ("SELECT * FROM which_secret('s3://x', 's3')", "which_secret() reveals secrets"),
        ("SELECT * FROM checkpoint()", "checkpoint() writes the database"),
        ("SELECT * FROM orders, LATERAL read_csv(orders.status)", "read_csv() reads files"),
        ("WITH x AS (SELECT * FROM read_parquet('x.parquet')) SELECT * FROM x", "read_parquet"),
        ("SELECT (SELECT count(*) FROM read_csv('/etc/passwd'))", "read_csv() reads files"),
        ("SELECT * FROM generate_series(1, 2), sniff_csv('x.csv')", "sniff_csv() reads a file"),
        ("SELECT * FROM unknown_table_function(1)", "unknown_table_function() is not one"),
        ("ATTACH 'other.db' AS other", "ATTACH opens another database"),
        ("DETACH other", "DETACH closes a database"),
        ("INSTALL httpfs", "INSTALL downloads an extension"),
        ("LOAD httpfs", "LOAD loads an extension"),
        ("PRAGMA database_list", "PRAGMA reads or changes engine settings"),
        ("SET enable_external_access = true", "SET changes settings"),
        ("CALL pragma_version()", "CALL runs a procedure"),
        ("EXPORT DATABASE '/tmp/dump'", "could not parse"),
        ("IMPORT DATABASE '/tmp/dump'", "could not parse"),
        ("CHECKPOINT", "CHECKPOINT writes the database"),
        ("USE other", "USE changes the default database"),
        ("SHOW TABLES", "SHOW is not supported here"),
        ("EXPLAIN SELECT 1", "EXPLAIN is not supported here"),
        ("CREATE MACRO evil() AS 1", "CREATE changes the database"),
        ("CREATE SECRET (TYPE s3, KEY_ID 'x')", "could not parse"),
    ],
    "postgres": [
        ("WITH gone AS (DELETE FROM orders RETURNING *) SELECT count(*) FROM gone", "DELETE"),
        ("WITH x AS (UPDATE orders SET revenue = 0 RETURNING 1) SELECT * FROM x", "UPDATE"),
        ("WITH x AS (INSERT INTO orders DEFAULT VALUES RETURNING 1) SELECT * FROM x", "INSERT"),
        (
            "MERGE INTO orders o USING products p ON o.product_id = p.product_id "
            "WHEN MATCHED THEN DELETE",
            "MERGE writes data",
        ),
        ("SELECT pg_read_file('/etc/passwd')", "pg_read_file() reads server files"),
        ("SELECT pg_read_binary_file('/etc/passwd')", "reads server files"),
        ("SELECT pg_catalog.pg_read_file('/etc/passwd')", "pg_read_file() reads server files"),
        ("SELECT * FROM pg_ls_dir('.')", "pg_ls_dir() lists server files"),
        ("SELECT pg_stat_file('postgresql.conf')", "pg_stat_file() reads server files"),
        ("SELECT lo_import('/etc/passwd')", "lo_import() reads or writes server files"),
        ("SELECT lo_export(1, '/tmp/x')", "lo_export() reads or writes server files"),
        ("SELECT * FROM dblink('dbname=aiser', 'DELETE FROM orders') AS t(x text)", "dblink()"),
        ("SELECT dblink_exec('dbname=aiser', 'DROP TABLE orders')", "dblink_exec()"),
        ("SELECT pg_sleep(10)", "pg_sleep() only waits"),
        ("SELECT txid_current()", "txid_current() reads transaction state"),
        ("SELECT pg_current_xact_id()", "reads transaction state"),
        ("SELECT set_config('search_path', 'evil', false)", "set_config() changes settings"),
        ("SELECT pg_advisory_lock(1)", "pg_advisory_lock() takes locks"),
        ("SELECT pg_terminate_backend(1)", "pg_terminate_backend() ends other sessions"),
        ("SELECT pg_cancel_backend(1)", "cancels other sessions"),
        ("SELECT pg_reload_conf()", "administers the server"),
        ("SELECT pg_notify('channel', 'x')", "pg_notify() sends a notification"),
        ("SELECT pg_stat_reset()", "pg_stat_reset() resets server state"),
        ("SELECT query_to_xml('DELETE FROM orders', true, false, '')", "runs SQL from a string"),
        ("SELECT * FROM pg_settings", "the table pg_settings reveals server settings"),
        ("SELECT * FROM ROWS FROM (generate_series(1, 2), pg_ls_dir('.'))", "pg_ls_dir()"),
        ("SELECT * INTO TEMP copy FROM orders", "SELECT INTO creates a table"),
        ("SELECT * FROM orders FOR SHARE", "locks rows"),
        ("COPY orders TO PROGRAM 'rm -rf /'", "COPY reads or writes files"),
        ("COPY (SELECT 1) TO '/tmp/x'", "COPY reads or writes files"),
        ("DO $$ BEGIN DELETE FROM orders; END $$", "DO runs procedural code"),
        ("SET ROLE postgres", "SET changes settings"),
        ("START TRANSACTION", "START is not a read-only query"),
        ("SAVEPOINT a", "SAVEPOINT is not a read-only query"),
        ("LOCK TABLE orders", "LOCK is not a read-only query"),
        ("LISTEN channel", "LISTEN is not a read-only query"),
        ("PREPARE p AS DELETE FROM orders", "PREPARE is not a read-only query"),
        ("EXECUTE p", "EXECUTE is not a read-only query"),
        ("DECLARE c CURSOR FOR SELECT 1", "DECLARE is not a read-only query"),
        ("ANALYZE orders", "ANALYZE updates statistics"),
        ("REFRESH MATERIALIZED VIEW mv", "REFRESH is not a read-only query"),
        ("CLUSTER orders", "CLUSTER is not a read-only query"),
        ("GRANT ALL ON orders TO PUBLIC", "GRANT changes permissions"),
        ("COMMENT ON TABLE orders IS 'x'", "COMMENT changes the catalog"),
        ("CREATE TEMP TABLE x AS SELECT 1", "CREATE changes the database"),
        ("SHOW data_directory", "SHOW is not a read-only query"),
    ],
}


@pytest.mark.parametrize("dialect", BOTH)
@pytest.mark.parametrize(("sql", "reason"), ATTACKS_ANY_DIALECT)
def test_attacks_in_any_dialect_are_refused_with_their_reason(sql, reason, dialect):
    with pytest.raises(UnsafeSQLError) as refused:
        check_sql(sql, dialect)
    message = str(refused.value)
    assert message.startswith("Refused: ")
    assert reason in message
    assert "Only one read-only query may run (SELECT, WITH, VALUES" in message


@pytest.mark.parametrize(
    ("dialect", "sql", "reason"),
    [(dialect, sql, reason) for dialect, attacks in ATTACKS.items() for sql, reason in attacks],
)
def test_dialect_specific_attacks_are_refused_with_their_reason(dialect, sql, reason):
    with pytest.raises(UnsafeSQLError) as refused:
        check_sql(sql, dialect)
    assert str(refused.value).startswith("Refused: ")
    assert reason in str(refused.value)


def test_a_refusal_is_a_query_error_carrying_the_sql():
    with pytest.raises(QueryError) as refused:
        check_sql("DROP TABLE orders")
    assert isinstance(refused.value, UnsafeSQLError)
    assert refused.value.sql == "DROP TABLE orders"


# Analytical queries over the sample tables (orders, customers, products), valid in both
# DuckDB and PostgreSQL; each has an ORDER BY or a single row, so answers compare exactly.
ANALYSIS = [
    "SELECT 1 AS one",
    "SELECT count(*) AS n FROM orders",
    """SELECT customer_id, order_date, revenue,
              sum(revenue) OVER (PARTITION BY customer_id ORDER BY order_date, order_id) AS running
       FROM orders ORDER BY customer_id, order_date, order_id LIMIT 20""",
    """WITH monthly AS (
           SELECT date_trunc('month', order_date) AS month, sum(revenue) AS revenue
           FROM orders GROUP BY 1)
       SELECT month, revenue, revenue - lag(revenue) OVER (ORDER BY month) AS change
       FROM monthly ORDER BY month""",
    "SELECT region AS label FROM customers UNION SELECT category FROM products ORDER BY 1",
    "SELECT region FROM customers INTERSECT SELECT region FROM customers ORDER BY 1",
    "SELECT segment FROM customers EXCEPT SELECT 'Consumer' ORDER BY 1",
    """SELECT name FROM customers
       WHERE customer_id IN (SELECT customer_id FROM orders WHERE revenue > 1000)
       ORDER BY name, customer_id LIMIT 10""",
    """SELECT CASE WHEN revenue > 500 THEN 'big' WHEN revenue > 100 THEN 'medium'
                   ELSE 'small' END AS size, count(*) AS n
       FROM orders GROUP BY 1 ORDER BY 1""",
    """SELECT extract(year FROM order_date) AS year, count(*) AS n, min(order_date) AS first
       FROM orders GROUP BY 1 ORDER BY 1""",
    """SELECT upper(substring(name, 1, 3)) || '-' || lower(region) AS tag, length(email) AS n
       FROM customers ORDER BY customer_id LIMIT 5""",
    "SELECT order_id FROM orders ORDER BY order_id LIMIT 5 OFFSET 10",
    """SELECT p.category, (SELECT count(*) FROM orders o WHERE o.product_id = p.product_id) AS n
       FROM products p ORDER BY p.product_id LIMIT 5""",
    """SELECT c.segment, sum(o.revenue) AS revenue, avg(o.quantity) AS quantity
       FROM orders o JOIN customers c ON c.customer_id = o.customer_id
       GROUP BY c.segment HAVING sum(o.revenue) > 0 ORDER BY 1""",
    """SELECT count(DISTINCT customer_id) AS buyers,
              count(*) FILTER (WHERE status = 'returned') AS returned FROM orders""",
    """SELECT count(*) AS never_ordered FROM customers c
       WHERE NOT EXISTS (SELECT 1 FROM orders o WHERE o.customer_id = c.customer_id)""",
    """SELECT category, name FROM (
           SELECT category, name,
                  rank() OVER (PARTITION BY category ORDER BY unit_price DESC, name) AS r
           FROM products) ranked
       WHERE r = 1 ORDER BY category""",
    """SELECT a.order_id, b.order_id AS next_order FROM orders a
       JOIN orders b ON b.order_id = a.order_id + 1
       WHERE a.customer_id = b.customer_id ORDER BY a.order_id LIMIT 5""",
    "WITH RECURSIVE n(i) AS (SELECT 1 UNION ALL SELECT i + 1 FROM n WHERE i < 5) "
    "SELECT sum(i) AS total FROM n",
    "SELECT * FROM generate_series(1, 3) AS g(x) ORDER BY x",
    "VALUES (1, 'a'), (2, 'b')",
    """SELECT coalesce(nullif(status, 'completed'), 'done') AS s, cast(quantity AS varchar) AS q
       FROM orders ORDER BY order_id LIMIT 3""",
    """SELECT table_name FROM information_schema.tables
       WHERE table_name IN ('orders', 'customers') ORDER BY 1""",
    "SELECT round(CAST(avg(unit_price - unit_cost) AS numeric), 2) AS margin FROM products",
]

DUCKDB_ANALYSIS = [
    """SELECT customer_id, order_id FROM orders
       QUALIFY row_number() OVER (PARTITION BY customer_id ORDER BY order_date DESC, order_id) = 1
       ORDER BY customer_id LIMIT 5""",
    "SELECT status, count(*) AS n FROM orders GROUP BY ALL ORDER BY ALL",
    "FROM products SELECT category, max(unit_price) AS top GROUP BY category ORDER BY category",
    """WITH p AS (PIVOT orders ON status USING count(*) GROUP BY product_id)
       SELECT * FROM p ORDER BY product_id LIMIT 5""",
    """SELECT * FROM (SELECT status, product_id FROM orders)
       PIVOT (count(*) FOR status IN ('completed', 'returned')) ORDER BY product_id LIMIT 5""",
    "DESCRIBE orders",
    "DESCRIBE SELECT order_id, revenue FROM orders",
    "SUMMARIZE products",
    "SELECT * EXCLUDE (email, signup_date) FROM customers ORDER BY customer_id LIMIT 3",
    "SELECT COLUMNS('unit_.*') FROM products ORDER BY product_id LIMIT 3",
    """SELECT strftime(order_date, '%Y-%m') AS month, date_diff('day', min(order_date),
              max(order_date)) AS span FROM orders GROUP BY 1 ORDER BY 1 LIMIT 3""",
    """SELECT list_transform([1, 2, 3], lambda x: x * quantity) AS xs, string_agg(status, ',')
              OVER (ORDER BY order_id ROWS 1 PRECEDING) AS last_two
       FROM orders ORDER BY order_id LIMIT 3""",
    "SELECT * FROM range(3) AS r(i), unnest([10, 20]) AS u(j) ORDER BY i, j",
    "SELECT o FROM orders o ORDER BY order_id LIMIT 2",
    "SELECT * FROM customers NATURAL JOIN (SELECT customer_id, count(*) AS n FROM orders "
    "GROUP BY 1) ORDER BY customer_id LIMIT 3",
    "TABLE products ORDER BY product_id LIMIT 2",
]

POSTGRES_ANALYSIS = [
    """SELECT DISTINCT ON (customer_id) customer_id, order_id FROM orders
       ORDER BY customer_id, order_date DESC, order_id LIMIT 5""",
    "SELECT to_char(order_date, 'YYYY-MM') AS month, count(*) FROM orders GROUP BY 1 ORDER BY 1",
    """SELECT c.customer_id, last.order_id FROM customers c
       CROSS JOIN LATERAL (SELECT order_id FROM orders o WHERE o.customer_id = c.customer_id
                           ORDER BY order_date DESC, order_id LIMIT 1) last
       ORDER BY c.customer_id LIMIT 5""",
    "SELECT name ILIKE 'a%' AS a, count(*) FROM customers GROUP BY 1 ORDER BY 1",
    "SELECT order_date + interval '1 month' AS later FROM orders ORDER BY order_id LIMIT 2",
    "SELECT string_agg(category, ',' ORDER BY category) AS all FROM (SELECT DISTINCT category "
    "FROM products) c",
    "SELECT quantity::text AS q FROM orders ORDER BY order_id FETCH FIRST 3 ROWS ONLY",
    "SELECT * FROM unnest(ARRAY[3, 1, 2]) WITH ORDINALITY AS u(v, i) ORDER BY i",
    "TABLE products ORDER BY product_id LIMIT 2",
    "SELECT pg_typeof(revenue)::text AS t FROM orders LIMIT 1",
]


@pytest.mark.parametrize("dialect", BOTH)
@pytest.mark.parametrize("sql", ANALYSIS)
def test_analysis_passes_in_both_dialects(sql, dialect):
    assert check_sql(sql, dialect) is not None


@pytest.fixture(scope="module")
def duck():
    engine = DuckDBEngine()
    for name, table in retail_tables().items():
        engine.store(name, table)
    yield engine
    engine.close()


@pytest.fixture(scope="module")
def pg(pg_retail):
    engine = PostgresEngine(pg_retail)
    yield engine
    engine.close()


def same(left, right) -> bool:
    """Two Arrow results hold the same rows (floats to 1e-9: sums may be added in any order)."""
    if left.column_names != right.column_names or left.num_rows != right.num_rows:
        return False
    for a, b in zip(left.to_pylist(), right.to_pylist(), strict=True):
        for x, y in zip(a.values(), b.values(), strict=True):
            if isinstance(x, float) and isinstance(y, float):
                if not math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9):
                    return False
            elif x != y:
                return False
    return True


@pytest.mark.parametrize("sql", ANALYSIS + DUCKDB_ANALYSIS)
def test_duckdb_analysis_passes_and_answers_as_run_directly(duck, sql):
    check_sql(sql, "duckdb")
    direct = duck.execute(sql)
    read_only = duck.execute_read_only(sql, limit=1000, timeout=30)
    assert direct is not None and direct.num_rows > 0
    assert same(read_only, direct), (read_only.to_pylist()[:3], direct.to_pylist()[:3])


@pytest.mark.parametrize("sql", ANALYSIS + POSTGRES_ANALYSIS)
def test_postgres_analysis_passes_and_answers_as_run_directly(pg, sql):
    check_sql(sql, "postgres")
    direct = pg.execute(sql)
    read_only = pg.execute_read_only(sql, limit=1000, timeout=30)
    assert direct is not None and direct.num_rows > 0
    assert same(read_only, direct)


def test_answers_match_values_computed_from_the_sample(duck, pg):
    orders = retail_tables()["orders"].to_pylist()
    big = sum(1 for o in orders if o["revenue"] > 1000)
    sql = "SELECT count(*) AS n FROM orders WHERE revenue > 1000"
    assert duck.execute_read_only(sql, limit=1, timeout=30).to_pylist() == [{"n": big}]
    assert pg.execute_read_only(sql, limit=1, timeout=30).to_pylist() == [{"n": big}]
    recursive = ANALYSIS[18]
    assert duck.execute_read_only(recursive, limit=1, timeout=30).to_pylist() == [{"total": 15}]
