"""Cells of several statements on DuckDB, PostgreSQL (real server), SQLite and the routed
path: split by sqlglot, run in order on one connection, the last rows shown, a failing or
refused statement named; and the ``data:<table>`` events that writes raise.

Expected values are written by hand from the rows the cells insert.
"""

from __future__ import annotations

import warnings

import pytest

import aiser_jupyter as aiser
from aiser_jupyter.errors import ParameterError, QueryError, UnsafeSQLError
from aiser_jupyter.sqltext.statements import split, written_tables
from tests.conftest import run, run_failing

CELL = """
CREATE TABLE orders (id int, region text, amount int);
INSERT INTO orders VALUES (1, 'North', 10), (2, 'South', 20), (3, 'North', 5);
-- a comment; with a semicolon
SELECT region, sum(amount) AS total FROM orders GROUP BY region ORDER BY region;
"""


def data_events(session) -> list[str]:
    events: list[str] = []
    session.on_change(lambda what: events.append(what) if what.startswith("data:") else None)
    return events


def test_split_keeps_each_statement_as_typed():
    text = "SELECT 'a;b' AS s; -- c; d\nSELECT \"x;y\" FROM t /* ; */;\n-- only a comment;\n"
    assert split(text, "duckdb") == ["SELECT 'a;b' AS s", '-- c; d\nSELECT "x;y" FROM t /* ; */']
    body = "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql; SELECT f()"
    assert split(body, "postgres") == [
        "CREATE FUNCTION f() RETURNS int AS $$ SELECT 1; $$ LANGUAGE sql",
        "SELECT f()",
    ]
    assert split("SELECT 1;", "duckdb") == ["SELECT 1"]
    assert split("-- nothing;\n", "duckdb") == []


@pytest.mark.parametrize(
    ("sql", "tables"),
    [
        ("INSERT INTO Live.Orders (a) VALUES (1)", ["live.orders"]),
        ("UPDATE t AS x SET a = 1", ["t"]),
        ("DELETE FROM s.t WHERE a = 1", ["s.t"]),
        ("MERGE INTO t USING s ON t.id = s.id WHEN MATCHED THEN DELETE", ["t"]),
        ("COPY t FROM 'f.csv'", ["t"]),
        ("COPY t TO 'f.csv'", []),
        ("CREATE TABLE n AS SELECT * FROM o", ["n"]),
        ("CREATE OR REPLACE VIEW v AS SELECT 1", ["v"]),
        ("DROP TABLE IF EXISTS a, b", ["a", "b"]),
        ("TRUNCATE TABLE a", ["a"]),
        ("ALTER TABLE t ADD COLUMN c int", ["t"]),
        ("WITH d AS (DELETE FROM t RETURNING *) SELECT * FROM d", ["t"]),
        ("SELECT * FROM updates JOIN inserted USING (id)", []),
        ("CREATE SCHEMA s", []),
        ("CREATE INDEX i ON t (a)", []),
    ],
)
def test_written_tables(sql, tables):
    assert written_tables(sql, "postgres") == tables


def test_a_duckdb_cell_of_three_statements(ip):
    frame = run(ip, "%%sql\n" + CELL)
    assert frame.values.tolist() == [["North", 15], ["South", 20]]
    assert "3 statements ran" in frame.caption
    session = aiser.session()
    assert [e.sql.split()[0] for e in session.history] == ["CREATE", "INSERT", "--"]
    assert all(e.error is None for e in session.history)


def test_what_shows_when_no_statement_is_a_query():
    session = aiser.session()
    events = data_events(session)
    result = session.sql("CREATE TABLE t (a int); INSERT INTO t VALUES (1), (2); DELETE FROM t")
    assert "3 statements ran: CREATE, INSERT, DELETE" in result.caption()
    assert events == ["data:t", "data:t", "data:t"]
    shown = session.sql("SELECT 7 AS x; INSERT INTO t VALUES (3)")
    assert shown.to_arrow().to_pylist() == [{"x": 7}]
    assert "2 statements ran; rows of statement 1" in shown.caption()
    events.clear()
    session.sql("CREATE SCHEMA live; CREATE TABLE Live.Orders AS SELECT 1 AS id")
    session.sql("INSERT INTO live.orders VALUES (2)")  # one statement tells too
    session.sql("SELECT count(*) FROM live.orders", read_only=True)
    assert events == ["data:live.orders", "data:live.orders"]


