"""Dashboards in a real browser (Debian's Chromium, every request off this machine blocked):
``voila examples/dashboard.ipynb`` on loopback, its charts drawn, its filters and chart clicks
re-running the other items; and the exported file opened from file://, filtering in the page.

Expected numbers come from hand-written SQL over the sample tables. Screenshots go to
build/test-artifacts/.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

import aiser_jupyter.boards as d
from aiser_jupyter.boards.board import Dashboard
from tools.browser import assert_drawn
from tools.chart_layout import assert_readable, axis_texts, settle
from tools.voila import Voila

ROOT = Path(__file__).resolve().parent.parent
ARTIFACTS = ROOT / "build" / "test-artifacts"
JOINED = "FROM orders o JOIN customers c USING (customer_id) JOIN products p USING (product_id)"
CHART_DATA = "(box) => { const o = box.aiserChart.getOption(); return [o.xAxis?.[0]?.data ?? null, o.series.map(s => s.data)]; }"  # noqa: E501


def money(value: float) -> str:
    return f"${value:,.2f}"


@pytest.fixture(scope="module")
def sample():
    """Hand-written SQL over the sample tables (its own Session, apart from the pages')."""
    from aiser_jupyter.sessions import Session

    session = Session()
    session.sources.load_sample()
    yield lambda sql: [tuple(r.values()) for r in session.sql(sql).to_arrow().to_pylist()]
    session.close()


@pytest.fixture(scope="module")
def voila_page(browser, tmp_path_factory):
    context, _ = browser
    home = tmp_path_factory.mktemp("voila-home")
    with Voila(ROOT / "examples" / "dashboard.ipynb", env={"AISER_HOME": str(home)}) as voila:
        page = context.new_page()
        errors: list[str] = []
        page.on("pageerror", lambda error: errors.append(str(error)))
        page.goto(voila.url(), timeout=90_000)
        page.wait_for_function(
            "document.querySelectorAll('.aiser-chart canvas').length >= 6", timeout=90_000
        )
        yield page, errors
        page.close()


def kpis(page) -> list[str]:
    return page.locator(".aiser-kpi-value").all_inner_texts()


def test_voila_serves_the_dashboard_with_every_chart_drawn(voila_page, browser, sample):
    page, errors = voila_page
    ((revenue, orders, units),) = sample("SELECT sum(revenue), count(*), sum(quantity) FROM orders")
    assert kpis(page) == [money(revenue), f"{orders:,}", f"{units:,}"]
    boxes = page.locator(".aiser-chart")
    assert boxes.count() == 6
    page.wait_for_timeout(1200)  # ECharts' entry animation
    for index in range(6):
        assert_drawn(page, boxes.nth(index), ARTIFACTS / f"voila-dashboard-chart-{index}.png")
    assert "updated" in page.locator(".aiser-dash-status").inner_text()
    wide = page.locator(".aiser-card", has_text="Revenue by month")
    narrow = page.locator(".aiser-card", has_text="Revenue by region")
    assert wide.bounding_box()["width"] > 1.8 * narrow.bounding_box()["width"]  # width=2
    page.screenshot(path=str(ARTIFACTS / "voila-dashboard.png"), full_page=True)
    assert [e for e in errors if "aiser" in e] == []
    assert browser[1] == []


def test_a_filter_in_voila_changes_the_other_charts(voila_page, sample):
    page, _ = voila_page
    status = page.locator(".aiser-chart").nth(3)  # orders by status
    before = page.evaluate(CHART_DATA, status.element_handle())
    page.locator(".aiser-filter-values select").first.select_option(["West"])
    ((west,),) = sample(f"SELECT sum(revenue) {JOINED} WHERE c.region = 'West'")
    page.wait_for_function(
        "(text) => document.querySelector('.aiser-kpi-value').textContent === text",
        arg=money(west),
        timeout=30_000,
    )
    expected = dict(sample(f"SELECT status, count(*) {JOINED} WHERE c.region = 'West' GROUP BY 1"))
    page.wait_for_function(
        "([box, before]) => JSON.stringify(box.aiserChart.getOption().series[0].data) !== before",
        arg=[status.element_handle(), json.dumps(before[1][0])],
    )
    categories, (counts,) = page.evaluate(CHART_DATA, status.element_handle())
    assert dict(zip(categories, counts, strict=True)) == expected
    assert categories != before[0] or counts != before[1][0]


def test_clicking_a_bar_in_voila_cross_filters_the_others(voila_page, sample):
    page, _ = voila_page
    status = page.locator(".aiser-chart").nth(3)
    ((completed,),) = sample(
        f"SELECT count(*) {JOINED} WHERE c.region = 'West' AND status = 'completed'"
    )
    x, y = page.evaluate(
        "([box, value]) => box.aiserChart.convertToPixel({seriesIndex: 0}, ['completed', value])",
        [status.element_handle(), completed / 10],  # near the axis: bars grow from there
    )
    page.wait_for_timeout(1000)  # the redrawn chart's entry animation
    status.scroll_into_view_if_needed()
    bounds = status.bounding_box()
    page.mouse.click(bounds["x"] + x, bounds["y"] + y)
    ((revenue, orders),) = sample(
        f"SELECT sum(revenue), count(*) {JOINED} WHERE c.region = 'West' AND status = 'completed'"
    )
    page.wait_for_function(
        "(text) => document.querySelectorAll('.aiser-kpi-value')[1].textContent === text",
        arg=f"{orders:,}",
        timeout=30_000,
    )
    assert kpis(page)[0] == money(revenue)
    assert "orders.status = completed" in page.locator(".aiser-chip").inner_text()
    page.wait_for_timeout(1200)  # the redrawn charts settle
    page.screenshot(path=str(ARTIFACTS / "voila-dashboard-filtered.png"), full_page=True)


def test_voila_charts_read_in_a_narrow_and_a_wide_page(voila_page):
    """The widgets' axes (ChartWidget in Voila) fit their cards when the page narrows."""
    page, _ = voila_page
    boxes = page.locator(".aiser-chart")
    cartesian = "(box) => Boolean(box.aiserChart.getOption().xAxis)"
    for width in (360, 1280):
        page.set_viewport_size({"width": width, "height": 900})
        for index in range(boxes.count()):
            box = boxes.nth(index)
            if page.evaluate(cartesian, box.element_handle()):
                settle(page, box)
                where = f"voila chart {index} in a {width} px page"
                assert_readable(axis_texts(page, box), where)
        page.screenshot(path=str(ARTIFACTS / f"voila-dashboard-{width}.png"), full_page=True)


def test_voila_serves_the_notebook_as_is_with_its_own_template(browser, tmp_path):
    """Plain ``voila examples/dashboard.ipynb`` (Voila's lab template): the dashboard works;
    the only requests off this machine are that template's Font Awesome stylesheets, which
    aiser's template (used above) leaves out."""
    context, blocked = browser
    already = len(blocked)
    notebook = ROOT / "examples" / "dashboard.ipynb"
    with Voila(notebook, env={"AISER_HOME": str(tmp_path)}, template=None) as voila:
        page = context.new_page()
        page.goto(voila.url(), timeout=90_000)
        page.wait_for_function(
            "document.querySelectorAll('.aiser-chart canvas').length >= 6", timeout=90_000
        )
        page.wait_for_timeout(1000)
        assert_drawn(page, page.locator(".aiser-chart").first, ARTIFACTS / "voila-lab-template.png")
        page.close()
    theirs = blocked[already:]
    assert theirs and all("fontawesome" in url for url in theirs), theirs
    del blocked[already:]


def test_the_exported_file_draws_and_filters_from_file_url(browser, retail, sample, tmp_path):
    board = Dashboard(
        retail.semantic,
        "Exported",
        [
            d.kpi("orders.revenue", title="Revenue"),
            d.chart({"measures": ["orders.revenue"], "dimensions": ["customers.region"]}, "bar"),
            d.chart({"measures": ["orders.count"], "dimensions": ["products.category"]}, "pie"),
            d.table({"measures": ["orders.revenue"], "dimensions": ["orders.status"]}),
        ],
        filters=[d.date_range("orders.order_date"), "products.category"],
    )
    path = tmp_path / "exported.html"
    board.to_html(path)
    context, blocked = browser
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda error: errors.append(str(error)))
    page.goto(path.as_uri())
    page.wait_for_selector("#aiser-dashboard[data-ready]", timeout=20_000)
    page.wait_for_timeout(800)
    boxes = page.locator(".aiser-chart")
    assert_drawn(page, boxes.nth(0), ARTIFACTS / "export-bar.png")
    assert_drawn(page, boxes.nth(1), ARTIFACTS / "export-pie.png")
    ((everything,),) = sample("SELECT sum(revenue) FROM orders")
    assert kpis(page) == [money(everything)]

    page.locator("select[data-filter='1']").select_option(["Toys", "Home"])
    page.fill("input[data-edge='start']", "2024-02-01")
    page.fill("input[data-edge='end']", "2024-04-30")
    where = (
        "WHERE p.category IN ('Toys', 'Home') "
        "AND o.order_date BETWEEN DATE '2024-02-01' AND DATE '2024-04-30'"
    )
    ((total,),) = sample(f"SELECT sum(revenue) {JOINED} {where}")
    assert kpis(page) == [money(total)]
    regions = dict(sample(f"SELECT c.region, sum(revenue) {JOINED} {where} GROUP BY 1"))
    names, (values,) = page.evaluate(CHART_DATA, boxes.nth(0).element_handle())
    assert dict(zip(names, values, strict=True)) == pytest.approx(regions)
    statuses = dict(sample(f"SELECT status, sum(revenue) {JOINED} {where} GROUP BY 1"))
    cells = page.locator(".aiser-card-table tbody tr").all()
    shown = {
        r.locator("td").nth(0).inner_text(): r.locator("td").nth(1).inner_text() for r in cells
    }
    assert shown == {k: money(v) for k, v in statuses.items()}
    page.screenshot(path=str(ARTIFACTS / "export-filtered.png"), full_page=True)
    assert errors == [] and blocked == []
    page.close()
