"""Live results: the tables a query reads, watches that coalesce bursts and never overlap,
``%%sql --live`` and ``%%query --live`` in a real IPython shell updating their widgets and
variables in place after writes through ``Session.sql``, and a live dashboard."""

from __future__ import annotations

import threading
import time

import pytest

import aiser_jupyter as aiser
from aiser_jupyter.live.live import Live, LiveError, seconds
from aiser_jupyter.live.tables import tables_read, touches
from tests.conftest import run


def test_the_tables_a_query_reads_leave_out_its_ctes_and_table_functions():
    sql = """
        WITH recent AS (SELECT * FROM Live.Orders WHERE day > now() - INTERVAL 1 DAY)
        SELECT r.region, sum(r.amount) FROM recent r JOIN regions g USING (region)
        WHERE r.id IN (SELECT id FROM flagged) AND r.x NOT IN (SELECT 1 FROM read_csv('a.csv'))
        GROUP BY 1
    """
    assert tables_read(sql) == {"live.orders", "regions", "flagged"}
    assert touches("orders", {"live.orders"}) and touches("live.orders", {"orders"})
    assert not touches("other.orders", {"live.orders"}) and not touches("order", {"orders"})


def test_durations():
    assert [seconds(v) for v in ("500ms", "30s", "5m", "2min", "1h", 3, None)] == [
        0.5,
        30,
        300,
        120,
        3600,
        3,
        None,
    ]
    for bad in ("soon", "0s", -1):
        with pytest.raises(LiveError):
            seconds(bad)


def test_a_burst_of_changes_coalesces_and_runs_never_overlap():
    listeners = []
    live = Live(lambda listener: listeners.append(listener) or (lambda: None))
    gate, inside, most, runs = threading.Event(), [0], [0], []

    def slow() -> int:
        inside[0] += 1
        most[0] = max(most[0], inside[0])
        gate.wait(5)
        inside[0] -= 1
        runs.append(1)
        return len(runs)

    shown = []
    watch = live.watch("w", "SELECT * FROM orders", slow, shown.append)
    for _ in range(50):
        listeners[0]("data:orders")
    listeners[0]("data:customers")  # another table: nothing
    listeners[0]("history")
    gate.set()
    assert watch.wait()
    assert len(runs) == 2 and most[0] == 1  # the first run, then one for the other 49
    assert shown == [1, 2]
    live.stop("w")
    listeners[0]("data:orders")
    time.sleep(0.05)
    assert len(runs) == 2
    live.close()


def test_an_interval_re_runs_until_stopped():
    live = Live(lambda listener: lambda: None)
    ticks = []
    watch = live.watch("tick", (), lambda: ticks.append(1), every=0.02)
    deadline = time.monotonic() + 5
    while len(ticks) < 3 and time.monotonic() < deadline:
        time.sleep(0.01)
    live.stop()
    watch.wait()
    settled = len(ticks)
    time.sleep(0.08)
    assert settled >= 3 and len(ticks) == settled
    with pytest.raises(LiveError, match="nothing to watch"):
        live.watch("none", "SELECT 1", lambda: None)
    live.close()


@pytest.fixture
def live_shell(ip, monkeypatch):
    """The shell, with widgets on (so the live view is made of them) and a sales table."""
    monkeypatch.setenv("AISER_WIDGETS", "on")
    run(ip, "import aiser_jupyter as aiser")
    session = aiser.session()
    session.sql("CREATE TABLE sales (region VARCHAR, amount INTEGER)")
    session.sql("INSERT INTO sales VALUES ('North', 10), ('South', 20)")
    return ip, session


def totals(ip):
    return dict(zip(ip.user_ns["totals"]["region"], ip.user_ns["totals"]["total"], strict=True))


def test_a_live_sql_cell_updates_its_table_chart_and_variable_in_place(live_shell):
    ip, session = live_shell
    cell = (
        "%%sql -o totals --live --chart bar\n"
        "SELECT region, sum(amount)::INTEGER AS total FROM sales GROUP BY 1 ORDER BY 1"
    )
    view = run(ip, cell)
    assert totals(ip) == {"North": 10, "South": 20}
    assert view.table.total == 2 and view.chart.option["series"][0]["data"] == [10, 20]
    assert ip.user_ns["_"] is view  # the cell's value: `_` (and Out) keep the live view

    run(ip, "%sql INSERT INTO sales VALUES ('North', 5), ('East', 7)")
    assert view.watch.wait()
    assert totals(ip) == {"East": 7, "North": 15, "South": 20}
    assert view.table.total == 3 and view.table.rows == [["East", 7], ["North", 15], ["South", 20]]
    assert view.chart.option["series"][0]["data"] == [7, 15, 20]
    assert list(view.df["total"]) == [7, 15, 20] and view.watch.runs == 1

    # The same cell run again replaces its watch; run without --live, it stops being live.
    again = run(ip, cell)
    assert view.watch.stopped and not again.watch.stopped
    assert list(session.live.frame()["key"]) == [again.watch.key]
    run(ip, cell.replace(" --live", ""))
    assert again.watch.stopped and session.live.frame().empty


def test_a_live_cell_on_an_interval_and_aiser_live_stop(live_shell):
    ip, session = live_shell
    view = run(ip, "%%sql --live 50ms\nSELECT count(*) AS n FROM sales")
    deadline = time.monotonic() + 5
    while view.watch.runs < 2 and time.monotonic() < deadline:
        time.sleep(0.02)
    assert view.watch.runs >= 2 and view.watch.interval == 0.05
    run(ip, "%aiser live stop")
    assert view.watch.stopped and session.live.frame().empty


def test_a_live_query_cell_and_a_live_dashboard_follow_the_cubes_tables(retail, ip, monkeypatch):
    monkeypatch.setenv("AISER_WIDGETS", "on")
    count = retail.sql("SELECT count(*) FROM orders").df.iloc[0, 0]
    view = run(ip, '%%query -o n --live\n{"measures": ["orders.count"]}')
    board = aiser.dashboard("Orders", [{"measures": ["orders.count"]}], live=True)
    assert view.df.iloc[0, 0] == count
    retail.sql("INSERT INTO orders SELECT * FROM orders LIMIT 3")
    assert view.watch.wait()
    for watch in board._watches:
        assert watch.wait()
    assert view.df.iloc[0, 0] == count + 3 and ip.user_ns["n"].iloc[0, 0] == count + 3
    assert board.panels[0].result.df.iloc[0, 0] == count + 3
    board.stop()