def test_parameters_templates_and_snippets_in_every_statement():
    session = aiser.session()
    session.sql("SELECT 1 AS n UNION ALL SELECT 2 UNION ALL SELECT 3", save="three", execute=False)
    result = session.sql(
        "CREATE TABLE picked AS SELECT n FROM three WHERE n >= 2;\n"
        "SELECT sum(n) AS s, {{ factor }} * count(*) AS c FROM picked WHERE n <= :high",
        params={"high": 3, "factor": 10},
    )
    assert result.to_arrow().to_pylist() == [{"s": 5, "c": 20}]  # n in (2, 3)
    assert "{{ }} rendered into the text" in result.notes
    with pytest.raises(ParameterError, match="name them"):
        session.sql("SELECT $1; SELECT $1", params=[1])


def test_a_failing_middle_statement_stops_the_cell(ip):
    run(ip, "%%sql\nCREATE TABLE log (v int)")
    error = run_failing(
        ip, "%%sql\nINSERT INTO log VALUES (1);\nSELECT * FROM missing;\nINSERT INTO log VALUES (3)"
    )
    assert isinstance(error, QueryError)
    message = str(error)
    assert message.startswith("Statement 2 of 3 failed: Catalog Error")
    assert "Statement 1 ran before it and was not undone" in message
    assert "the 1 statement after it did not run" in message
    assert error.sql == "SELECT * FROM missing"
    assert run(ip, "%%sql\nSELECT list(v) AS vs FROM log")["vs"].tolist()[0].tolist() == [1]


def test_read_only_guards_every_statement_before_any_runs():
    session = aiser.session()
    session.sql("CREATE TABLE keep AS SELECT 1 AS v")
    before = len(session.history)
    with pytest.raises(UnsafeSQLError) as caught:
        session.sql("SELECT v FROM keep; DELETE FROM keep", read_only=True)
    assert str(caught.value).startswith("Statement 2 of 2 was refused: Refused: DELETE")
    assert "No statement ran." in str(caught.value)
    assert len(session.history) == before
    both = session.sql("SELECT v FROM keep; SELECT v + 1 AS w FROM keep", read_only=True)
    assert both.to_arrow().to_pylist() == [{"w": 2}] and "read-only" in both.notes


def test_explain_and_errors_of_single_statements_stay(ip):
    plan = run(ip, "%%sql --explain\nSELECT 42 AS x")
    assert plan.connection == "duckdb"
    error = run_failing(ip, "%%sql --explain\nSELECT 1; SELECT 2")
    assert "--explain plans one statement; this cell has 2" in str(error)
    single = run_failing(ip, "%%sql\nSELECT * FROM nowhere")
    assert "Statement" not in str(single) and "nowhere" in str(single)


def test_postgres_runs_several_statements_on_one_connection(ip, pg_url, pg_server):
    aiser.connect(pg_url, name="pg")
    events = data_events(aiser.session())
    ip.user_ns["region"] = "West"
    frame = run(
        ip,
        "%%sql pg\n"
        "CREATE TEMP TABLE west AS SELECT id, amount FROM sales WHERE region = :region;\n"
        "CREATE FUNCTION pg_temp.twice(x numeric) RETURNS numeric AS $$ SELECT x * 2; $$"
        " LANGUAGE sql;\n"
        "SELECT count(*) AS n, pg_temp.twice(sum(amount)) AS doubled FROM west;",
    )
    # West is id % 4 == 3 among 1..1000: 250 ids, 3 + 7 + … + 999; amount = 1.5 * id.
    ids = [i for i in range(1, 1001) if i % 4 == 3]
    assert frame.values.tolist() == [[250, 2 * 1.5 * sum(ids)]]
    assert pg_server.psql("SELECT count(*) FROM sales WHERE id % 4 = 3") == "250"
    assert "3 statements ran" in frame.caption
    assert events == ["data:west"]


