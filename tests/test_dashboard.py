"""Dashboards in the kernel: filters and chart clicks re-run the right queries (checked against
hand-written SQL over the sample tables), the live widgets follow, refresh runs on a
schedule, bad input fails clearly, and the exported file carries what it needs."""

from __future__ import annotations

import json
import re
import time
from pathlib import Path

import pytest

import aiser_jupyter.boards as d
from aiser_jupyter.boards.board import Dashboard
from aiser_jupyter.boards.spec import DashboardError, interval

ROOT = Path(__file__).resolve().parent.parent
REVENUE = ["orders.revenue"]
BY_REGION = {"measures": REVENUE, "dimensions": ["customers.region"]}
BY_CATEGORY = {"measures": REVENUE, "dimensions": ["products.category"]}
MONTHLY = {
    "measures": REVENUE,
    "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
}
JOINED = """FROM orders o JOIN customers c USING (customer_id) JOIN products p USING (product_id)"""


def hand(session, sql: str) -> list[tuple]:
    return [tuple(r.values()) for r in session.sql(sql).to_arrow().to_pylist()]


def kpi_value(panel) -> str:
    return re.search(r'aiser-kpi-value">([^<]*)<', panel.html)[1]


def money(value: float) -> str:
    return f"${value:,.2f}"


@pytest.fixture
def board(retail):
    return Dashboard(
        retail.semantic,
        "Sales",
        [
            d.kpi("orders.revenue", title="Revenue"),
            d.chart(BY_REGION, kind="bar"),
            d.chart(BY_CATEGORY, kind="pie"),
            d.chart(MONTHLY),
            d.kpi({"measures": ["products.count"]}, title="Products"),
            d.table({**BY_CATEGORY, "order": {"orders.revenue": "desc"}}, rows=3),
        ],
        filters=[d.date_range("orders.order_date"), "customers.region"],
    )


def test_filters_rerun_every_item_they_reach(board, retail):
    assert board.filter("customers.region").options == ["East", "North", "South", "West"]
    board.set_filter("orders.order_date", ("2024-03-01", "2024-06-30"))
    board.set_filter("customers.region", ["West", "South"])
    where = (
        "WHERE o.order_date BETWEEN DATE '2024-03-01' AND DATE '2024-06-30' "
        "AND c.region IN ('West', 'South')"
    )
    ((total,),) = hand(retail, f"SELECT sum(revenue) {JOINED} {where}")
    assert kpi_value(board.panels[0]) == money(total)
    by_category = dict(hand(retail, f"SELECT p.category, sum(revenue) {JOINED} {where} GROUP BY 1"))
    got = board.panels[2].result.df.set_index("products.category")["orders.revenue"].to_dict()
    assert got == pytest.approx(by_category)
    months = hand(
        retail,
        f"SELECT date_trunc('month', order_date), sum(revenue) {JOINED} {where} "
        "GROUP BY 1 ORDER BY 1",
    )
    line = board.panels[3].chart.option["series"][0]["data"]
    assert [x[:10] for x, _ in line] == ["2024-03-01", "2024-04-01", "2024-05-01", "2024-06-01"]
    assert [v for _, v in line] == pytest.approx([v for _, v in months])
    shown = re.findall(r"<tr><td>([^<]*)</td>", board.panels[5].html)
    assert shown == sorted(by_category, key=by_category.get, reverse=True)[:3]


def test_a_filter_skips_items_the_model_cannot_join_it_to(retail):
    retail.load_model(
        {"cubes": [
            {"name": "orders", "sql_table": "orders",
             "measures": [{"name": "count", "type": "count"}],
             "dimensions": [{"name": "status", "sql": "status", "type": "string"}]},
            {"name": "products", "sql_table": "products",
             "measures": [{"name": "count", "type": "count"}],
             "dimensions": [{"name": "category", "sql": "category", "type": "string"}]},
        ]}
    )  # fmt: skip
    board = Dashboard(
        retail.semantic,
        "x",
        [d.kpi("orders.count"), d.kpi("products.count")],
        filters=["products.category"],
    )
    assert not board.applies(0, "products.category")
    board.set_filter("products.category", ["Toys"])
    ((orders,),) = hand(retail, "SELECT count(*) FROM orders")
    ((toys,),) = hand(retail, "SELECT count(*) FROM products WHERE category = 'Toys'")
    assert [kpi_value(p) for p in board.panels] == [f"{orders:,}", f"{toys:,}"]
    assert board.panels[0].query.get("filters") is None


