"""Every examples/*.ipynb runs top to bottom on the sample data, and the numbers the notebooks
show (the quickstart's, the SQL tour's, …) match sums computed here, independently, with
hand-written DuckDB SQL over the Parquet files."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import duckdb
import nbformat
import pytest

from aiser_jupyter import demo
from aiser_jupyter.sources.sample import PLANTED_ANOMALIES, write_retail

ROOT = Path(__file__).resolve().parent.parent
EXAMPLES = sorted((ROOT / "examples").glob("*.ipynb"))
PROBE = "import sys; print(sys.executable)"  # appended in memory only, never to the file


@pytest.fixture(scope="session")
def data_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    directory = tmp_path_factory.mktemp("sample")
    write_retail(directory)
    return directory


@pytest.fixture(scope="session")
def executed(tmp_path_factory: pytest.TempPathFactory, data_dir: Path) -> Callable[[str], Any]:
    """Run an example once per session (in its own temporary folder, with the sample model in
    ``model/`` beside it as in examples/) and return the notebook."""
    done: dict[str, Any] = {}

    def run(name: str) -> Any:
        if name not in done:
            nb = nbformat.read(ROOT / "examples" / name, as_version=4)
            nb.cells.append(nbformat.v4.new_code_cell(PROBE))
            workdir = tmp_path_factory.mktemp(Path(name).stem)
            shutil.copytree(ROOT / "examples" / "model", workdir / "model")
            done[name] = demo.run_notebook(nb, cwd=workdir, data_dir=data_dir, name=name)
        return done[name]

    return run


@pytest.fixture(scope="session")
def duck(data_dir: Path) -> duckdb.DuckDBPyConnection:
    con = duckdb.connect()
    for table in ("orders", "customers", "products"):
        path = str(data_dir / f"{table}.parquet").replace("'", "''")
        con.execute(f"CREATE VIEW {table} AS SELECT * FROM read_parquet('{path}')")
    return con


def tagged(nb: Any, tag: str) -> Any:
    (cell,) = [c for c in nb.cells if tag in c.metadata.get("tags", [])]
    return cell


def printed(cell: Any) -> str:
    return "".join(o.text for o in cell.outputs if o.output_type == "stream")


def shown(cell: Any, mime: str = "text/plain") -> str:
    """The cell's value as it showed in `mime`."""
    (data,) = [o.data[mime] for o in cell.outputs if o.output_type == "execute_result"]
    return data


def assert_sample_kpis(page: str, duck: duckdb.DuckDBPyConnection) -> None:
    """A dashboard's first KPI cards show the sample's revenue, orders and units sold."""
    ((revenue, orders, units),) = duck.sql(
        "SELECT sum(revenue), count(*), sum(quantity) FROM orders"
    ).fetchall()
    assert re.findall(r'aiser-kpi-value">([^<]*)<', page)[:3] == [
        f"${revenue:,.2f}",
        f"{orders:,}",
        f"{units:,}",
    ]


def table_rows(cell: Any) -> list[list[str]]:
    """The rows of the DataFrame a cell displayed, split on whitespace, index dropped."""
    text = shown(cell)
    return [line.split()[1:] for line in text.splitlines()[1:]]


def test_examples_exist() -> None:
    assert ROOT / "examples" / "quickstart.ipynb" in EXAMPLES
    assert ROOT / "examples" / "sql.ipynb" in EXAMPLES


@pytest.mark.parametrize("path", EXAMPLES, ids=lambda p: p.name)
def test_every_cell_runs(path: Path, executed: Callable[[str], Any]) -> None:
    committed = nbformat.read(path, as_version=4)
    nbformat.validate(committed)
    assert all(not c.get("outputs") for c in committed.cells if c.cell_type == "code"), (
        "commit notebooks with outputs cleared"
    )
    nb = executed(path.name)
    errors = [o for c in nb.cells for o in c.get("outputs", []) if o.output_type == "error"]
    assert errors == []
    code = [c for c in nb.cells if c.cell_type == "code"]
    assert all(c.execution_count for c in code)
    assert printed(code[-1]).strip() == sys.executable  # the kernel ran on this interpreter


