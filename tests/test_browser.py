"""The widgets in a real browser: Debian's Chromium, headless, with every request to a
host other than this machine blocked, in a real JupyterLab and in static HTML pages.

Screenshots go to build/test-artifacts/.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import nbformat
import pytest

from tools.browser import JupyterLab
from tools.browser import assert_drawn as drawn

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"

RUN_NEW_CELL = """async (source) => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = panel.content.widgets.length - 1;
  await window.jupyterapp.commands.execute('notebook:insert-cell-below');
  panel.content.activeCell.model.sharedModel.setSource(source);
  await window.jupyterapp.commands.execute('notebook:run-cell');
}"""

CATEGORY_REVENUE = """SELECT p.category, sum(o.revenue) AS revenue
FROM orders o JOIN products p USING (product_id)
GROUP BY 1 ORDER BY 2 DESC"""


def assert_drawn(page, box, name: str) -> None:
    """The chart's canvas is painted with several colours, not blank; screenshot kept."""
    drawn(page, box, ARTIFACTS / f"{name}.png")


def wait_for_file(path: Path, timeout: float = 20) -> bytes:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if path.exists() and path.stat().st_size > 0:
            time.sleep(0.1)  # let the writer finish
            return path.read_bytes()
        time.sleep(0.1)
    raise AssertionError(f"{path.name} was not written in {timeout} s")


@pytest.fixture(scope="module")
def lab_page(browser, tmp_path_factory):
    """A notebook that draws charts and a big table, run to the end in JupyterLab."""
    context, _ = browser
    root = tmp_path_factory.mktemp("lab")
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(source)
        for source in [
            "%load_ext aiser_jupyter\nimport json\nfrom pathlib import Path\n"
            "import aiser_jupyter as aiser\naiser.load_sample();",
            f"%%sql -o by_category --chart\n{CATEGORY_REVENUE}",
            'w = aiser.chart(by_category, kind="bar")\n'
            'w.on_select(lambda s: Path("selection.json").write_text(json.dumps(s)))\nw',
            "%%sql\nSELECT i AS n, i * 7 % 1000 AS score FROM range(10000) t(i)",
        ]
    ]
    nbformat.write(notebook, root / "charts.ipynb")
    with JupyterLab(root, env={"AISER_HOME": str(root / "home")}) as lab:
        page = context.new_page()
        page.goto(lab.url("lab/tree/charts.ipynb"))
        page.wait_for_function(
            "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel",
            timeout=90_000,
        )
        page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.ready")
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_selector(".aiser-table table", timeout=90_000)
        page.wait_for_function("document.querySelectorAll('.aiser-chart canvas').length >= 2")
        yield page, root
        page.close()


def test_charts_draw_in_jupyterlab_with_no_internet(lab_page, browser):
    page, _ = lab_page
    boxes = page.locator(".aiser-chart")
    assert_drawn(page, boxes.nth(0), "lab-sql-chart")
    assert_drawn(page, boxes.nth(1), "lab-bar-chart")
    caption = page.locator(".aiser-caption").nth(0).inner_text()
    assert "bar" in caption or "pie" in caption  # the one-line reason shows under the chart
    assert browser[1] == []


def test_clicking_a_bar_sends_the_selection_to_python(lab_page):
    page, root = lab_page
    import aiser_jupyter as aiser

    aiser.load_sample()
    top = aiser.sql(CATEGORY_REVENUE).df.iloc[0]
    box = page.locator(".aiser-chart").nth(1)
    # The axes are laid out again when the chart's box settles (a busy machine can be late),
    # so the bar's pixel position is read afresh before each click.
    for _ in range(4):
        x, y = page.evaluate(
            "([box, name, value]) =>"
            " box.aiserChart.convertToPixel({seriesIndex: 0}, [name, value])",
            [box.element_handle(), top["category"], float(top["revenue"]) / 2],
        )
        bounds = box.bounding_box()
        page.mouse.click(bounds["x"] + x, bounds["y"] + y)
        try:
            selection = json.loads(wait_for_file(root / "selection.json", timeout=5))
            break
        except AssertionError:
            continue
    else:
        raise AssertionError("no click on the bar reached Python")
    assert selection["filters"] == {"category": top["category"]}
    assert selection["value"] == pytest.approx(top["revenue"])


