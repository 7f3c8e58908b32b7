"""The direct engine against a real PostgreSQL server on loopback."""

from __future__ import annotations

import pyarrow as pa
import pytest

import aiser_jupyter as aiser
from aiser_jupyter.engines.direct import ReconnectedWarning
from aiser_jupyter.errors import ConnectionFailed, QueryError, QueryInterrupted
from tests.conftest import run, run_failing


@pytest.fixture
def pg(pg_url):
    aiser.connect(pg_url, name="pg")
    return pg_url


def test_results_arrive_as_arrow_with_real_types(pg):
    result = aiser.sql("SELECT id, region, amount, day FROM sales WHERE id <= 3 ORDER BY id")
    types = {field.name: field.type for field in result.to_arrow().schema}
    assert types["id"] == pa.int32()
    assert types["region"] == pa.string()
    assert types["amount"] == pa.float64()  # numeric, as numbers
    assert types["day"] == pa.date32()
    assert result.df.values.tolist()[0][:3] == [1, "South", 1.5]


def test_aggregate_matches_the_servers_own_answer(pg, pg_server):
    expected = pg_server.psql("SELECT region, sum(amount) FROM sales GROUP BY 1 ORDER BY 1")
    frame = aiser.sql("SELECT region, sum(amount) AS total FROM sales GROUP BY 1 ORDER BY 1").df
    got = "\n".join(f"{r}|{t:.2f}" for r, t in frame.itertuples(index=False))
    assert got == expected


def test_magic_binds_parameters_on_postgres(ip, pg):
    ip.user_ns["region"] = "West"
    ip.user_ns["cap"] = 100
    frame = run(
        ip, "%%sql pg\nSELECT count(*) AS n FROM sales WHERE region = :region AND id < :cap"
    )
    assert frame["n"].tolist() == [len([i for i in range(1, 100) if i % 4 == 3])]


def test_snippets_compose_in_the_postgres_dialect(ip, pg):
    run(ip, "%%sql pg --save west --no-execute\nSELECT id, amount FROM sales WHERE region = 'West'")
    frame = run(ip, "%%sql pg\nSELECT count(*) AS n, max(amount)::float AS top FROM west")
    assert frame.values.tolist() == [[250, 999 * 1.5]]


def test_parameters_bind_in_a_postgres_query_that_uses_a_snippet(ip, pg, pg_server):
    run(ip, "%%sql pg --save region_rows --no-execute\nSELECT id FROM sales WHERE region = :region")
    ip.user_ns.update(region="West", cap=50)
    frame = run(ip, "%%sql pg\nSELECT count(*) AS n FROM region_rows WHERE id < :cap")
    expected = pg_server.psql("SELECT count(*) FROM sales WHERE region = 'West' AND id < 50")
    assert frame["n"].tolist() == [int(expected)]


def test_limit_reads_only_what_it_needs(pg):
    assert len(aiser.sql("SELECT * FROM sales", limit=7).df) == 7


def test_statements_without_rows(pg):
    result = aiser.sql("CREATE TEMP TABLE scratch (v int)")
    assert result.table is None and result.df.empty
    assert "no rows" in result._repr_html_()


def test_syntax_error_shows_the_servers_message_and_position(ip, pg):
    error = run_failing(ip, "%%sql pg\nSELECT * FRM sales")
    assert isinstance(error, QueryError)
    message = str(error)
    assert 'syntax error at or near "FRM"' in message
    assert "LINE 1: SELECT * FRM sales" in message and "^" in message
    assert "SQLSTATE 42601" in message


def test_killed_connection_is_reestablished_on_the_next_query(pg, pg_server):
    assert aiser.sql("SELECT 1 AS v").df["v"].tolist() == [1]
    assert pg_server.terminate_connections() >= 1
    with pytest.warns(ReconnectedWarning, match="re-established"):
        assert aiser.sql("SELECT count(*) AS n FROM sales").df["n"].tolist() == [1000]
    assert aiser.sql("SELECT 2 AS v").df["v"].tolist() == [2]


def test_killed_connection_does_not_rerun_a_write(pg, pg_server):
    aiser.sql("CREATE TABLE IF NOT EXISTS writes (v int)")
    pg_server.terminate_connections()
    with pytest.raises(QueryError, match="run it again"):
        aiser.sql("INSERT INTO writes VALUES (1)")
    assert aiser.sql("SELECT count(*) AS n FROM writes").df["n"].tolist() == [0]


def test_interrupt_cancels_the_server_query(pg, interrupt_soon):
    interrupt_soon(0.5)
    with pytest.raises(QueryInterrupted):
        aiser.sql("SELECT pg_sleep(20)")
    assert aiser.sql("SELECT 3 AS v").df["v"].tolist() == [3]


def test_schema_lists_tables_and_columns(pg):
    schema = aiser.session().sources.schema("pg", "sales")
    assert schema[["column", "type"]].values.tolist() == [
        ["id", "integer"],
        ["region", "text"],
        ["amount", "numeric"],
        ["day", "date"],
    ]


def test_wrong_password_and_unreachable_server(pg_server):
    wrong = pg_server.url.replace(pg_server.password, "not-the-password")
    with pytest.raises(ConnectionFailed, match="password authentication failed") as failed:
        aiser.connect(wrong, name="bad")
    assert "not-the-password" not in str(failed.value)
    with pytest.raises(ConnectionFailed, match="Connection refused"):
        aiser.connect("postgresql://aiser:whatever-pw@127.0.0.1:1/aiser", name="bad")
    assert "bad" not in aiser.session().sources.connections


def test_password_from_the_environment(pg_server, monkeypatch):
    monkeypatch.setenv("PGPASSWORD", pg_server.password)
    url = f"postgresql://{pg_server.user}@127.0.0.1:{pg_server.port}/{pg_server.dbname}"
    aiser.connect(url, name="envpg")
    assert aiser.sql("SELECT current_user AS u").df["u"].tolist() == [pg_server.user]