def test_postgres_failure_in_statement_two_leaves_statement_one_done(pg_url):
    aiser.connect(pg_url, name="pg")
    aiser.sql("DROP TABLE IF EXISTS cells_log; CREATE TABLE cells_log (v int)")
    with pytest.raises(QueryError) as caught:
        aiser.sql("INSERT INTO cells_log VALUES (1); INSERT INTO cells_log VALUES ('x')")
    assert str(caught.value).startswith("Statement 2 of 2 failed: ERROR:  invalid input syntax")
    assert "SQLSTATE 22P02" in str(caught.value)
    assert aiser.sql("SELECT sum(v) AS s FROM cells_log").df["s"].tolist() == [1]
    with pytest.raises(QueryError) as caught:
        aiser.sql("BEGIN; INSERT INTO cells_log VALUES (2); SELECT * FROM nosuch; COMMIT")
    assert "The transaction begun in statement 1 was rolled back" in str(caught.value)
    with warnings.catch_warnings():
        warnings.simplefilter("error")  # the connection works: no reconnection
        assert aiser.sql("SELECT sum(v) AS s FROM cells_log").df["s"].tolist() == [1]
    aiser.sql("DROP TABLE cells_log")


def test_a_transaction_the_cell_began_is_rolled_back_on_failure():
    session = aiser.session()
    session.sql("CREATE TABLE ledger (v int); INSERT INTO ledger VALUES (1)")
    with pytest.raises(QueryError) as caught:
        session.sql("BEGIN TRANSACTION; INSERT INTO ledger VALUES (2); SELECT 1 / 'x'; COMMIT")
    message = str(caught.value)
    assert message.startswith("Statement 3 of 4 failed: Conversion Error")
    assert "The transaction begun in statement 1 was rolled back: nothing it did stays" in message
    assert session.history[-1].sql == "ROLLBACK" and session.history[-1].error is None
    assert session.sql("SELECT sum(v) AS s FROM ledger").to_arrow().to_pylist() == [{"s": 1}]
    done = session.sql(
        "BEGIN; INSERT INTO ledger VALUES (5); COMMIT; SELECT sum(v) AS s FROM ledger"
    )
    assert done.to_arrow().to_pylist() == [{"s": 6}]


def test_sqlite_strings_comments_and_writes(tmp_path):
    aiser.connect(f"sqlite:///{tmp_path / 'cells.db'}", name="lite")
    result = aiser.sql(
        "CREATE TABLE notes (id integer, body text);\n"
        "INSERT INTO notes VALUES (1, 'a;b'), (2, '-- not a comment; really');\n"
        "/* two ; statements above */ SELECT group_concat(body, '|') AS bodies, "
        "count(*) AS n FROM notes;",
        "lite",
    )
    assert result.to_arrow().to_pylist() == [{"bodies": "a;b|-- not a comment; really", "n": 2}]
    assert "3 statements ran" in result.caption()


def test_the_routed_path_runs_each_statement_through_the_router(pg_url):
    aiser.connect(pg_url, name="pg")
    session = aiser.session()
    result = session.sql(
        "CREATE OR REPLACE TABLE targets AS SELECT 'North' AS region, 100 AS goal;\n"
        "SELECT t.region, t.goal, count(*) AS n FROM targets t JOIN pg.public.sales s"
        " ON s.region = t.region GROUP BY ALL",
        "duckdb",
    )
    assert result.to_arrow().to_pylist() == [{"region": "North", "goal": 100, "n": 250}]
    assert result.plan is not None and "federated in DuckDB (duckdb + pg)" in result.notes
    assert "2 statements ran" in result.notes
