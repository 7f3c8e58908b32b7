"""Axes that read at any width, checked on what ECharts drew in Debian's headless Chromium
(every request off this machine blocked): a horizontal bar of large currency values, a
vertical bar of long category names, lines over dates with a legend, a scatter, a heatmap
and an exported dashboard, each at 300, 600 and 1200 px wide (one page per chart, resized).

From ECharts' own text elements, transformed to the canvas (tools/chart_layout.py): no two
visible tick labels of an axis overlap (rotated labels as rotated rectangles), and every
label and axis name lies inside the canvas. Compact ticks are compared with the tick values
ECharts chose, written here independently. Screenshots go to
build/test-artifacts/chart-axes/.
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
import pytest

import aiser_jupyter.boards as d
from aiser_jupyter.boards.board import Dashboard
from aiser_jupyter.charts import Chart, chart
from tools.chart_layout import assert_readable, axis_texts, settle

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts" / "chart-axes"
WIDTHS = (300, 600, 1200)
MARGIN = 16  # Chart.to_html's body margin, each side

TICKS = """([box, axis]) => box.aiserChart.getModel().getComponent(axis, 0).axis.scale.getTicks()
  .map((tick) => tick.value)"""


def money(value: float) -> str:
    """A tick as the axis should write it: $0, $500k, $2.5M (written independently)."""
    for size, suffix in ((1e9, "B"), (1e6, "M"), (1e3, "k")):
        if abs(value) >= size:
            return f"${value / size:g}{suffix}"
    return f"${value:g}"


class Annotated:
    """A result with a semantic annotation, as ``aiser.query`` gives one."""

    def __init__(self, frame: pd.DataFrame, annotation: dict):
        self.df, self.annotation = frame, annotation


def representative() -> dict[str, Chart]:
    customers = [f"Customer {c} Holdings International" for c in "ABCDEFGHIJKLMN"]
    revenue = Annotated(
        pd.DataFrame({"customer": customers, "revenue": np.linspace(9.5e6, 2.1e5, 14)}),
        {"measures": {"revenue": {"title": "Revenue", "format": "currency"}}},
    )
    categories = [
        "Home & Garden Furniture", "Consumer Electronics", "Sports and Outdoor Equipment",
        "Health & Beauty Products", "Toys", "Books and Magazines", "Office Supplies",
        "Kitchen Appliances", "Pet Food and Supplies", "Automotive Parts", "Jewellery",
        "Musical Instruments",
    ]  # fmt: skip
    units = pd.DataFrame({"category": categories, "units": np.arange(12, 0, -1) * 10_500})
    days = pd.date_range("2023-01-01", periods=730, freq="D")
    regions = ["North America", "Europe, Middle East and Africa", "Asia Pacific"]
    steps = np.random.default_rng(1).normal(1000, 50, (len(days), len(regions)))
    visits = pd.DataFrame(np.cumsum(steps, axis=0), columns=regions).assign(day=days)
    visits = visits.melt(id_vars="day", var_name="region", value_name="visits")
    rng = np.random.default_rng(2)
    prices, volumes = rng.uniform(1e3, 2e6, 300), rng.uniform(1e4, 5e6, 300)
    points = pd.DataFrame({"price": prices, "volume": volumes})
    slots = ["Monday morning", "Tuesday", "Wednesday afternoon", "Thursday", "Friday", "Sunday"]
    cells = pd.DataFrame(
        [(slot, region, rng.uniform(0, 1e6)) for slot in slots for region in regions],
        columns=["slot", "region", "sales"],
    )
    return {
        "hbar": chart(revenue, kind="hbar"),
        "vbar": chart(units, kind="bar"),
        "line": chart(visits),  # one line per region, the legend under the axes
        "scatter": chart(points),
        "heatmap": chart(cells),  # two category axes, the colour scale under them
    }


@pytest.fixture(scope="module")
def pages(browser, tmp_path_factory):
    """Each representative chart's standalone page, opened once (resized by the tests)."""
    context, _ = browser
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    folder = tmp_path_factory.mktemp("axes")
    opened = {}
    for name, made in representative().items():
        path = folder / f"{name}.html"
        made.to_html(path, height=360)
        page = context.new_page()
        page.set_viewport_size({"width": WIDTHS[0] + 2 * MARGIN, "height": 420})
        page.goto(path.as_uri())
        opened[name] = page
    yield opened
    for page in opened.values():
        page.close()