def test_clicking_a_chart_filters_the_others_and_again_clears(board, retail):
    before = board.panels[1].result.df.copy()
    board.select(1, {"name": "West", "filters": {"customers.region": "West"}})
    ((west,),) = hand(retail, f"SELECT sum(revenue) {JOINED} WHERE c.region = 'West'")
    assert kpi_value(board.panels[0]) == money(west)
    assert board.panels[1].result.df.equals(before)  # the clicked chart stays whole
    board.select(1, {"name": "West", "filters": {"customers.region": "West"}})
    assert board.cross == {}
    ((everything,),) = hand(retail, "SELECT sum(revenue) FROM orders")
    assert kpi_value(board.panels[0]) == money(everything)


def test_clicking_a_month_filters_the_others_to_that_month(board, retail):
    board.select(3, {"name": "", "filters": {"orders.order_date.month": "2024-02-01T00:00:00"}})
    sql = f"SELECT p.category, sum(revenue) {JOINED} WHERE o.order_date BETWEEN DATE '2024-02-01' AND DATE '2024-02-29' GROUP BY 1"  # noqa: E501
    got = board.panels[2].result.df.set_index("products.category")["orders.revenue"].to_dict()
    assert got == pytest.approx(dict(hand(retail, sql)))


def test_the_live_view_follows_controls_and_clicks(board, retail):
    view = board.widget
    pickers = [c for c in view.children[1].children if hasattr(c, "options")]
    pickers[0].value = ("East",)
    ((east,),) = hand(retail, f"SELECT sum(revenue) {JOINED} WHERE c.region = 'East'")
    assert money(east) in view.bodies[0].value
    chart = view.bodies[2]  # the pie's ChartWidget
    slices = {s["name"]: s["value"] for s in chart.option["series"][0]["data"]}
    expected = dict(
        hand(retail, f"SELECT category, sum(revenue) {JOINED} WHERE c.region = 'East' GROUP BY 1")
    )
    assert slices == pytest.approx(expected)
    # a click in the browser sets the widget's selection; the dashboard cross-filters
    view.bodies[2].selection = {"series": "Revenue", "name": "Toys", "value": 1, "index": 0}
    assert board.cross == {2: {"products.category": board.cross[2]["products.category"]}}
    ((toys,),) = hand(
        retail, f"SELECT sum(revenue) {JOINED} WHERE c.region = 'East' AND p.category = 'Toys'"
    )
    assert money(toys) in view.bodies[0].value
    assert "products.category = Toys" in view.chips.value
    assert re.fullmatch(r"updated \d\d:\d\d", view.status.value)


def test_a_text_item_is_a_function_of_its_filtered_result(retail):
    board = Dashboard(
        retail.semantic,
        "Text",
        [d.text(lambda r: f"**{len(r)}** regions", BY_REGION)],
        filters=["customers.region"],
    )
    assert "<strong>4</strong> regions" in board.panels[0].html
    board.set_filter("customers.region", ["West", "East"])
    assert "<strong>2</strong> regions" in board.panels[0].html


