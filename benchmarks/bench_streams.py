"""Change-to-table lag of a live PostgreSQL table at 5,000 changes per second.

A throwaway server with ``wal_level=logical`` (tools/pgserver.py) gets
``orders (id bigint primary key, customer int, amount numeric(12,2), status text, ts
timestamptz)`` with 20,000 rows; ``aiser.connect(url, name="live", live=True)`` keeps its
replica in DuckDB. A writer thread then commits, every 10 ms, a transaction of 30 inserts,
15 updates and 5 deletes (50 changes: 5,000 changes per second) for 15 seconds, on its own
ADBC connection.

Lag of each transaction = the moment its batch committed in DuckDB (readable by queries)
minus the server's own commit timestamp of the transaction (carried in the replication
stream): the baseline is the server's clock at commit, so the lag is the whole path
(WAL flush, decoding, the poll, the fetch, DuckDB's transaction). Printed: p50, p95, p99,
max, the changes per second the server took and the replica applied, and a check that the
replica equals the server's own SELECT at the end.

Target (issue 16): p95 under 1 s at 5,000 changes per second sustained.
"""

from __future__ import annotations

import statistics
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ from a checkout

from tools.pgserver import PostgresServer

RATE = 5_000
TICK = 0.01
SECONDS = 15
INSERTS, UPDATES, DELETES = 30, 15, 5
TARGET_P95 = 1.0


def writer(url: str, stop: threading.Event, done: list[float]) -> None:
    """5,000 changes a second in 100 transactions of 50, paced against the clock."""
    from adbc_driver_postgresql import dbapi

    conn = dbapi.connect(url, autocommit=True)
    cursor = conn.cursor()
    next_id, low, tick = 1_000_000, 1, 0
    started = time.perf_counter()
    while not stop.is_set():
        for statement in (
            "BEGIN",
            "INSERT INTO orders SELECT g, g % 977, g % 1000 * 1.25, 'new', now() "
            f"FROM generate_series({next_id}, {next_id + INSERTS - 1}) AS g",
            "UPDATE orders SET amount = amount + 1, status = 'paid' WHERE id IN "
            f"(SELECT id FROM orders WHERE id >= {low + DELETES} ORDER BY id LIMIT {UPDATES})",
            f"DELETE FROM orders WHERE id >= {low} AND id < {low + DELETES}",
            "COMMIT",
        ):
            cursor.execute(statement)
        next_id += INSERTS
        low += DELETES
        tick += 1
        done.append(time.perf_counter())
        wait = started + tick * TICK - time.perf_counter()
        if wait > 0:
            time.sleep(wait)
    conn.close()


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(q * len(ordered)))]


def main() -> None:
    import aiser_jupyter as aiser

    with PostgresServer(logical=True) as pg:
        pg.psql(
            """
            CREATE TABLE orders (id bigint PRIMARY KEY, customer int, amount numeric(12,2),
                                 status text, ts timestamptz);
            INSERT INTO orders SELECT g, g % 977, g * 1.25, 'new', now()
            FROM generate_series(1, 20000) AS g;
            """
        )
        session = aiser.session()
        started = time.perf_counter()
        aiser.connect(pg.url, name="live", live=True, tables=["orders"])
        copied = time.perf_counter() - started
        stream = session.sources.streams.streams["live"]
        stop, commits = threading.Event(), []
        thread = threading.Thread(target=writer, args=(pg.url, stop, commits))
        thread.start()
        time.sleep(SECONDS)
        stop.set()
        thread.join()
        wrote = len(commits) * (INSERTS + UPDATES + DELETES)
        span = commits[-1] - commits[0] if len(commits) > 1 else float("nan")
        deadline = time.monotonic() + 30
        while len(stream.lags) < len(commits) and time.monotonic() < deadline:
            time.sleep(0.05)
        lags = list(stream.lags)
        check = "SELECT count(*), sum(amount)::float8, count(*) FILTER (WHERE status = 'paid')"
        server = pg.psql(f"{check} FROM orders").split("|")
        replica = session.sql(f"{check} FROM live.orders").df.iloc[0].tolist()
        same = [float(v) for v in server] == [float(v) for v in replica]
        [status] = session.streams().to_dict("records")
        session.close()

    p50, p95 = statistics.median(lags), percentile(lags, 0.95)
    print(f"initial copy of 20,000 rows: {copied:.2f} s")
    print(
        f"server: {len(commits)} transactions, {wrote:,} changes in {span:.1f} s "
        f"= {wrote / span:,.0f} changes/s (target rate {RATE:,}/s)"
    )
    print(f"replica: {len(lags)} transactions applied, {status['rows_applied']:,} rows")
    print("lag, server commit -> DuckDB commit (baseline: the server's commit timestamps):")
    print(
        f"  p50 {p50 * 1000:7.1f} ms   p95 {p95 * 1000:7.1f} ms   "
        f"p99 {percentile(lags, 0.99) * 1000:7.1f} ms   max {max(lags) * 1000:7.1f} ms"
    )
    print(f"replica equals the server's SELECT at the end: {same}")
    print(f"target p95 < {TARGET_P95:.0f} s: {'met' if p95 < TARGET_P95 else 'NOT met'}")


if __name__ == "__main__":
    main()