@pytest.mark.parametrize("name", ["hbar", "vbar", "line", "scatter", "heatmap"])
def test_a_chart_reads_at_every_width(pages, name):
    page = pages[name]
    page.bring_to_front()  # a page behind others gets few animation frames
    box = page.locator(".aiser-chart")
    for width in WIDTHS:
        page.set_viewport_size({"width": width + 2 * MARGIN, "height": 420})
        settle(page, box)
        layout = axis_texts(page, box)
        assert layout["width"] == width
        box.screenshot(path=str(ARTIFACTS / f"{name}-{width}.png"))
        assert_readable(layout, f"{name} at {width} px")


def test_large_currency_ticks_are_compact_and_tooltips_exact(pages):
    page = pages["hbar"]
    page.bring_to_front()  # a page behind others gets few animation frames
    box = page.locator(".aiser-chart")
    for width in WIDTHS:
        page.set_viewport_size({"width": width + 2 * MARGIN, "height": 420})
        settle(page, box)
        ticks = page.evaluate(TICKS, [box.element_handle(), "xAxis"])
        texts = axis_texts(page, box)["texts"]
        shown = [t["text"] for t in texts if t["axis"] == "xAxis0" and t["role"] == "label"]
        assert shown and set(shown) <= {money(v) for v in ticks}, (width, shown, ticks)
        assert "$10M" in shown  # the top of a 9.5M axis, not $10,000,000
        names = [t for t in texts if t["axis"] == "yAxis0" and t["role"] == "label"]
        cut = [t["text"] for t in names if t["text"].endswith("…")]
        assert (len(cut) == len(names)) if width == 300 else not cut, (width, cut)
    exact = page.evaluate(
        "(box) => box.aiserChart.getOption().tooltip[0].valueFormatter(9512345.678)",
        box.element_handle(),
    )
    assert exact == "$9,512,345.68"


def test_a_cut_category_name_shows_whole_on_hover(pages):
    page = pages["hbar"]
    page.bring_to_front()  # a page behind others gets few animation frames
    box = page.locator(".aiser-chart")
    page.set_viewport_size({"width": 300 + 2 * MARGIN, "height": 420})
    settle(page, box)
    texts = axis_texts(page, box)["texts"]
    first = next(t for t in texts if t["axis"] == "yAxis0" and t["role"] == "label")
    assert first["text"].endswith("…")
    xs, ys = zip(*first["corners"], strict=True)
    origin = box.bounding_box()
    page.mouse.move(origin["x"] + max(xs) - 20, origin["y"] + sum(ys) / 4)
    page.wait_for_function(
        "(box) => box.innerText.includes('Customer A Holdings International')",
        arg=box.element_handle(),
        timeout=5_000,
    )


@pytest.fixture(scope="module")
def dashboard_page(browser, tmp_path_factory):
    """An exported dashboard of the sample's revenue by category, month and segment."""
    from aiser_jupyter.sessions import Session

    session = Session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    revenue = ["orders.revenue"]
    board = Dashboard(
        session.semantic,
        "Axes",
        [
            d.chart({"measures": revenue, "dimensions": ["products.category"]}, "hbar"),
            d.chart(
                {
                    "measures": revenue,
                    "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
                },
                "line",
            ),
            d.chart({"measures": revenue, "dimensions": ["customers.segment"]}, "bar"),
        ],
    )
    path = tmp_path_factory.mktemp("board") / "axes.html"
    board.to_html(path)
    session.close()
    page = browser[0].new_page()
    page.set_viewport_size({"width": WIDTHS[0], "height": 900})
    page.goto(path.as_uri())
    page.wait_for_selector("#aiser-dashboard[data-ready]", timeout=20_000)
    yield page
    page.close()


def test_an_exported_dashboard_reads_at_every_width(dashboard_page):
    page = dashboard_page
    boxes = page.locator(".aiser-chart")
    assert boxes.count() == 3
    for width in WIDTHS:
        page.set_viewport_size({"width": width, "height": 900})
        for index in range(3):
            box = boxes.nth(index)
            settle(page, box)
            where = f"dashboard chart {index} in a {width} px page"
            assert_readable(axis_texts(page, box), where)
        page.screenshot(path=str(ARTIFACTS / f"dashboard-{width}.png"), full_page=True)


def test_a_scatter_point_shows_both_values_in_full(pages):
    page = pages["scatter"]
    page.bring_to_front()
    text = page.evaluate(
        """(box) => box.aiserChart.getOption().tooltip[0].formatter(
          {marker: '', seriesName: 'volume', value: [1234567.5, 2000000]})""",
        page.locator(".aiser-chart").element_handle(),
    )
    assert text == "volume<br>price: <b>1,234,567.5</b><br>volume: <b>2,000,000</b>"