def test_refresh_reruns_on_a_schedule(retail):
    retail.sql("CREATE TABLE ticks AS SELECT 1 AS n")
    retail.load_model(
        {"cubes": [{"name": "ticks", "sql_table": "ticks",
                    "measures": [{"name": "total", "type": "sum", "sql": "n"}]}]}
    )  # fmt: skip
    board = Dashboard(retail.semantic, "Live", [d.kpi("ticks.total")], refresh=0.2)
    try:
        assert kpi_value(board.panels[0]) == "1"
        first = board.updated
        retail.sql("INSERT INTO ticks VALUES (41)")
        deadline = time.monotonic() + 10
        while kpi_value(board.panels[0]) != "42" and time.monotonic() < deadline:
            time.sleep(0.05)
        assert kpi_value(board.panels[0]) == "42"
        assert board.updated > first
    finally:
        board.stop()
    assert interval("5min") == 300 and interval("30s") == 30 and interval(None) is None


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (
            lambda s: Dashboard(s.semantic, "x", [BY_REGION], filters=["orders.nope"]),
            "not a member",
        ),
        (
            lambda s: Dashboard(
                s.semantic, "x", [BY_REGION], filters=[d.date_range("customers.region")]
            ),
            "needs a time dimension",
        ),
        (lambda s: Dashboard(s.semantic, "x", [42]), "cannot be a int"),
        (lambda s: Dashboard(s.semantic, "x", [BY_REGION], refresh="soon"), "not a duration"),
        (lambda s: Dashboard(s.semantic, "x", [BY_REGION], refresh=-1), "positive"),
        (
            lambda s: Dashboard(
                s.semantic, "x", [BY_REGION], filters=[d.date_range("orders.order_date", "May")]
            ),
            "not a date",
        ),
    ],
)
def test_bad_input_is_one_clear_error(retail, make, message):
    with pytest.raises(DashboardError, match=message) as error:
        make(retail)
    assert "\n" not in str(error.value)


def test_a_bad_filter_value_keeps_the_state(board):
    board.set_filter("customers.region", ["West"])
    with pytest.raises(DashboardError, match="no value 'Atlantis'"):
        board.set_filter("customers.region", ["Atlantis"])
    assert board.filter("customers.region").selected == ["West"]


def test_a_query_that_fails_shows_in_its_card_only(retail):
    board = Dashboard(
        retail.semantic, "x", [d.kpi("orders.revenue"), d.chart({"measures": ["orders.zz"]})]
    )
    assert board.panels[0].error is None and "$" in board.panels[0].html
    assert "zz" in board.panels[1].error


def test_without_a_widget_front_end_it_shows_as_static_html(board, retail):
    bundle = board._repr_mimebundle_()
    ((total,),) = hand(retail, "SELECT sum(revenue) FROM orders")
    assert money(total) in bundle["text/html"]
    assert bundle["text/html"].count("aiserCharts.render") == 3  # every chart draws
    assert bundle["text/html"].count("DecompressionStream") == 1  # the library once


def test_export_is_one_offline_file_with_the_rows_to_filter(board, retail, tmp_path):
    path = tmp_path / "sales.html"
    board.set_filter("customers.region", ["North"])
    page = board.to_html(path, max_rows=5000)
    assert path.read_text(encoding="utf-8") == page
    assert not re.search(r"""(src|href)=["']?(https?:)?//""", page)  # nothing from elsewhere
    assert "window.aiserCharts" in page and "aiser-dashboard-data" in page
    raw = re.search(r'id="aiser-dashboard-data">(.*?)</script>', page, re.S)[1]
    data = json.loads(raw)
    assert data["filters"][1] == {
        "kind": "values",
        "member": "customers.region",
        "selected": ["North"],
    }
    kpi = data["items"][0]["live"]
    # the embedded rows add back up to the whole, unfiltered total
    revenue = kpi["columns"].index("orders.revenue")
    ((total,),) = hand(retail, "SELECT sum(revenue) FROM orders")
    assert sum(r[revenue] for r in kpi["rows"]) == pytest.approx(total)
    assert set(kpi["filterColumns"].values()) == {"orders.order_date", "customers.region"}
    # split by day and region, the categories are over 5,000 rows: that chart stays as it is
    assert data["items"][2]["live"] is None and "5,000 rows" in data["items"][2]["note"]
    assert data["items"][3]["live"]["kind"] == "line"


