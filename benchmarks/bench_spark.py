"""Spark, lakes and APIs: what our layer adds over calling each library directly.

1. An aggregate (sum, count by key) over an N-row Parquet file (default 10,000,000;
   ``--rows``) on a local Spark (``local[2]``): ``SparkEngine.execute`` (worker thread,
   job group, progress polling) against ``spark.sql(q).toArrow()`` in the calling thread.
   DuckDB on the same file, for information. Runs alternate; best and median of 5.
   Target: ours / raw Spark <= 1.1 (the engine adds nothing measurable).
2. A 1,000,000-row Iceberg table (local SQLite catalog) read into the Session's DuckDB and
   aggregated: ``connect_lake`` + query, against pyiceberg's own ``scan().to_arrow()`` +
   DuckDB on that table. Best of 3. Reported (the gap is the Session's query path).
3. An HTTP API of 100 pages x 100 records on loopback: a cold fetch against a fetch served
   by the page cache. Best of 3. Reported.
"""

from __future__ import annotations

import argparse
import json
import statistics
import tempfile
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

QUERY = "SELECT k, count(*) AS n, sum(v) AS s FROM facts GROUP BY k ORDER BY k"


def timed(call) -> float:
    started = time.perf_counter()
    call()
    return time.perf_counter() - started


def spark_aggregate(rows: int, folder: Path) -> None:
    import duckdb
    import pyarrow as pa
    import pyarrow.compute as pc
    import pyarrow.parquet as pq

    from aiser_jupyter.engines.spark import SparkEngine

    ids = pa.array(range(rows), pa.int64())
    table = pa.table({"k": pc.bit_wise_and(ids, 15), "v": pc.multiply(ids, 3)})
    path = folder / "facts.parquet"
    pq.write_table(table, path, row_group_size=1_000_000)
    engine = SparkEngine("local[2]", config={"spark.sql.shuffle.partitions": "2"}, progress=False)
    engine.read("facts", str(path))
    con = duckdb.connect()
    con.execute(f"CREATE VIEW facts AS SELECT * FROM read_parquet('{path}')")
    candidates = {
        "ours: SparkEngine.execute": lambda: engine.execute(QUERY),
        "raw: spark.sql(q).toArrow()": lambda: engine.spark.sql(QUERY).toArrow(),
        "info: DuckDB direct": lambda: con.sql(QUERY).to_arrow_table(),
    }
    answers = {name: call().to_pylist() for name, call in candidates.items()}  # warm up
    first = next(iter(answers.values()))
    if any(answer != first for answer in answers.values()):
        raise RuntimeError("the engines disagree")
    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(5):
        for name, call in candidates.items():
            times[name].append(timed(call))
    print(f"1. {QUERY!r} over {rows:,} Parquet rows, local[2] (best / median of 5)")
    for name, values in times.items():
        print(f"   {name:34s} {min(values):8.3f} s  {statistics.median(values):8.3f} s")
    ratio = min(times["ours: SparkEngine.execute"]) / min(times["raw: spark.sql(q).toArrow()"])
    verdict = "met" if ratio <= 1.1 else "NOT met"
    print(f"   ours / raw Spark = {ratio:.3f} (target <= 1.1: {verdict})")
    engine.close()


def iceberg_read(folder: Path) -> None:
    import duckdb
    import pyarrow as pa

    from aiser_jupyter.sessions import Session
    from aiser_jupyter.sources.lakes import catalog_options, local_catalog

    rows = 1_000_000
    data = pa.table({"k": [i % 16 for i in range(rows)], "v": list(range(rows))})
    catalog = local_catalog(folder / "ice")
    catalog.create_namespace("db")
    catalog.create_table("db.facts", schema=data.schema).append(data)
    options = catalog_options(folder / "ice")
    session = Session()

    def ours() -> object:
        session.sources.connect_lake("iceberg://local/db.facts", **options)
        return session.sql(QUERY).to_arrow()

    def direct() -> object:
        table = local_catalog(folder / "ice").load_table("db.facts").scan().to_arrow()
        con = duckdb.connect()
        con.register("facts", table)
        return con.sql(QUERY).to_arrow_table()

    if ours().to_pylist() != direct().to_pylist():
        raise RuntimeError("the Iceberg reads disagree")
    best_ours = min(timed(ours) for _ in range(3))
    best_direct = min(timed(direct) for _ in range(3))
    ratio = best_ours / best_direct
    print(f"2. Iceberg, {rows:,} rows: connect_lake + query (best of 3)")
    print(f"   ours {best_ours:.3f} s, pyiceberg + DuckDB by hand {best_direct:.3f} s")
    print(f"   ratio {ratio:.2f}")
    session.close()


class Pages(BaseHTTPRequestHandler):
    def do_GET(self):
        page = int(parse_qs(urlsplit(self.path).query).get("page", ["1"])[0])
        records = [{"id": (page - 1) * 100 + i, "x": i * 0.5} for i in range(100)]
        data = json.dumps({"data": records if page <= 100 else []}).encode()
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


def api_fetch() -> None:
    from aiser_jupyter.sources.http_api import PAGES, HttpApi, Pagination

    server = ThreadingHTTPServer(("127.0.0.1", 0), Pages)
    threading.Thread(target=server.serve_forever, daemon=True).start()
    url = f"http://127.0.0.1:{server.server_address[1]}/items"
    paging = Pagination("page", "page", size_param="per_page", size=100, start=1)

    def fetch() -> object:
        return HttpApi(url, records="data", paginate=paging, progress=False).fetch()

    cold, warm = [], []
    for _ in range(3):
        PAGES.clear()
        cold.append(timed(fetch))
        warm.append(timed(fetch))
    assert fetch().num_rows == 10_000
    print("3. HTTP API, 100 pages x 100 records on loopback (best of 3)")
    print(
        f"   cold {min(cold) * 1000:.1f} ms, from the page cache {min(warm) * 1000:.1f} ms, "
        f"{min(cold) / min(warm):.1f}x"
    )
    server.shutdown()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=10_000_000)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as folder:
        spark_aggregate(args.rows, Path(folder))
        iceberg_read(Path(folder))
        api_fetch()


if __name__ == "__main__":
    main()
