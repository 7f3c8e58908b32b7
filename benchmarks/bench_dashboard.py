"""Dashboards: a 6-chart dashboard on the sample data, interactive in Voila.

1. Open: ``voila examples/dashboard.ipynb`` (3 KPI cards, 6 charts, a table, a text, 3 filters)
   in Chromium (Debian's, headless, internet blocked): the time from asking for the page to
   every chart's canvas holding pixels and the KPI cards filled, a new kernel each time.
   Baseline, same run, same Voila: a plain notebook that loads the same sample data and
   shows 6 pandas tables of the same questions (hand-written SQL), to the 6th table
   appearing. Median of 3 each. Target: under 3 s.
2. Filter round trip: choosing a region in the open dashboard until every KPI card shows the
   filtered number (all 11 items re-run in the kernel). Median of 5.
"""

from __future__ import annotations

import argparse
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

JOINED = "FROM orders o JOIN customers c USING (customer_id) JOIN products p USING (product_id)"
TABLES = [
    f"SELECT date_trunc('month', order_date) AS month, sum(revenue) {JOINED} GROUP BY 1 ORDER BY 1",
    f"SELECT c.region, sum(revenue) {JOINED} GROUP BY 1",
    f"SELECT p.category, sum(revenue) {JOINED} GROUP BY 1",
    f"SELECT status, count(*) {JOINED} GROUP BY 1",
    f"SELECT c.segment, sum(revenue) {JOINED} GROUP BY 1",
    f"SELECT date_trunc('quarter', order_date) AS q, c.region, sum(quantity) {JOINED} "
    "GROUP BY 1, 2 ORDER BY 1",
]
READY = """() => {
  const canvases = [...document.querySelectorAll('.aiser-chart canvas')];
  const kpis = [...document.querySelectorAll('.aiser-kpi-value')];
  return canvases.length >= 6 && kpis.length >= 3 && kpis.every(k => k.textContent !== '') &&
    canvases.every(c => {
      const d = c.getContext('2d').getImageData(0, 0, c.width, c.height).data;
      for (let i = 3; i < d.length; i += 400) if (d[i] > 0) return true;
      return false;
    });
}"""


def baseline_notebook(folder: Path) -> Path:
    import nbformat

    cells = ["import aiser_jupyter as aiser\naiser.load_sample();"]
    cells += [f"aiser.sql({sql!r}).df" for sql in TABLES]
    notebook = nbformat.v4.new_notebook(cells=[nbformat.v4.new_code_cell(c) for c in cells])
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    path = folder / "tables.ipynb"
    nbformat.write(notebook, path)
    return path


def open_time(context, voila, ready: str) -> float:
    page = context.new_page()
    started = time.perf_counter()
    page.goto(voila.url(), timeout=120_000)
    page.wait_for_function(ready, timeout=120_000, polling=50)
    elapsed = time.perf_counter() - started
    page.close()
    return elapsed


def filter_round_trips(context, voila, runs: int) -> list[float]:
    page = context.new_page()
    page.goto(voila.url(), timeout=120_000)
    page.wait_for_function(READY, timeout=120_000)
    region = page.locator(".aiser-filter-values select").first
    regions = region.locator("option").all_inner_texts()
    times = []
    for run in range(runs):
        before = page.locator(".aiser-kpi-value").first.inner_text()
        started = time.perf_counter()
        region.select_option([regions[run % len(regions)]])
        page.wait_for_function(
            "(before) => document.querySelector('.aiser-kpi-value').textContent !== before",
            arg=before,
            polling=20,
        )
        times.append(time.perf_counter() - started)
    page.close()
    return times


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--runs", type=int, default=3, help="page loads per notebook")
    args = parser.parse_args()

    from tools.browser import offline_browser
    from tools.voila import Voila

    dashboard = ROOT / "examples" / "dashboard.ipynb"
    with tempfile.TemporaryDirectory() as folder, offline_browser() as (context, blocked):
        tables = baseline_notebook(Path(folder))
        table_ready = "() => document.querySelectorAll('table.dataframe').length >= 6"
        ours, base = [], []
        with Voila(dashboard) as voila:
            ours = [open_time(context, voila, READY) for _ in range(args.runs)]
            trips = filter_round_trips(context, voila, 5)
        with Voila(tables) as voila:
            base = [open_time(context, voila, table_ready) for _ in range(args.runs)]
        assert blocked == [], blocked
    mine, theirs, trip = statistics.median(ours), statistics.median(base), statistics.median(trips)
    print(
        f"open in Voila, to 6 charts drawn: dashboard {mine:.2f} s (runs "
        f"{', '.join(f'{t:.2f}' for t in ours)}) | 6 pandas tables {theirs:.2f} s | "
        f"ratio {mine / theirs:.2f}x | target < 3 s: {'met' if mine < 3 else 'NOT met'}"
    )
    print(f"filter round trip (11 items re-run and redrawn): median {trip * 1000:.0f} ms")
    return 0


if __name__ == "__main__":
    sys.exit(main())
