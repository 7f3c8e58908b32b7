"""Widgets on the Python side: what they hold, send and do, checked against the data.

What the browser does with them is in test_browser.py.
"""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pyarrow as pa
import pytest
from conftest import run
from IPython.utils.capture import capture_output

import aiser_jupyter as aiser
from aiser_jupyter.widgets.chart import ChartWidget
from aiser_jupyter.widgets.connections import ConnectionPanel
from aiser_jupyter.widgets.frontend import widgets_live
from aiser_jupyter.widgets.schema import SchemaBrowser
from aiser_jupyter.widgets.table import ResultTable

# -- ChartWidget ------------------------------------------------------------------------


def click(widget: ChartWidget, **clicked) -> dict:
    """What a click in the browser sets, and what the callbacks then receive."""
    received: list[dict] = []
    widget.on_select(received.append)
    widget.selection = {"series": None, "name": None, "value": None, "index": 0, **clicked}
    assert widget.selection["index"] == 0  # the trait holds the raw click for observers
    return received[-1]


def test_a_clicked_bar_names_its_category():
    frame = pd.DataFrame({"region": ["North", "South", "East"], "revenue": [3.0, 1.0, 2.0]})
    widget = aiser.chart(frame, kind="bar")
    got = click(widget, series="revenue", name="South", value=1.0)
    assert got["filters"] == {"region": "South"}


def test_a_clicked_point_of_a_split_line_names_the_time_and_the_series():
    frame = pd.DataFrame(
        {
            "month": pd.to_datetime(["2024-01-01", "2024-02-01"] * 2),
            "region": ["North", "North", "South", "South"],
            "revenue": [1.0, 2.0, 3.0, 4.0],
        }
    )
    widget = aiser.chart(frame)
    assert widget.spec.kind == "line" and widget.spec.series == "region"
    got = click(widget, series="South", value=["2024-02-01T00:00:00", 4.0])
    assert got["filters"] == {"month": "2024-02-01T00:00:00", "region": "South"}


def test_a_clicked_heatmap_cell_names_both_categories():
    frame = pd.DataFrame(
        {"day": ["Mon", "Mon", "Tue", "Tue"], "hour": ["am", "pm"] * 2, "visits": [1, 2, 3, 4]}
    )
    widget = aiser.chart(frame, kind="heatmap")
    xs, ys = widget.option["xAxis"]["data"], widget.option["yAxis"]["data"]
    got = click(widget, value=[xs.index("Tue"), ys.index("pm"), 4])
    assert got["filters"] == {"day": "Tue", "hour": "pm"}


def test_a_scatter_point_filters_nothing():
    frame = pd.DataFrame({"price": [1.0, 2.0, 3.0], "units": [3.0, 2.0, 1.0]})
    assert click(aiser.chart(frame, kind="scatter"), value=[2.0, 2.0])["filters"] == {}


def test_export_format_is_checked_before_asking_the_browser(tmp_path):
    widget = aiser.chart(pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}))
    with pytest.raises(ValueError, match="png or svg"):
        widget.save(tmp_path / "chart.gif")


def test_without_a_widget_front_end_a_chart_is_self_contained_html():
    assert not widgets_live()  # a plain IPython shell: no kernel, no widget manager
    widget = aiser.chart(pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}))
    bundle = widget._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" not in bundle
    html = bundle["text/html"]
    assert "DecompressionStream" in html and "<script src" not in html
    assert widget.reason in html  # the one-line reason shows under the chart


def test_widgets_on_gives_the_live_view_with_the_html_beside_it(monkeypatch):
    monkeypatch.setenv("AISER_WIDGETS", "on")
    aiser.session().settings.widgets = "on"
    data = aiser.chart(pd.DataFrame({"a": ["x", "y"], "b": [1, 2]}))._repr_mimebundle_()[0]
    assert data["application/vnd.jupyter.widget-view+json"]["model_id"]
    assert "aiser-chart" in data["text/html"]


def test_to_html_writes_a_page_that_needs_no_network(tmp_path):
    frame = pd.DataFrame({"a": ["x", "y"], "b": [1, 2]})
    path = tmp_path / "chart.html"
    text = aiser.chart(frame, kind="bar").to_html(path)
    assert path.read_text(encoding="utf-8") == text
    assert "<script src" not in text and "<link" not in text
    assert "window.aiserCharts=" in text.replace(" ", "")  # the library is inlined
    assert json.dumps(["x", "y"]).replace(" ", "") in text