def test_monthly_revenue(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    out = printed(tagged(executed("sql.ipynb"), "check-monthly"))
    match = re.search(r"over (\d+) months: ([\d,]+\.\d\d)\n2024 vs 2023: ([+-]\d+\.\d)%", out)
    assert match, out
    months, total, growth = int(match[1]), float(match[2].replace(",", "")), float(match[3])
    by_year = dict(
        duck.sql(
            "SELECT year(order_date), sum(revenue) FROM orders "
            "WHERE status = 'completed' GROUP BY 1"
        ).fetchall()
    )
    assert months == 24
    # the notebook rounds each month to cents, then the print rounds the total
    assert total == pytest.approx(by_year[2023] + by_year[2024], abs=0.005 * (months + 1))
    assert growth == pytest.approx((by_year[2024] / by_year[2023] - 1) * 100, abs=0.05)


def test_region_parameter(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    rows = table_rows(tagged(executed("sql.ipynb"), "check-region"))
    expected = duck.sql(
        "SELECT p.category, count(*), sum(o.revenue) FROM orders o, products p "
        "WHERE o.product_id = p.product_id AND o.status = 'completed' AND o.customer_id IN "
        "(SELECT customer_id FROM customers WHERE region = 'West') "
        "GROUP BY p.category ORDER BY 3 DESC"
    ).fetchall()
    assert [r[0] for r in rows] == [e[0] for e in expected]
    for (_, orders, revenue), (_, want_orders, want_revenue) in zip(rows, expected, strict=True):
        assert int(orders) == want_orders
        assert float(revenue) == pytest.approx(want_revenue, abs=0.006)


def test_snippet_as_table(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    rows = table_rows(tagged(executed("sql.ipynb"), "check-snippet"))
    expected = dict(
        duck.sql(
            "SELECT c.segment, count(DISTINCT o.customer_id) FROM orders o "
            "JOIN customers c ON c.customer_id = o.customer_id "
            "WHERE o.status = 'completed' AND o.order_date BETWEEN '2024-01-01' AND '2024-12-31' "
            "GROUP BY 1"
        ).fetchall()
    )
    assert {r[0]: int(r[1]) for r in rows} == expected


def test_planted_anomalies_on_top(executed: Callable[[str], Any]) -> None:
    rows = table_rows(tagged(executed("sql.ipynb"), "check-anomalies"))
    assert len(rows) == 5  # --limit 5
    assert {r[0] for r in rows[:4]} == {a.day.isoformat() for a in PLANTED_ANOMALIES}


def test_quickstart_sql(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    rows = table_rows(tagged(executed("quickstart.ipynb"), "check-sql"))
    by_year = duck.sql(
        "SELECT p.category, year(o.order_date), sum(o.revenue) FROM orders o "
        "JOIN products p ON p.product_id = o.product_id WHERE o.status = 'completed' "
        "GROUP BY 1, 2"
    ).fetchall()
    revenue = {(category, year): total for category, year, total in by_year}
    categories = sorted({c for c, _ in revenue}, key=lambda c: -revenue[c, 2024])
    assert [r[0] for r in rows] == categories
    for category, old, new, growth in rows:
        assert float(old) == pytest.approx(revenue[category, 2023], abs=0.006)
        assert float(new) == pytest.approx(revenue[category, 2024], abs=0.006)
        want = (revenue[category, 2024] / revenue[category, 2023] - 1) * 100
        assert float(growth) == pytest.approx(want, abs=0.051)


def test_quickstart_query(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    rows = table_rows(tagged(executed("quickstart.ipynb"), "check-query"))
    expected = duck.sql(
        "SELECT c.region, sum(o.revenue), count(*), sum(o.revenue) / count(*) FROM orders o "
        "JOIN customers c ON c.customer_id = o.customer_id GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    assert [r[0] for r in rows] == [e[0] for e in expected]
    for row, want in zip(rows, expected, strict=True):
        assert float(row[1]) == pytest.approx(want[1], rel=1e-6)
        assert int(row[2]) == want[2]
        assert float(row[3]) == pytest.approx(want[3], rel=1e-5)


def test_quickstart_ask_writes_a_sql_cell_that_runs(
    executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection
) -> None:
    """``%%ask`` writes its ``%%sql`` cell below itself (``set_next_input``); the notebook
    runner inserts and runs it as JupyterLab would, and it gives the answer's rows."""
    nb = executed("quickstart.ipynb")
    asked = tagged(nb, "check-ask")
    written = nb.cells[nb.cells.index(asked) + 1]
    assert written.metadata["aiser"] == {"written": True}
    assert written.source.startswith("%%sql duckdb\n-- What was revenue by region in 2024?\n")
    expected = duck.sql(
        "SELECT c.region, sum(o.revenue) FROM orders o JOIN customers c USING (customer_id) "
        "WHERE year(o.order_date) = 2024 GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    rows = table_rows(written)
    assert [(r[0], float(r[1])) for r in rows] == [(e[0], pytest.approx(e[1])) for e in expected]
    answer = shown(asked)
    assert "offline" in answer and f"{expected[0][0]} leads" in answer
    committed = nbformat.read(ROOT / "examples" / "quickstart.ipynb", as_version=4)
    assert len(nb.cells) == len(committed.cells) + 2  # the written cell, and PROBE


def test_quickstart_insights_find_the_planted_days(
    executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection
) -> None:
    text = shown(tagged(executed("quickstart.ipynb"), "check-insights"))
    assert text.startswith("1. [anomaly ")
    found = dict(re.findall(r"\[anomaly [\d.]+\] Revenue on (\S+) was \$([\d,.]+)", text))
    assert set(found) == {a.day.isoformat() for a in PLANTED_ANOMALIES}
    daily = dict(
        duck.sql("SELECT order_date::VARCHAR, sum(revenue) FROM orders GROUP BY 1").fetchall()
    )
    for day, amount in found.items():
        assert float(amount.replace(",", "")) == pytest.approx(daily[day], abs=0.005)


def test_quickstart_dashboard(
    executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection
) -> None:
    page = shown(tagged(executed("quickstart.ipynb"), "check-dashboard"), "text/html")
    assert_sample_kpis(page, duck)
    assert len(re.findall(r'aiser-kpi-value"', page)) == 3
    assert page.count("aiserCharts.render") == 3


def test_demo_writes_html(tmp_path: Path) -> None:
    """``python -m aiser_jupyter.demo`` (what ``./dev demo`` runs) writes the rendered
    quickstart and the dashboard it exports, pages that load no script from the network
    (tests/test_quickstart_browser.py opens them)."""
    out = tmp_path / "site"
    run = subprocess.run(
        [sys.executable, "-m", "aiser_jupyter.demo", "--out", str(out)],
        capture_output=True,
        text=True,
        timeout=300,
        cwd=tmp_path,
    )
    assert run.returncode == 0, run.stderr
    html = out / "quickstart.html"
    assert str(html) in run.stdout.strip().splitlines()[-1]
    assert (out / "model" / "retail.yml").read_bytes() == (
        ROOT / "examples" / "model" / "retail.yml"
    ).read_bytes()
    page = html.read_text(encoding="utf-8")
    assert "What was revenue by region in 2024?" in page
    assert "Retail at a glance" in page
    scripts = re.findall(r"<script[^>]*\bsrc=[\"']?([^\"' >]+)", page)
    assert scripts == []  # nbconvert's CDN scripts (require.js, MathJax) are left out
    board = (out / "retail_dashboard.html").read_text(encoding="utf-8")
    assert board.startswith("<!doctype html>") and "<title>Retail at a glance</title>" in board
    nbformat.validate(nbformat.read(out / "quickstart.ipynb", as_version=4))


def test_demo_fails_loudly_on_a_cell_error(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    broken = tmp_path / "broken.ipynb"
    cells = ["%load_ext aiser_jupyter", "%%sql\nSELECT * FROM no_such_table", "print('unreached')"]
    nbformat.write(
        nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells]), broken
    )
    monkeypatch.setattr(demo, "QUICKSTART", broken)
    assert demo.main(["--out", str(tmp_path / "out")]) == 1
    err = capsys.readouterr().err
    assert "broken.ipynb: a cell failed" in err
    assert "no_such_table" in err
    assert not (tmp_path / "out" / "quickstart.html").exists()


def test_semantic_measures_by_region(
    executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection
) -> None:
    rows = table_rows(tagged(executed("semantic_layer.ipynb"), "check-by-region"))
    expected = duck.sql(
        "SELECT c.region, count(*), sum(o.revenue), sum(o.revenue) / count(*) FROM orders o "
        "JOIN customers c ON c.customer_id = o.customer_id WHERE o.status = 'completed' "
        "GROUP BY 1 ORDER BY 3 DESC"
    ).fetchall()
    assert [r[0] for r in rows] == [e[0] for e in expected]
    for row, want in zip(rows, expected, strict=True):
        assert int(row[1]) == want[1]
        assert float(row[2]) == pytest.approx(want[2], rel=1e-5)
        assert float(row[3]) == pytest.approx(want[3], rel=1e-5)


def test_semantic_fan_out(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    rows = table_rows(tagged(executed("semantic_layer.ipynb"), "check-fanout"))
    expected = duck.sql(
        "SELECT o.status, count(DISTINCT c.customer_id), count(o.order_id) FROM customers c "
        "LEFT JOIN orders o ON o.customer_id = c.customer_id GROUP BY 1 ORDER BY 1 NULLS LAST"
    ).fetchall()
    got = [(None if r[0] == "NaN" else r[0], int(r[1]), int(r[2])) for r in rows]
    assert got == [tuple(e) for e in expected]


def test_semantic_rollup_served(executed: Callable[[str], Any]) -> None:
    out = printed(tagged(executed("semantic_layer.ipynb"), "check-rollup"))
    assert "served by: orders.daily_by_region" in out


def test_dashboard_numbers(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    """With no widget front end (nbclient), the dashboard shows as static HTML: its KPI cards
    and its text card hold the totals of the sample data."""
    page = shown(tagged(executed("dashboard.ipynb"), "check-dashboard"), "text/html")
    assert_sample_kpis(page, duck)
    assert len(re.findall(r'aiser-kpi-value"', page)) == 3
    ((region, share),) = duck.sql(
        "SELECT c.region, sum(o.revenue) / (SELECT sum(revenue) FROM orders) * 100 "
        "FROM orders o JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 2 DESC LIMIT 1"
    ).fetchall()
    assert f"<strong>{region}</strong> brings the most revenue: {share:.0f}%" in page
    assert page.count("aiserCharts.render") == 6
    assert "updated " in page


def test_ask_offline(executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection) -> None:
    nb = executed("ask.ipynb")
    rows = table_rows(tagged(nb, "check-ask-rows"))
    expected = duck.sql(
        "SELECT c.region, sum(o.revenue) FROM orders o JOIN customers c USING (customer_id) "
        "WHERE year(o.order_date) = 2024 GROUP BY 1 ORDER BY 2 DESC"
    ).fetchall()
    assert [(r[0], float(r[1])) for r in rows] == [(e[0], pytest.approx(e[1])) for e in expected]
    answer = shown(tagged(nb, "check-ask-region"))
    assert "offline" in answer and f"{expected[0][0]} leads" in answer
    assert printed(tagged(nb, "check-ask-followup")).strip().endswith("12 months")
    statuses = dict(duck.sql("SELECT status, count(*) FROM orders GROUP BY 1").fetchall())
    status_rows = table_rows(tagged(nb, "check-ask-status"))
    assert {r[0]: int(r[1]) for r in status_rows} == statuses
    assert "COUNT(" in printed(tagged(nb, "check-ask-status"))
    declined = printed(tagged(nb, "check-ask-declined")).splitlines()
    assert declined[0].startswith("unanswerable - ") and "discount" in declined[0]
    assert not any(ch.isdigit() for ch in declined[0])
    assert declined[1:] and all(line.startswith("try: ") for line in declined[1:])


def test_spark_and_duckdb_agree(
    executed: Callable[[str], Any], duck: duckdb.DuckDBPyConnection
) -> None:
    out = printed(tagged(executed("spark.ipynb"), "check-spark"))
    expected = duck.sql(
        "SELECT status, count(*), round(sum(revenue), 2) FROM orders GROUP BY 1 ORDER BY 1"
    ).fetchall()
    assert f"Spark and DuckDB agree on {len(expected)} statuses: True" in out
    rows = [line.split() for line in out.splitlines()[2:]]
    assert [(r[0], int(r[1]), float(r[2])) for r in rows] == [
        (s, n, pytest.approx(v, abs=0.005)) for s, n, v in expected
    ]
