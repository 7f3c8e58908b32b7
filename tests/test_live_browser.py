"""Live results in a real browser (Debian's Chromium, headless, every request off this
machine blocked): rows inserted on a real PostgreSQL server (wal_level=logical) reach a
live replica in the kernel's DuckDB, and the ``%%sql --live`` chart and table in JupyterLab,
and a live Voila dashboard, change in the page without the cell being run again and
without a new output."""

from __future__ import annotations

from pathlib import Path

import nbformat
import pytest

from tools.browser import JupyterLab, assert_drawn, run_notebook
from tools.voila import Voila

pytest.importorskip("adbc_driver_postgresql")

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
CHART_DATA = (
    "(box) => { const o = box.aiserChart.getOption();"
    " return [o.xAxis?.[0]?.data ?? null, o.series.map(s => s.data)]; }"
)
LIVE_SQL = (
    "%%sql --live --chart bar\n"
    "SELECT region, sum(amount)::INTEGER AS total FROM shop.sales GROUP BY 1 ORDER BY 1"
)
MODEL = {
    "cubes": [
        {
            "name": "sales",
            "sql_table": "shop.sales",
            "measures": [{"name": "total", "sql": "amount", "type": "sum"}],
            "dimensions": [
                {"name": "id", "sql": "id", "type": "number", "primary_key": True},
                {"name": "region", "sql": "region", "type": "string"},
            ],
        }
    ]
}


@pytest.fixture(scope="module")
def pg():
    from tools.pgserver import PostgresServer

    with PostgresServer(logical=True) as server:
        server.psql(
            "CREATE TABLE sales (id int PRIMARY KEY, region text, amount int);"
            "INSERT INTO sales VALUES (1, 'North', 10), (2, 'South', 20);"
            "CREATE TABLE board (id int PRIMARY KEY, region text, amount int);"
            "INSERT INTO board VALUES (1, 'North', 10), (2, 'South', 20);"
        )
        yield server


def notebook(path: Path, cells: list[str]) -> Path:
    book = nbformat.v4.new_notebook()
    book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    book.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    nbformat.write(book, path)
    return path


def chart_data(page, box) -> list:
    return page.evaluate(CHART_DATA, box.element_handle())


def test_a_live_chart_in_jupyterlab_changes_when_rows_are_inserted_on_the_server(
    pg, browser, tmp_path
):
    context, blocked = browser
    connect = f'aiser.connect("{pg.url}", name="shop", live=True, tables=["sales"]);'
    notebook(
        tmp_path / "live.ipynb",
        [f"%load_ext aiser_jupyter\nimport aiser_jupyter as aiser\n{connect}", LIVE_SQL],
    )
    with JupyterLab(tmp_path, env={"AISER_HOME": str(tmp_path / "home")}) as lab:
        page = run_notebook(context, lab, "live.ipynb", ".aiser-live .aiser-chart canvas")
        page.wait_for_selector(".aiser-live .aiser-table tbody tr", timeout=30_000)
        box = page.locator(".aiser-live .aiser-chart").first
        assert chart_data(page, box) == [["North", "South"], [[10, 20]]]
        outputs = page.locator(".jp-OutputArea-output").count()
        prompts = page.locator(".jp-InputPrompt").all_inner_texts()

        pg.psql("INSERT INTO sales VALUES (3, 'East', 70), (4, 'North', 5)")
        page.wait_for_function(
            "(box) => JSON.stringify(box.aiserChart.getOption().xAxis[0].data)"
            " === JSON.stringify(['East', 'North', 'South'])",
            arg=box.element_handle(),
            timeout=30_000,
        )
        assert chart_data(page, box) == [["East", "North", "South"], [[70, 15, 20]]]
        page.wait_for_function(
            "document.querySelectorAll('.aiser-live .aiser-table tbody tr').length === 3"
        )
        assert "East" in page.locator(".aiser-live .aiser-table").inner_text()
        assert page.locator(".jp-OutputArea-output").count() == outputs  # no new output
        assert page.locator(".jp-InputPrompt").all_inner_texts() == prompts  # not run again
        page.wait_for_timeout(1200)  # ECharts' entry animation of the redrawn chart
        assert_drawn(page, box, ARTIFACTS / "lab-live-chart.png")
        page.close()
    assert blocked == []


def test_a_live_voila_dashboard_updates_without_a_reload(pg, browser, tmp_path):
    context, blocked = browser
    model = {**MODEL, "cubes": [{**MODEL["cubes"][0], "sql_table": "shop.board"}]}
    path = notebook(
        tmp_path / "board.ipynb",
        [
            "import aiser_jupyter as aiser\nimport aiser_jupyter.boards as d\n"
            f'aiser.connect("{pg.url}", name="shop", live=True, tables=["board"])\n'
            f"aiser.model({model!r})",
            'board = aiser.dashboard("Sales", [d.kpi("sales.total", title="Total"), '
            'd.chart({"measures": ["sales.total"], "dimensions": ["sales.region"], '
            '"order": {"sales.region": "asc"}}, kind="bar", title="By region")], live=True)\n'
            "board",
        ],
    )
    with Voila(path, env={"AISER_HOME": str(tmp_path / "home")}) as voila:
        page = context.new_page()
        page.goto(voila.url(), timeout=90_000)
        page.wait_for_selector(".aiser-chart canvas", timeout=90_000)
        assert page.locator(".aiser-kpi-value").inner_text() == "30"
        box = page.locator(".aiser-chart").first
        assert chart_data(page, box)[0] == ["North", "South"]
        marker = page.evaluate("() => (window.__aiserSamePage = 1)")

        pg.psql("INSERT INTO board VALUES (3, 'East', 70)")
        page.wait_for_function(
            "document.querySelector('.aiser-kpi-value').textContent.trim() === '100'",
            timeout=30_000,
        )
        page.wait_for_function(
            "(box) => box.aiserChart.getOption().xAxis[0].data.length === 3",
            arg=box.element_handle(),
            timeout=30_000,
        )
        assert chart_data(page, box)[0] == ["East", "North", "South"]
        assert page.evaluate("() => window.__aiserSamePage") == marker  # no reload
        page.wait_for_timeout(1200)
        assert_drawn(page, box, ARTIFACTS / "voila-live-chart.png")
        page.close()
    assert blocked == []