# -- ResultTable ------------------------------------------------------------------------


@pytest.fixture
def numbers() -> pa.Table:
    rng = np.random.default_rng(3)
    score = rng.integers(0, 500, 10_000).astype(float)
    score[::7] = np.nan
    return pa.table({"n": np.arange(10_000), "score": pa.array(score, from_pandas=True)})


def test_a_result_table_sends_one_page_at_a_time(numbers):
    table = ResultTable(numbers, page_size=20)
    assert table.total == 10_000
    assert [c["name"] for c in table.columns] == ["n", "score"]
    assert [row[0] for row in table.rows] == list(range(20))
    table.page = 3
    assert [row[0] for row in table.rows] == list(range(60, 80))


def test_sorting_runs_in_the_kernel_with_nulls_last(numbers):
    frame = numbers.to_pandas()
    table = ResultTable(numbers, page_size=10)
    table.sort = ["score", "desc"]
    expected = frame.sort_values("score", ascending=False, kind="stable")["score"].head(10)
    assert [row[1] for row in table.rows] == expected.tolist()
    table.sort = ["score", "asc"]
    assert [row[1] for row in table.rows] == frame["score"].nsmallest(10).tolist()
    assert frame["score"].isna().sum() > 10
    table.page = (table.total - 1) // 10  # the last page: NULLs come last
    assert len(table.rows) == 10
    assert all(row[1] is None for row in table.rows)


def test_sorting_by_an_unknown_column_is_refused(numbers):
    table = ResultTable(numbers)
    with pytest.raises(ValueError, match="no column"):
        table.sort = ["nope", "asc"]


def test_a_result_table_shows_the_result_caption():
    aiser.load_sample()
    result = aiser.sql("SELECT * FROM orders")
    table = aiser.table(result)
    raw = aiser.session().connection().engine.con  # DuckDB itself
    assert table.total == raw.execute("SELECT count(*) FROM orders").fetchall()[0][0]
    assert "rows" in table.caption and "duckdb" in table.caption
    assert len(table.rows) == 25


def test_a_big_result_shows_as_a_table_widget_only_where_widgets_render(ip):
    run(ip, "import aiser_jupyter as aiser")
    frame = run(ip, "%sql SELECT * FROM range(100) t(i)")
    data, _ = ip.display_formatter.format(frame)
    assert "application/vnd.jupyter.widget-view+json" not in data  # no widget front end
    aiser.session().settings.widgets = "on"
    data, _ = ip.display_formatter.format(frame)
    assert "application/vnd.jupyter.widget-view+json" in data
    assert "text/html" in data  # the plain table stays for viewers without widgets
    small = run(ip, "%sql SELECT 1 AS one")
    data, _ = ip.display_formatter.format(small)
    assert "application/vnd.jupyter.widget-view+json" not in data


# -- SchemaBrowser ----------------------------------------------------------------------


def test_the_schema_browser_lists_tables_columns_and_the_model():
    session = aiser.session()
    session.sources.load_sample()
    browser = aiser.browse()
    (duck,) = [node for node in browser.tree if node["kind"] == "connection"]
    tables = {node["label"]: node for node in duck["children"]}
    assert set(tables) == {"customers", "products", "orders"}
    described = session.connection().engine.execute("DESCRIBE orders").to_pylist()
    assert [(c["label"], c["detail"]) for c in tables["orders"]["children"]] == [
        (row["column_name"], row["column_type"]) for row in described
    ]
    ((count,),) = session.connection().engine.con.execute("SELECT count(*) FROM orders").fetchall()
    assert tables["orders"]["detail"] == f"9 columns · {count:,} rows"
    assert all(node["kind"] != "model" for node in browser.tree)
    session.load_model("examples/model/retail.yml")
    browser.refresh()
    model = next(node for node in browser.tree if node["kind"] == "model")
    orders = next(cube for cube in model["children"] if cube["detail"] == "orders")
    measures = next(group for group in orders["children"] if group["label"] == "measures")
    assert "orders.revenue · sum" in [leaf["detail"] for leaf in measures["children"]]


def test_choosing_a_table_previews_it_with_a_snippet_that_runs(ip):
    aiser.load_sample()
    browser = aiser.browse()
    browser.selected = {"connection": "duckdb", "schema": "main", "table": "products"}
    count = aiser.sql("SELECT count(*) AS n FROM products").df["n"][0]
    assert browser.preview["count"] == count
    assert len(browser.preview["rows"]) == min(10, count)
    assert browser.preview["columns"][0] == "product_id"
    line, _, body = browser.snippet.partition("\n")
    frame = ip.run_cell_magic("sql", line.removeprefix("%%sql "), body)
    assert len(frame) == min(100, count)


