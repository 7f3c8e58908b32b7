"""Charts: building the chart of a 1,000,000-point time series, and a widget's first paint.

1. Build + serialise: ``aiser.chart(frame)`` on a 1,000,000-row (day, value) frame, then
   the JSON the widget sends (``Chart.to_json``). Baseline, same run: serialising the raw
   points as ECharts ``[x, y]`` pairs with ``json.dumps`` (what sending the series whole
   costs). Best of 5. Targets: under 200 ms, payload under 300 KB.
2. First paint in Chromium (Debian's, headless, internet blocked): in a real JupyterLab, the
   time from asking the notebook to run a cell that displays ``aiser.chart(frame)`` (a
   10-bar chart) to its canvas holding pixels. Baseline, same page: the same cell showing
   the frame as a plain pandas table, to the table appearing. Median of 7. Target: under 1 s.
"""

from __future__ import annotations

import json
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

POINTS = 1_000_000
PAINT_RUNS = 7


def build_and_serialise() -> None:
    import numpy as np
    import pandas as pd

    import aiser_jupyter as aiser
    from aiser_jupyter.charts import chart

    days = pd.date_range("2000-01-01", periods=POINTS, freq="min")
    values = np.cumsum(np.random.default_rng(1).normal(size=POINTS))
    frame = pd.DataFrame({"at": days, "value": values})
    aiser.session()  # not part of the timing

    ours, payload = [], ""
    for _ in range(5):
        started = time.perf_counter()
        payload = chart(frame).to_json()
        ours.append(time.perf_counter() - started)
    naive = []
    for _ in range(5):
        started = time.perf_counter()
        stamps = frame["at"].dt.strftime("%Y-%m-%dT%H:%M:%S").tolist()
        raw = json.dumps(
            {"series": [{"data": list(zip(stamps, frame["value"].tolist(), strict=True))}]}
        )
        naive.append(time.perf_counter() - started)
    best, base = min(ours), min(naive)
    print(
        f"build+serialise {POINTS:,} points: ours {best * 1000:.0f} ms, payload "
        f"{len(payload) / 1024:.0f} KB | raw json.dumps {base * 1000:.0f} ms, "
        f"{len(raw) / 1024 / 1024:.1f} MB | time ratio {best / base:.2f}x, "
        f"payload ratio {len(payload) / len(raw):.4f}"
    )
    met = best < 0.2 and len(payload) < 300_000
    print(f"  target < 200 ms and < 300 KB: {'met' if met else 'MISSED'}")


TIMED_CELL = """async ([source, selector]) => {
  const panel = window.jupyterapp.shell.currentWidget;
  panel.content.activeCellIndex = panel.content.widgets.length - 1;
  await window.jupyterapp.commands.execute('notebook:insert-cell-below');
  panel.content.activeCell.model.sharedModel.setSource(source);
  const before = document.querySelectorAll(selector).length;
  const started = performance.now();
  window.jupyterapp.commands.execute('notebook:run-cell');
  const painted = () => {
    const all = document.querySelectorAll(selector);
    if (all.length <= before) return false;
    const canvas = all[all.length - 1].querySelector('canvas');
    if (!canvas) return selector.includes('table');
    const data = canvas.getContext('2d').getImageData(0, 0, canvas.width, canvas.height).data;
    for (let i = 3; i < data.length; i += 4) if (data[i] > 0) return true;
    return false;
  };
  while (!painted()) await new Promise((r) => requestAnimationFrame(r));
  return performance.now() - started;
}"""


def first_paint() -> None:
    import nbformat

    from tools.browser import JupyterLab, offline_browser

    root = Path(tempfile.mkdtemp(prefix="aiser-bench-"))
    notebook = nbformat.v4.new_notebook()
    notebook.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
    notebook.cells = [
        nbformat.v4.new_code_cell(
            "import aiser_jupyter as aiser, pandas as pd\n"
            "frame = pd.DataFrame({'region': [f'r{i}' for i in range(10)], 'sales': range(10)})"
        )
    ]
    nbformat.write(notebook, root / "bench.ipynb")
    with (
        JupyterLab(root, env={"AISER_HOME": str(root / "home")}) as lab,
        offline_browser() as (context, blocked),
    ):
        page = context.new_page()
        page.goto(lab.url("lab/tree/bench.ipynb"))
        page.wait_for_function(
            "window.jupyterapp?.shell.currentWidget?.sessionContext?.session?.kernel",
            timeout=90_000,
        )
        page.evaluate("window.jupyterapp.shell.currentWidget.sessionContext.ready")
        page.evaluate("window.jupyterapp.commands.execute('notebook:run-all-cells')")
        page.wait_for_timeout(2000)
        charts, tables = [], []
        for _ in range(PAINT_RUNS):
            charts.append(
                page.evaluate(TIMED_CELL, ["aiser.chart(frame, kind='bar')", ".aiser-chart"])
            )
            tables.append(page.evaluate(TIMED_CELL, ["frame", ".jp-RenderedHTMLCommon table"]))
        assert not blocked, blocked
    ours, base = statistics.median(charts), statistics.median(tables)
    print(
        f"first paint in JupyterLab (median of {PAINT_RUNS}): chart widget {ours:.0f} ms | "
        f"pandas table {base:.0f} ms | ratio {ours / base:.2f}x"
    )
    print(f"  target < 1 s: {'met' if ours < 1000 else 'MISSED'}")


if __name__ == "__main__":
    build_and_serialise()
    first_paint()
