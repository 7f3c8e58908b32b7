"""The router and the result cache: what they add, and what federation costs.

1. Routing + transpiling: ``session.router.route(sql)`` (catalogs warm) for a query PostgreSQL
   owns (transpiled DuckDB → Postgres), a federated PostgreSQL ⋈ Parquet query (pushdown
   analysed with sqlglot's qualify), and a DuckDB query that runs as written. 300 runs each
   after 30 warm-ups, each with a new literal (nothing memoised); p50/p95; baseline:
   ``sqlglot.transpile`` of the same text alone. Target: < 5 ms per query (p50).
2. A cache hit for a 100,000-row result: ``session.router.run`` of a Parquet query whose
   answer is cached (routing, version check and history included), best and median of 50;
   baseline: the same query computed by DuckDB directly. Target: < 5 ms.
3. An aggregate over a large Parquet file (``--rows``, default 20,000,000; the issue asks for
   50M, which takes too long to write on this 2-core machine: pass ``--rows 50000000``):
   ``session.router.run`` with the cache off vs the same SQL on a plain ``duckdb.connect()``
   (read_parquet), 5 runs each alternating, best and median. Target: <= 1.1x.
4. Federated join: a 1,000,000-row PostgreSQL table ⋈ a 1,000,000-row Parquet file with a
   filter on each side, grouped; ``session.router.run`` (the cache off) vs pulling both into
   pandas (ADBC → Arrow → pandas, ``pd.read_parquet``) and ``merge`` + ``groupby``. Best of 3,
   answers checked equal. No target: the ratio is reported.
"""

from __future__ import annotations

import argparse
import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ from a checkout

from tools.pgserver import PostgresServer

ROWS_BIG = 20_000_000
ROWS_JOIN = 1_000_000
ROWS_HIT = 100_000


def timings(call: Callable[[], object], runs: int, warm: int = 0) -> list[float]:
    for _ in range(warm):
        call()
    found = []
    for _ in range(runs):
        started = time.perf_counter()
        call()
        found.append(time.perf_counter() - started)
    return found


def alternate(calls: dict[str, Callable[[], object]], rounds: int) -> dict[str, list[float]]:
    """Each call once per round, the order rotated, so drift hits them alike."""
    found: dict[str, list[float]] = {name: [] for name in calls}
    names = list(calls)
    for round_ in range(rounds):
        shift = round_ % len(names)
        for name in names[shift:] + names[:shift]:
            started = time.perf_counter()
            calls[name]()
            found[name].append(time.perf_counter() - started)
    return found


def ms(seconds: float) -> str:
    return f"{seconds * 1000:8.2f} ms"


def verdict(ok: bool) -> str:
    return "met" if ok else "MISSED"


