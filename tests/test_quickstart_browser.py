"""The first run in a browser: the page ``./dev demo`` renders (examples/quickstart.ipynb) and
the dashboard it exports open from ``file://`` in Debian's headless Chromium, with every
request that is not for a local file blocked, and every chart on them paints.

Screenshots go to build/test-artifacts/.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pyarrow.compute as pc
import pytest

from aiser_jupyter import demo
from aiser_jupyter.sources.sample import retail_tables
from tools.browser import assert_drawn

ARTIFACTS = Path(__file__).resolve().parent.parent / "build" / "test-artifacts"
QUICKSTART_CHARTS = 5
"""aiser.chart of monthly revenue, the %%ask answer's chart, the dashboard's three charts."""
DASHBOARD_CHARTS = 3
ALL_CHARTS_HAVE_A_CANVAS = """() => {
  const boxes = document.querySelectorAll('.aiser-chart');
  return boxes.length > 0 && [...boxes].every((box) => box.querySelector('canvas'));
}"""


@pytest.fixture(scope="module")
def site(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The demo's output folder, rendered by the code ``./dev demo`` runs."""
    out = tmp_path_factory.mktemp("demo")
    assert demo.main(["--out", str(out)]) == 0
    return out


class FilesOnly:
    """A page that may load local files only: any other request is aborted and kept."""

    def __init__(self, context: Any) -> None:
        self.page = context.new_page()
        self.requested: list[str] = []  # every request the page made, whatever its scheme
        self.refused: list[str] = []
        self.errors: list[str] = []
        self.page.on("request", lambda request: self.requested.append(request.url))
        self.page.on("pageerror", lambda error: self.errors.append(str(error)))
        self.page.on(
            "console",
            lambda message: self.errors.append(message.text) if message.type == "error" else None,
        )
        self.page.route("**/*", self._guard)

    def _guard(self, route: Any) -> None:
        if route.request.url.startswith("file://"):
            route.continue_()
        else:
            self.refused.append(route.request.url)
            route.abort()

    def charts_painted(self, expected: int, name: str) -> None:
        """`expected` charts, each with a canvas painted in several colours."""
        self.page.wait_for_function(ALL_CHARTS_HAVE_A_CANVAS, timeout=30_000)
        self.page.wait_for_timeout(1000)  # let ECharts' entry animation finish
        boxes = self.page.locator(".aiser-chart")
        assert boxes.count() == expected
        for index in range(expected):
            assert_drawn(self.page, boxes.nth(index), ARTIFACTS / f"{name}-chart-{index}.png")

    def offline(self) -> None:
        """No request left this machine's files, none was even attempted, nothing failed."""
        assert self.refused == []
        assert all(url.split(":", 1)[0] in ("file", "data", "blob") for url in self.requested)
        assert self.errors == []


def test_the_rendered_quickstart_draws_every_chart_offline(site: Path, browser: Any) -> None:
    context, _ = browser
    view = FilesOnly(context)
    page = view.page
    page.goto((site / "quickstart.html").as_uri())
    view.charts_painted(QUICKSTART_CHARTS, "quickstart")
    ARTIFACTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(ARTIFACTS / "quickstart.png"), full_page=True)
    stderr = page.locator('[data-mime-type="application/vnd.jupyter.stderr"]')
    assert stderr.count() == 0  # no error output, no warning, no traceback
    text = page.inner_text("body")
    assert "Traceback" not in text
    for shown in ("%%sql", "%%query", "%%ask", "Retail at a glance", "anomaly"):
        assert shown in text
    view.offline()
    page.close()


def test_the_exported_dashboard_draws_from_the_quickstart_link(site: Path, browser: Any) -> None:
    """The quickstart links the file its dashboard cell wrote; followed, it paints offline."""
    context, _ = browser
    view = FilesOnly(context)
    page = view.page
    page.goto((site / "quickstart.html").as_uri())
    page.click('a[href="retail_dashboard.html"]')
    page.wait_for_selector("#aiser-dashboard[data-ready]", timeout=20_000)
    assert page.url == (site / "retail_dashboard.html").as_uri()
    view.charts_painted(DASHBOARD_CHARTS, "quickstart-dashboard")
    orders = retail_tables()["orders"]
    revenue, units = (pc.sum(orders[column]).as_py() for column in ("revenue", "quantity"))
    assert page.locator(".aiser-kpi-value").all_inner_texts() == [
        f"${revenue:,.2f}",
        f"{orders.num_rows:,}",
        f"{units:,}",
    ]
    page.screenshot(path=str(ARTIFACTS / "quickstart-dashboard.png"), full_page=True)
    view.offline()
    page.close()