def test_export_keeps_measures_it_cannot_re_add_fixed(retail):
    board = Dashboard(
        retail.semantic,
        "x",
        [d.chart({"measures": ["orders.average_order_value"], "dimensions": ["customers.region"]})],
        filters=["customers.region"],
    )
    data = json.loads(
        re.search(r'id="aiser-dashboard-data">(.*?)</script>', board.to_html(), re.S)[1]
    )
    assert data["items"][0]["live"] is None
    assert "cannot be re-added" in data["items"][0]["note"]


def test_in_a_kernel_refresh_runs_on_its_event_loop(tmp_path):
    """In a real kernel the schedule is a timer on the kernel's event loop (so a refresh never
    runs in the middle of a cell), and it fires while the kernel waits."""
    import nbformat
    from nbclient import NotebookClient

    from aiser_jupyter.demo import kernel_manager

    model = str(ROOT / "examples" / "model" / "retail.yml")
    cells = [
        "import asyncio, aiser_jupyter as aiser, aiser_jupyter.boards as d\n"
        f"aiser.load_sample(); aiser.model({model!r})\nruns = []\n"
        "board = aiser.dashboard('x', [d.kpi('orders.revenue')], refresh='0.3s')\n"
        "board.on_update(lambda changed: runs.append(type(board._timer).__name__))",
        "await asyncio.sleep(1.5)\nboard.stop()\nprint(len(runs), sorted(set(runs)))",
    ]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    client = NotebookClient(
        notebook, km=kernel_manager(), resources={"metadata": {"path": str(tmp_path)}}
    )
    client.execute()
    count, kinds = notebook.cells[1].outputs[0]["text"].split(" ", 1)
    assert int(count) >= 2
    assert kinds.strip() == "['TimerHandle']"


def test_the_session_mixin_makes_the_same_dashboard(retail):
    board = d.dashboard("x", [d.kpi("orders.revenue")], refresh=None)
    ((total,),) = hand(retail, "SELECT sum(revenue) FROM orders")
    assert isinstance(board, Dashboard) and kpi_value(board.panels[0]) == money(total)


def test_the_module_is_callable_as_aiser_dashboard(retail):
    import aiser_jupyter as aiser

    board = aiser.dashboard("x", [d.kpi("orders.count")])
    ((count,),) = hand(retail, "SELECT count(*) FROM orders")
    assert kpi_value(board.panels[0]) == f"{count:,}"


def test_binder_start_has_voila_use_the_offline_template():
    import subprocess
    import sys

    probe = (
        "import json, os; from jupyter_core.paths import jupyter_config_path, jupyter_path;"
        "print(os.environ['AISER_SAMPLE_DIR']);"
        "print(next(p for p in jupyter_path('voila', 'templates', 'aiser') if os.path.isdir(p)));"
        "config = next(p for p in jupyter_config_path() if os.path.exists(p + '/voila.json'));"
        "print(json.load(open(config + '/voila.json'))['VoilaConfiguration']['template'])"
    )
    run = subprocess.run(
        [str(ROOT / "binder" / "start"), sys.executable, "-c", probe],
        capture_output=True,
        text=True,
        check=True,
    )
    data, template, named = run.stdout.split()
    assert data == str(ROOT / "build" / "data")
    assert template == str(ROOT / "aiser_jupyter" / "boards" / "voila" / "templates" / "aiser")
    assert named == "aiser"
    assert "voila" in (ROOT / "binder" / "requirements.txt").read_text()


def test_results_as_items_semantic_ones_follow_the_filters(retail):
    semantic = retail.query(BY_CATEGORY)
    plain = retail.sql("SELECT status, count(*) AS n FROM orders GROUP BY 1")
    board = Dashboard(retail.semantic, "x", [semantic, plain], filters=["customers.region"])
    board.set_filter("customers.region", ["South"])
    got = board.panels[0].result.df.set_index("products.category")["orders.revenue"].to_dict()
    south = hand(
        retail, f"SELECT category, sum(revenue) {JOINED} WHERE c.region = 'South' GROUP BY 1"
    )
    assert got == pytest.approx(dict(south))
    assert board.panels[1].result is plain and board.panels[1].chart is not None
    assert board.panels[1].notes == ["not filtered: made from SQL, not a semantic query"]