def routing(session, queries: dict[str, str]) -> None:
    """Each run a new literal ({n}), so nothing is answered from memo: every query is new."""
    import itertools

    import sqlglot

    print("\n1. routing + transpiling, per query (300 runs after 30 warm-ups, each a new query)")
    print(
        f"{'query':<12}{'decision':<12}{'best':>12}{'p50':>12}{'p95':>12}{'transpile only p50':>22}"
    )
    worst = 0.0
    for name, template in queries.items():
        plan = session.router.route(template.format(n=0))
        counter = itertools.count(1)
        ours = sorted(
            timings(
                lambda t=template, c=counter: session.router.route(t.format(n=next(c))), 300, 30
            )
        )
        alone = sorted(
            timings(
                lambda t=template, c=counter: sqlglot.transpile(
                    t.format(n=next(c)), "duckdb", "postgres"
                ),
                300,
                30,
            )
        )
        p50, p95 = ours[len(ours) // 2], ours[int(len(ours) * 0.95)]
        worst = max(worst, p50)
        print(
            f"{name:<12}{plan.decision:<12}{ms(ours[0]):>12}{ms(p50):>12}{ms(p95):>12}"
            f"{ms(alone[150]):>22}"
        )
    load = ", ".join(f"{x:.1f}" for x in os.getloadavg())
    print(f"target < 5 ms per query (p50): {verdict(worst < 0.005)} (worst p50 {ms(worst)})")
    print(f"(p95 is at the machine's mercy: load average {load} on {os.cpu_count()} cores)")


def cache_hit(session, folder: Path) -> None:
    import duckdb

    path = folder / "hit.parquet"
    duckdb.sql(
        f"COPY (SELECT i AS id, i % 97 AS k, i * 0.5 AS v, 'label_' || (i % 1000) AS s "
        f"FROM range({ROWS_HIT}) t(i)) TO '{path}' (FORMAT parquet)"
    )
    session.connect(str(path), name="hits")
    sql = "SELECT id, k, v * 2 AS v2, upper(s) AS s FROM hits WHERE k <> 3 OR id < 10"
    first = session.router.run(sql)
    expected_rows = first.rowcount
    direct = duckdb.connect()
    baseline = f"SELECT id, k, v * 2 AS v2, upper(s) AS s FROM read_parquet('{path}') "
    baseline += "WHERE k <> 3 OR id < 10"

    def hit() -> None:
        result = session.router.run(sql)
        assert result.plan.cached and result.rowcount == expected_rows

    ours = timings(hit, 50, 5)
    computed = timings(lambda: direct.sql(baseline).to_arrow_table(), 10, 2)
    print(f"\n2. cache hit, {expected_rows:,} rows x 4 columns")
    print(f"ours (hit)        best {ms(min(ours))}  median {ms(statistics.median(ours))}")
    print(f"DuckDB computing  best {ms(min(computed))}  median {ms(statistics.median(computed))}")
    print(f"target < 5 ms: {verdict(statistics.median(ours) < 0.005)}")


def big_aggregate(session, folder: Path, rows: int) -> None:
    import duckdb

    path = folder / "big.parquet"
    started = time.perf_counter()
    duckdb.sql(
        f"COPY (SELECT i AS id, i % 1000 AS k, (i % 7919) * 0.25 AS v FROM range({rows}) t(i)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    made = time.perf_counter() - started
    print(f"\n3. aggregate over {rows:,} Parquet rows (written in {made:.1f} s)")
    session.connect(str(path), name="big")
    sql = "SELECT k, sum(v) AS total, count(*) AS n, avg(v) AS mean FROM big GROUP BY k"
    direct = duckdb.connect()
    baseline = sql.replace("FROM big", f"FROM read_parquet('{path}')")
    ours = session.router.run(sql, cache=False).to_arrow().sort_by("k")
    theirs = direct.sql(baseline).to_arrow_table().sort_by("k")
    assert ours.equals(theirs), "the router's answer differs from DuckDB's"
    found = alternate(
        {
            "ours": lambda: session.router.run(sql, cache=False),
            "duckdb": lambda: direct.sql(baseline).to_arrow_table(),
        },
        5,
    )
    for name, runs in found.items():
        print(f"{name:<8} best {ms(min(runs))}  median {ms(statistics.median(runs))}")
    ratio = statistics.median(found["ours"]) / statistics.median(found["duckdb"])
    print(f"ours / DuckDB (median): {ratio:.3f}x; target <= 1.1x: {verdict(ratio <= 1.1)}")


def federated_join(session, pg: PostgresServer, folder: Path) -> None:
    import adbc_driver_postgresql.dbapi as adbc
    import duckdb
    import pandas as pd

    started = time.perf_counter()
    pg.psql(
        f"""
        CREATE TABLE accounts AS
        SELECT g AS account_id, (ARRAY['North','South','East','West'])[1 + g % 4] AS region,
               (ARRAY['consumer','smb','enterprise'])[1 + g % 3] AS segment,
               'account ' || g AS label
        FROM generate_series(1, {ROWS_JOIN}) AS g;
        VACUUM ANALYZE accounts;
        """
    )
    path = folder / "payments.parquet"
    duckdb.sql(
        f"COPY (SELECT i AS payment_id, 1 + (i * 7919) % {ROWS_JOIN} AS account_id, "
        f"((i % 1000) * 0.1)::DOUBLE AS amount FROM range({ROWS_JOIN}) t(i)) "
        f"TO '{path}' (FORMAT parquet)"
    )
    print(
        f"\n4. federated join, PostgreSQL {ROWS_JOIN:,} rows ⋈ Parquet {ROWS_JOIN:,} rows "
        f"(made in {time.perf_counter() - started:.1f} s)"
    )
    session.connect(pg.url, name="pg")
    session.connect(str(path), name="payments")
    session.sources.use("duckdb")
    sql = (
        "SELECT a.region, count(*) AS n, sum(p.amount) AS total FROM payments p "
        "JOIN accounts a ON p.account_id = a.account_id "
        "WHERE a.segment = 'enterprise' AND p.amount >= 10 GROUP BY a.region"
    )
    print(session.router.route(sql).explain())
    raw = adbc.connect(pg.url, autocommit=True)

    def pandas_way() -> pd.DataFrame:
        with raw.cursor() as cursor:
            cursor.execute("SELECT * FROM accounts")
            accounts = cursor.fetch_arrow_table().to_pandas()
        payments = pd.read_parquet(path)
        merged = payments.merge(accounts, on="account_id")
        kept = merged[(merged.segment == "enterprise") & (merged.amount >= 10)]
        return kept.groupby("region").agg(n=("payment_id", "size"), total=("amount", "sum"))

    ours = session.router.run(sql, cache=False).df.set_index("region").sort_index()
    theirs = pandas_way().sort_index()
    assert ours["n"].tolist() == theirs["n"].tolist()
    assert (abs(ours["total"] - theirs["total"]) < 1e-6 * theirs["total"]).all()
    found = alternate(
        {"ours": lambda: session.router.run(sql, cache=False), "pandas": pandas_way}, 3
    )
    for name, runs in found.items():
        print(f"{name:<8} best {ms(min(runs))}  median {ms(statistics.median(runs))}")
    print(f"pandas / ours (best): {min(found['pandas']) / min(found['ours']):.1f}x")
    raw.close()


def main() -> None:
    import duckdb

    from aiser_jupyter import sessions

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS_BIG, help="rows of the big Parquet")
    args = parser.parse_args()
    session_class = sessions.Session
    with tempfile.TemporaryDirectory() as tmp, PostgresServer() as pg:
        folder = Path(tmp)
        os.environ["AISER_HOME"] = str(folder / "home")
        session = session_class()
        pg.psql(
            "CREATE TABLE customers AS SELECT g AS customer_id, 'c' || g AS name, "
            "(ARRAY['N','S'])[1 + g % 2] AS region FROM generate_series(1, 1000) g"
        )
        session.connect(pg.url, name="pg")
        duckdb.sql(
            f"COPY (SELECT i AS order_id, 1 + i % 1000 AS customer_id, i * 1.0 AS amount "
            f"FROM range(1000) t(i)) TO '{folder / 'orders.parquet'}' (FORMAT parquet)"
        )
        session.connect(str(folder / "orders.parquet"), name="orders")
        session.sources.use("duckdb")
        routing(
            session,
            {
                "postgres": "SELECT region, count(*) AS n FROM customers WHERE customer_id > {n} "
                "GROUP BY region QUALIFY rank() OVER (ORDER BY count(*) DESC) = 1",
                "federated": "SELECT c.region, sum(o.amount) AS total FROM orders o JOIN "
                "customers c ON o.customer_id = c.customer_id WHERE c.region = 'N' "
                "AND o.amount > {n} GROUP BY ALL",
                "duckdb": "SELECT customer_id, sum(amount) FROM orders WHERE amount > {n} "
                "GROUP BY ALL",
            },
        )
        cache_hit(session, folder)
        big_aggregate(session, folder, args.rows)
        federated_join(session, pg, folder)
        session.close()


if __name__ == "__main__":
    main()
