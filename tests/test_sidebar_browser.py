"""The JupyterLab sidebar end to end: a real ``jupyter lab`` on loopback with the built
extension, Debian's headless Chromium with the internet blocked, a real kernel.

Screenshots go to build/test-artifacts/.
"""

from __future__ import annotations

import os
from pathlib import Path

import nbformat
import pytest

from tools.browser import JupyterLab, offline_browser

ROOT = Path(__file__).resolve().parent.parent
BUILT = ROOT / "labextension" / "dist" / "aiser-jupyter"
ARTIFACTS = ROOT / "build" / "test-artifacts"
SIDEBAR = "#aiser-sidebar"

NOTEBOOK = "window.jupyterapp.shell.currentWidget.content"
SOURCES = f"{NOTEBOOK}.model.sharedModel.cells.map(c => c.getSource())"
ACTIVE = f"{NOTEBOOK}.activeCellIndex"


@pytest.fixture(scope="module")
def lab(tmp_path_factory):
    """JupyterLab that finds the built extension as an installed prebuilt one
    (``JUPYTER_PATH/labextensions/aiser-jupyter``), and a notebook that connects a CSV."""
    if not (BUILT / "package.json").exists():
        pytest.fail("labextension/dist is not built: run ./dev test (it builds it)")
    root = tmp_path_factory.mktemp("sidebar")
    data = root / "jupyter-data"
    (data / "labextensions").mkdir(parents=True)
    os.symlink(BUILT, data / "labextensions" / "aiser-jupyter")
    (root / "sales.csv").write_text("region,amount\nNorth,10.5\nSouth,20\nEast,7.25\n")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "%load_ext aiser_jupyter\n"
            "from aiser_jupyter.sidebar import register_sidebar\n"
            "register_sidebar(get_ipython())"
        ),
        nbformat.v4.new_code_cell("%aiser connect sales.csv"),
    ]
    nbformat.write(notebook, root / "sidebar.ipynb")
    env = {"AISER_HOME": str(root / "home"), "JUPYTER_PATH": str(data)}
    with JupyterLab(root, env=env) as server:
        yield server, root


@pytest.fixture(scope="module")
def page(lab):
    server, _ = lab
    with offline_browser() as (context, blocked):
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(server.url("lab/tree/sidebar.ipynb"))
        page.wait_for_function(
            "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel",
            timeout=90_000,
        )
        page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.ready")
        page.evaluate("window.jupyterapp.commands.execute('aiser-jupyter:show-sidebar')")
        yield page
        assert blocked == [], f"the page tried to reach the internet: {blocked[:5]}"
        assert [e for e in errors if "aiser" in e.lower()] == []


def shot(page, name: str) -> None:
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.locator(SIDEBAR).screenshot(path=str(ARTIFACTS / f"{name}.png"))


def test_before_the_extension_loads_the_panel_says_what_to_run(page):
    note = page.locator(f"{SIDEBAR} .aiser-sb-not-loaded")
    note.wait_for(timeout=60_000)
    assert "%load_ext aiser_jupyter" in note.inner_text()
    shot(page, "sidebar-not-loaded")


def test_a_connected_table_shows_and_double_click_writes_a_sql_cell(page):
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
    table = page.locator(f'{SIDEBAR} .aiser-sb-table[data-table="sales"]')
    table.wait_for(timeout=60_000)
    connection = page.locator(f'{SIDEBAR} .aiser-sb-connection[data-name="duckdb"]')
    assert "duckdb" in connection.locator(".aiser-sb-kind").inner_text()
    shot(page, "sidebar-connected")

    page.evaluate(f"{ACTIVE} = 0")
    table.dblclick()
    page.wait_for_function(f"{SOURCES}.length === 3")
    assert page.evaluate(SOURCES)[1] == "%%sql duckdb\nSELECT * FROM sales LIMIT 100"
    assert page.evaluate(ACTIVE) == 1  # the new cell is below the active one, and active

    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    run = page.locator(f"{SIDEBAR} .aiser-sb-history .aiser-sb-run").first
    run.wait_for(timeout=60_000)
    assert "3 rows" in run.inner_text()  # the kernel pushed its history
    assert "SELECT * FROM sales LIMIT 100" in run.inner_text()
    shot(page, "sidebar-history")


