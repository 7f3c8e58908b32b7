"""The magics, driven through a real IPython shell as a user types them."""

from __future__ import annotations

import duckdb
import pandas as pd
import pytest
from IPython.core.error import UsageError

import aiser_jupyter as aiser
from aiser_jupyter.errors import ParameterError, QueryError, UnknownConnection
from tests.conftest import run, run_failing


@pytest.fixture
def sales_csv(tmp_path):
    path = tmp_path / "sales.csv"
    pd.DataFrame(
        {
            "region": ["North", "South", "North", "West", "South"],
            "amount": [10.0, 20.5, 30.0, 7.25, 1.0],
        }
    ).to_csv(path, index=False)
    return path


def test_cell_value_is_the_result_dataframe(ip):
    frame = run(ip, "%%sql\nSELECT range AS n, range * range AS sq FROM range(5)")
    assert isinstance(frame, pd.DataFrame)
    assert frame["sq"].tolist() == [0, 1, 4, 9, 16]
    assert "5 rows × 2 columns" in frame._repr_html_()
    assert "duckdb" in frame._repr_html_()


def test_line_magic_and_output_variable(ip):
    frame = run(ip, "%sql -o answer SELECT 40 + 2 AS x")
    assert frame["x"].tolist() == [42]
    assert ip.user_ns["answer"]["x"].tolist() == [42]


