"""Live results: change-to-browser latency of a live chart.

A throwaway PostgreSQL (wal_level=logical, ``tools/pgserver.py``) with a ``sales`` table; a
real JupyterLab in Debian's headless Chromium (internet blocked) runs a notebook that
connects it live (``aiser.connect(URL, live=True)``) and shows ``%%sql --live --chart bar``
over the replica. Each round inserts one row on the server (autocommit, from this process)
and times until the chart in the page shows the new total: server commit → logical
replication → replica batch → ``data:shop.sales`` → re-run on the kernel's loop → widget
traitlets over the comm → ECharts option in the browser. Median and p95 of 15 rounds.

Baseline, same run, same server: the same insert until a Session in this process sees the
row in its own live replica (change-to-table lag, no kernel, no browser). The difference is
what the live result adds. Target: change to browser under 2 s.
"""

from __future__ import annotations

import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

ROUNDS = 15
TOTAL = "(box) => box.aiserChart.getOption().series[0].data.reduce((a, b) => a + Number(b), 0)"


def p95(values: list[float]) -> float:
    return sorted(values)[max(0, round(0.95 * len(values)) - 1)]


def main() -> int:
    import nbformat
    from adbc_driver_postgresql import dbapi

    from tools.browser import JupyterLab, offline_browser, run_notebook
    from tools.pgserver import PostgresServer

    with PostgresServer(logical=True) as pg, tempfile.TemporaryDirectory() as tmp:
        pg.psql("CREATE TABLE sales (id int PRIMARY KEY, region text, amount int);")
        pg.psql("INSERT INTO sales SELECT g, 'r' || (g % 5), 1 FROM generate_series(1, 100) g")
        writer = dbapi.connect(pg.url, autocommit=True)
        cursor = writer.cursor()
        next_id = [1000]

        def insert() -> int:
            next_id[0] += 1
            cursor.execute(f"INSERT INTO sales VALUES ({next_id[0]}, 'r1', 1)")
            return 100 + next_id[0] - 1000

        # Baseline: change to this process's own replica.
        from aiser_jupyter.config import Settings
        from aiser_jupyter.sessions import Session

        session = Session(Settings(audit="off", alerts=f"{tmp}/alerts.db"))
        session.connect(pg.url, name="base", live=True, tables=["sales"])
        table_lag = []
        for _ in range(ROUNDS):
            start = time.perf_counter()
            expected = insert()
            while session.sql("SELECT sum(amount) FROM base.sales").df.iloc[0, 0] < expected:
                time.sleep(0.002)
            table_lag.append(time.perf_counter() - start)
        session.close()

        book = nbformat.v4.new_notebook()
        book.metadata["kernelspec"] = {"name": "python3", "display_name": "Python 3"}
        book.cells = [
            nbformat.v4.new_code_cell(
                "%load_ext aiser_jupyter\nimport aiser_jupyter as aiser\n"
                f'aiser.connect("{pg.url}", name="shop", live=True, tables=["sales"]);'
            ),
            nbformat.v4.new_code_cell(
                "%%sql --live --chart bar\n"
                "SELECT region, sum(amount)::INTEGER AS total FROM shop.sales GROUP BY 1 ORDER BY 1"
            ),
        ]
        nbformat.write(book, Path(tmp) / "live.ipynb")
        browser_lag = []
        with (
            JupyterLab(tmp, env={"AISER_HOME": f"{tmp}/home"}) as lab,
            offline_browser() as (context, _),
        ):
            page = run_notebook(context, lab, "live.ipynb", ".aiser-live .aiser-chart canvas")
            box = page.locator(".aiser-live .aiser-chart").first.element_handle()
            for _ in range(ROUNDS):
                start = time.perf_counter()
                expected = insert()
                page.wait_for_function(
                    f"(box) => ({TOTAL})(box) >= {expected}", arg=box, polling=5, timeout=30_000
                )
                browser_lag.append(time.perf_counter() - start)
            page.close()
        writer.close()

    base50, base95 = statistics.median(table_lag), p95(table_lag)
    ours50, ours95 = statistics.median(browser_lag), p95(browser_lag)
    print(f"{'path':<44}{'p50':>10}{'p95':>10}")
    print(f"{'change -> own replica (baseline)':<44}{base50 * 1000:>8.0f}ms{base95 * 1000:>8.0f}ms")
    print(
        f"{'change -> live chart in the browser':<44}{ours50 * 1000:>8.0f}ms{ours95 * 1000:>8.0f}ms"
    )
    added = (ours50 - base50) * 1000
    print(f"ratio (browser / replica), p50: {ours50 / base50:.1f}x; added: {added:.0f} ms")
    met = ours95 < 2.0
    print(f"target change -> browser < 2 s (p95): {'met' if met else 'NOT met'}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