def test_a_chart_exports_png_and_svg_from_the_widget(lab_page):
    page, root = lab_page
    page.evaluate(RUN_NEW_CELL, 'w.save("chart.png"); w.save("chart.svg")')
    png = wait_for_file(root / "chart.png")
    svg = wait_for_file(root / "chart.svg").decode()
    assert png.startswith(b"\x89PNG")
    assert svg.lstrip().startswith("<svg") and "Electronics" in svg


def test_a_big_result_pages_and_sorts_in_the_kernel(lab_page):
    page, _ = lab_page
    table = page.locator(".aiser-table")
    assert "rows 1–25 of 10,000" in table.locator(".range").inner_text()
    table.locator("button", has_text="›").click()
    page.wait_for_function(
        "document.querySelector('.aiser-table .range').textContent.startsWith('rows 26–50')"
    )
    assert table.locator("tbody tr").first.locator("td").first.inner_text() == "25"
    header = table.locator("th", has_text="score")
    header.click()  # ascending
    page.wait_for_function(
        "document.querySelector('.aiser-table th:nth-child(2)').textContent.includes('▲')"
    )
    header = table.locator("th", has_text="score")
    header.click()  # descending
    page.wait_for_function(
        "document.querySelector('.aiser-table th:nth-child(2)').textContent.includes('▼')"
    )
    # The arrow turns at once; the sorted page comes from the kernel a moment later.
    top = str(max(i * 7 % 1000 for i in range(10000)))
    page.wait_for_function(
        "(top) => document.querySelector('.aiser-table tbody tr td:nth-child(2)')"
        ".textContent === top",
        arg=top,
    )
    assert table.locator("tbody tr").count() == 25  # one page in the browser, never all rows


def test_the_chart_follows_the_dark_theme(lab_page):
    page, _ = lab_page
    box = page.locator(".aiser-chart").nth(1)
    assert box.get_attribute("data-theme") == "default"
    page.evaluate(
        "window.jupyterapp.commands.execute('apputils:change-theme', {theme: 'JupyterLab Dark'})"
    )
    page.wait_for_function("(box) => box.dataset.theme === 'dark'", arg=box.element_handle())
    page.wait_for_timeout(500)  # ECharts' transition
    size = page.evaluate(
        "(box) => [box.aiserChart.getWidth(), box.clientWidth]", box.element_handle()
    )
    assert size[0] == size[1]
    assert_drawn(page, box, "lab-bar-chart-dark")


def test_a_standalone_html_file_draws_offline(browser, tmp_path):
    import pandas as pd

    import aiser_jupyter as aiser

    days = pd.date_range("2024-01-01", periods=400, freq="D")
    frame = pd.DataFrame({"day": days, "visits": range(400)})
    path = tmp_path / "visits.html"
    aiser.chart(frame).to_html(path)
    page = browser[0].new_page()
    page.goto(path.as_uri())
    page.wait_for_selector(".aiser-chart canvas")
    assert_drawn(page, page.locator(".aiser-chart"), "standalone-line")
    page.close()


def test_an_exported_notebook_draws_its_charts_without_a_kernel(browser, tmp_path):
    from nbclient import NotebookClient
    from nbconvert import HTMLExporter

    notebook = nbformat.v4.new_notebook()
    notebook.cells = [
        nbformat.v4.new_code_cell("import aiser_jupyter as aiser\naiser.load_sample();"),
        nbformat.v4.new_code_cell(
            "aiser.chart(aiser.sql('SELECT status, count(*) AS orders FROM orders GROUP BY 1'))"
        ),
    ]
    NotebookClient(notebook, timeout=120, kernel_name="python3").execute()
    exporter = HTMLExporter(mathjax_url="", require_js_url="")
    body, _ = exporter.from_notebook_node(notebook)
    path = tmp_path / "exported.html"
    path.write_text(body, encoding="utf-8")
    context, blocked = browser
    already = len(blocked)
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_selector(".aiser-chart canvas", timeout=20_000)
    assert_drawn(page, page.locator(".aiser-chart").first, "nbconvert-static")
    page.close()
    # nbconvert's own template asks a CDN for its widget manager; the chart needs nothing.
    theirs = blocked[already:]
    assert all("@jupyter-widgets/html-manager" in url for url in theirs), theirs
    del blocked[already:]