def test_connect_a_file_then_query_it(ip, sales_csv):
    run(ip, f"%aiser connect {sales_csv}")
    frame = run(ip, "%%sql\nSELECT region, sum(amount) AS total FROM sales GROUP BY 1 ORDER BY 1")
    expected = duckdb.sql(
        f"SELECT region, sum(amount) AS total FROM read_csv('{sales_csv}') GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert list(frame.itertuples(index=False, name=None)) == expected


def test_connections_and_schema(ip, sales_csv):
    run(ip, f"%aiser connect {sales_csv} --name s")
    connections = run(ip, "%aiser connections")
    assert connections["name"].tolist() == ["duckdb"]
    schema = run(ip, "%aiser schema s")
    assert schema[["column", "type"]].values.tolist() == [
        ["region", "VARCHAR"],
        ["amount", "DOUBLE"],
    ]
    assert run(ip, "%aiser schema duckdb.s")["column"].tolist() == ["region", "amount"]


def test_named_parameter_is_bound_not_spliced(ip):
    ip.user_ns["name"] = "O'Brien'); DROP TABLE x; --"
    ip.user_ns["low"] = 2
    frame = run(ip, "%%sql\nSELECT :name AS who, count(*) AS n FROM range(10) WHERE range >= :low")
    assert frame.iloc[0].tolist() == ["O'Brien'); DROP TABLE x; --", 8]
    # What was recorded is the text as written, not the value.
    assert aiser.session().history[-1].sql.strip().endswith(":low")


def test_colons_in_strings_and_casts_are_not_parameters(ip):
    frame = run(ip, "%%sql\nSELECT '10:30' AS t, 5::VARCHAR AS s, [1,2,3][1:2] AS sl")
    assert frame.iloc[0]["t"] == "10:30"
    assert frame.iloc[0]["s"] == "5"
    assert list(frame.iloc[0]["sl"]) == [1, 2]


def test_undefined_parameter_is_a_clear_error(ip):
    error = run_failing(ip, "%sql SELECT :nope AS x")
    assert isinstance(error, ParameterError)
    assert ":nope not defined" in str(error)


def test_jinja_renders_identifiers_and_says_so(ip):
    ip.user_ns["column"] = "range"
    frame = run(ip, "%%sql\nSELECT max({{ column }}) AS m FROM range(7)")
    assert frame["m"].tolist() == [6]
    assert "rendered" in frame._repr_html_()


def test_snippets_compose_as_ctes(ip):
    run(ip, "%%sql --save evens --no-execute\nSELECT range AS n FROM range(10) WHERE range % 2 = 0")
    run(ip, "%%sql --save big_evens\nSELECT n FROM evens WHERE n > 4")
    frame = run(
        ip, "%%sql\nWITH x AS (SELECT 1 AS one) SELECT sum(n) AS total, max(one) FROM big_evens, x"
    )
    assert frame["total"].tolist() == [6 + 8]
    snippets = run(ip, "%aiser snippets")
    assert snippets["name"].tolist() == ["evens", "big_evens"]


def test_a_query_defining_its_own_cte_shadows_a_snippet(ip):
    run(ip, "%%sql --save t --no-execute\nSELECT 1 AS v")
    frame = run(ip, "%%sql\nWITH t AS (SELECT 2 AS v) SELECT v FROM t")
    assert frame["v"].tolist() == [2]


def test_limit_fetches_only_the_first_rows(ip):
    frame = run(ip, "%%sql --limit 3\nSELECT * FROM range(1000000)")
    assert len(frame) == 3
    assert "first 3 rows" in frame._repr_html_()


def test_sql_error_is_short_and_the_kernel_goes_on(ip, capsys):
    run(ip, "%%sql --save keep --no-execute\nSELECT 1 AS v")
    error = run_failing(ip, "%%sql\nSELECT * FRM nowhere")
    assert isinstance(error, QueryError)
    assert "syntax error" in str(error).lower()
    shown = capsys.readouterr()
    assert "Traceback" not in shown.out + shown.err
    assert "QueryError" in shown.out + shown.err
    # Nothing was lost: the snippet and the connection still work.
    assert run(ip, "%sql SELECT v FROM keep")["v"].tolist() == [1]
    assert aiser.session().history[-2].error is not None


def test_unknown_connection_name(ip):
    error = run_failing(ip, "%%sql nowhere\nSELECT 1")
    assert isinstance(error, UnknownConnection)
    assert "nowhere" in str(error)


def test_usage_errors(ip):
    assert isinstance(run_failing(ip, "%%sql --limit many\nSELECT 1"), UsageError)
    assert isinstance(run_failing(ip, "%%sql --frobnicate\nSELECT 1"), UsageError)
    assert isinstance(run_failing(ip, "%aiser connect"), UsageError)
    assert isinstance(run_failing(ip, "%sql"), UsageError)


def test_connect_a_dataframe_variable_by_name(ip):
    ip.user_ns["people"] = pd.DataFrame({"age": [31, 45, 27]})
    run(ip, "%aiser connect people")
    assert run(ip, "%sql SELECT avg(age) AS a FROM people")["a"].tolist() == [
        pytest.approx(103 / 3)
    ]


def test_line_magic_names_a_connection(ip, tmp_path):
    run(ip, f"%aiser connect duckdb:///{tmp_path}/other.duckdb --name other")
    run(ip, "%sql other CREATE TABLE only_here AS SELECT 7 AS v")
    run(ip, "%aiser use duckdb")
    assert run(ip, "%sql other SELECT v FROM only_here")["v"].tolist() == [7]
    # Addressed to the embedded DuckDB, the query still finds the table where it lives.
    routed = run(ip, "%sql SELECT v FROM only_here")
    assert routed["v"].tolist() == [7]
    plan = run(ip, "%sql --explain SELECT v FROM only_here")
    assert plan.connection == "other" and plan.reasons
    assert isinstance(run_failing(ip, "%sql SELECT v FROM nowhere_at_all"), QueryError)


def test_history_lists_every_query(ip):
    run(ip, "%sql SELECT 1")
    run_failing(ip, "%sql SELECT nope_column")
    history = run(ip, "%aiser history")
    assert history["sql"].tolist() == ["SELECT 1", "SELECT nope_column"]
    assert history["rows"].tolist()[0] == 1
    assert history["error"].isna().tolist() == [True, False]


def test_sample_tables(ip):
    run(ip, "%aiser sample")
    frame = run(ip, "%sql SELECT count(*) AS n FROM orders JOIN customers USING (customer_id)")
    from aiser_jupyter.sources.sample import retail_tables

    assert frame["n"].tolist() == [retail_tables()["orders"].num_rows]


def test_notebook_dataframes_are_tables_by_their_variable_name(ip):
    run(ip, "import pandas as pd\nsales_df = pd.DataFrame({'v': [1, 2, 3]})")
    assert run(ip, "%sql SELECT sum(v) AS s FROM sales_df")["s"].tolist() == [6]
    run(ip, "sales_df = pd.DataFrame({'v': [10]})")
    assert run(ip, "%sql SELECT sum(v) AS s FROM sales_df")["s"].tolist() == [10]