def test_postgres_tables_show_their_row_estimates(pg_retail):
    aiser.connect(pg_retail, name="pg")
    (pg,) = [node for node in aiser.browse().tree if node["label"] == "pg"]
    tables = {node["label"]: node for node in pg["children"]}
    assert {"customers", "products", "orders", "sales"} <= set(tables)
    assert "columns" in tables["orders"]["detail"]


def test_a_missing_table_previews_as_an_error_not_a_crash():
    browser = aiser.browse()
    browser.selected = {"connection": "duckdb", "schema": "main", "table": "gone"}
    assert browser.snippet.startswith("-- ") and "gone" in browser.snippet
    assert browser.preview == {}


# -- ConnectionPanel --------------------------------------------------------------------


def fill(panel: ConnectionPanel, kind: str, **fields: str) -> None:
    panel.kind.value = next(label for label, k in panel_kinds().items() if k == kind)
    for field, value in fields.items():
        panel.inputs[field].value = value


def panel_kinds() -> dict[str, str]:
    from aiser_jupyter.widgets.connections import KINDS

    return KINDS


def test_the_panel_tests_then_connects_postgres_and_forgets_the_password(pg_server):
    panel = aiser.panel()
    fields = dict(
        host=pg_server.host,
        port=str(pg_server.port),
        database=pg_server.dbname,
        user=pg_server.user,
        password=pg_server.password,
    )
    fill(panel, "postgresql", **fields)
    assert panel.test(), panel.message.value
    assert "OK: postgres" in panel.message.value
    assert "pg" not in aiser.session().sources.connections  # testing keeps nothing
    panel.name.value = "pg"
    assert panel.connect(), panel.message.value
    assert aiser.sql("SELECT count(*) AS n FROM sales", "pg").df["n"][0] == 1000
    assert panel.inputs["password"].value == ""
    state = json.dumps([child.get_state() for child in panel.inputs.values()], default=str)
    shown = panel.message.value + panel.live.value + state
    assert pg_server.password not in shown
    assert "pg" in panel.live.value


def test_a_wrong_password_says_why_and_shows_no_secret(pg_server):
    panel = aiser.panel()
    fill(
        panel,
        "postgresql",
        host=pg_server.host,
        port=str(pg_server.port),
        database=pg_server.dbname,
        user=pg_server.user,
        password="not-the-password-42",
    )
    assert not panel.connect()
    assert "password authentication failed" in panel.message.value
    assert "not-the-password-42" not in panel.message.value
    assert panel.inputs["password"].value == ""
    assert list(aiser.session().sources.connections) == []


def test_form_mistakes_are_reported_in_the_panel(tmp_path):
    panel = aiser.panel()
    fill(panel, "postgresql", host="localhost", port="fivefour")
    assert not panel.test() and "port must be a number" in panel.message.value
    fill(panel, "sqlite", path="")
    assert not panel.test() and "needs a database file path" in panel.message.value
    for day in ("a", "b"):
        (tmp_path / f"{day}.csv").write_text("x\n1\n", encoding="utf-8")
    fill(panel, "file", path=str(tmp_path / "*.csv"))
    assert panel.test() and "2 files found" in panel.message.value
    panel.name.value = "days"
    assert panel.connect()
    assert aiser.sql("SELECT count(*) AS n FROM days").df["n"][0] == 2


# -- magics -----------------------------------------------------------------------------


def test_sql_chart_option_draws_the_result(ip):
    run(ip, "import aiser_jupyter as aiser; aiser.load_sample()")
    with capture_output() as captured:
        frame = run(ip, "%%sql --chart bar\nSELECT status, count(*) AS n FROM orders GROUP BY 1")
    (shown,) = captured.outputs
    assert "aiser-chart" in shown.data["text/html"]
    assert "bar:" in shown.data["text/html"]  # the reason line, with the asked-for kind
    raw = aiser.session().connection().engine.con
    statuses = raw.execute("SELECT DISTINCT status FROM orders").fetchall()
    assert sorted(frame["status"]) == sorted(s for (s,) in statuses)


def test_panel_and_browse_commands_give_their_widgets(ip):
    assert isinstance(run(ip, "%aiser panel"), ConnectionPanel)
    assert isinstance(run(ip, "%aiser browse"), SchemaBrowser)