def test_keyboard_columns_and_search(page):
    toggle = page.get_by_role("button", name="Show the columns of sales")
    toggle.focus()
    page.keyboard.press("Enter")
    columns = page.locator(f"{SIDEBAR} .aiser-sb-column")
    columns.first.wait_for()
    names = columns.evaluate_all("items => items.map(item => item.firstChild.textContent)")
    assert names == ["region", "amount"]

    search = page.get_by_label("Search tables and columns")
    search.fill("amou")
    page.wait_for_function(f"document.querySelectorAll('{SIDEBAR} .aiser-sb-column').length === 1")
    assert "DOUBLE" in columns.first.inner_text()
    search.fill("no such thing")
    page.locator(f"{SIDEBAR} .aiser-sb-table").first.wait_for(state="detached")
    search.fill("")

    before = len(page.evaluate(SOURCES))
    page.locator(f'{SIDEBAR} .aiser-sb-table[data-table="sales"]').focus()
    page.keyboard.press("Enter")  # Enter does what a double-click does
    page.wait_for_function(f"{SOURCES}.length === {before + 1}")


def test_the_panel_follows_the_dark_theme(page):
    light = page.locator(SIDEBAR).evaluate("e => getComputedStyle(e).backgroundColor")
    page.evaluate(
        "window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_function(
        f"getComputedStyle(document.querySelector('{SIDEBAR}')).backgroundColor !== '{light}'",
        timeout=30_000,
    )
    shot(page, "sidebar-dark")


RUN_NEW_CELL = """async (source) => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = panel.content.widgets.length - 1;
  await window.jupyterapp.commands.execute('notebook:insert-cell-below');
  panel.content.activeCell.model.sharedModel.setSource(source);
  await window.jupyterapp.commands.execute('notebook:run-cell');
}"""


def test_a_measure_writes_a_query_cell_and_the_ask_box_runs_ask(page):
    model = ROOT / "examples" / "model" / "retail.yml"
    page.evaluate(
        RUN_NEW_CELL,
        f"import aiser_jupyter as aiser\naiser.load_sample()\naiser.model({str(model)!r});",
    )
    measure = page.locator(f'{SIDEBAR} .aiser-sb-member[data-member="orders.revenue"]')
    measure.wait_for(timeout=60_000)
    assert "Revenue after discounts" in measure.inner_text()  # the description shows
    shot(page, "sidebar-model")

    before = len(page.evaluate(SOURCES))
    measure.dblclick()
    page.wait_for_function(f"{SOURCES}.length === {before + 1}")
    index = page.evaluate(ACTIVE)
    assert page.evaluate(SOURCES)[index] == "%%query\nmeasures: [orders.revenue]"
    page.evaluate("window.jupyterapp.commands.execute('notebook:run-cell')")
    run = page.locator(f"{SIDEBAR} .aiser-sb-history .aiser-sb-run").first
    page.wait_for_function(
        f"document.querySelector('{SIDEBAR} .aiser-sb-history .aiser-sb-run')?.innerText"
        ".includes('%%query')",
        timeout=60_000,
    )
    assert "1 row" in run.inner_text()

    question = page.get_by_label("Ask a question about the data (inserts and runs a %%ask cell)")
    question.fill("total revenue")
    question.press("Enter")
    page.wait_for_function(f"{SOURCES}.includes('%%ask\\ntotal revenue')")
    page.wait_for_function(
        f"document.querySelector('{SIDEBAR} .aiser-sb-history .aiser-sb-run')?.innerText"
        ".includes('%%ask')",
        timeout=60_000,
    )
    assert "total revenue" in run.inner_text()


def test_the_last_answer_shows_under_the_ask_box_and_takes_thumbs(page):
    card = page.locator(f"{SIDEBAR} .aiser-sb-answer")
    card.wait_for(timeout=60_000)
    assert card.get_attribute("data-status") == "answered"
    assert card.locator(".aiser-sb-answer-status").inner_text().lower() == "answered"
    assert "Revenue" in card.locator(".aiser-sb-answer-text").inner_text()
    # in the notebook, where widgets run, the answer is live: thumbs under it too
    page.locator(".jp-OutputArea-output button", has_text="👍").last.wait_for(timeout=60_000)
    shot(page, "sidebar-answer")

    card.get_by_role("button", name="Right: reuse this answer next time").click()
    page.wait_for_function(
        f"document.querySelector('{SIDEBAR} .aiser-sb-answer-status')?.innerText"
        ".toLowerCase().includes('you confirmed it')",
        timeout=30_000,
    )
    assert card.locator(".aiser-sb-thumbs").count() == 0  # judged once
