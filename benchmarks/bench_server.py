"""Load test of the Cube-compatible API (``aiser serve``) on loopback with wrk.

The server is the real command, ``aiser serve examples/model --sample``, in its own process
(uvicorn, JWT checked on every request); wrk holds `--connections` connections open for
`--duration` seconds on each scenario:

- cached: one dashboard query (orders count and revenue by region, completed only), asked
  again and again: answered from the result cache;
- uncached: the same query asked by a different tenant (JWT) on every request, with
  ``cache=no-cache``, so every request runs the query (from its rollup).

Server setups: 1 worker Session (queries in turn), 2 (a pool of threads, each Session its
own DuckDB), and 2 processes of 1 worker each (``--processes 2``, a cache per process).

Latency percentiles are wrk's (p50/p95/p99 over every request), errors are wrk's socket
errors and non-2xx answers plus "Continue wait" answers. The baseline is the same query run
in-process by ``Session.query``, 200 runs. Targets (issue 9): cached p95 < 50 ms at 1,000
concurrent clients with no errors; uncached p95 < 5 s.

wrk is closed-loop (each connection asks again as soon as it is answered), so latency is
about connections / throughput: p95 < 50 ms at 1,000 connections needs some 20,000 req/s.
A request still unanswered when a scenario ends is not counted, so a saturated scenario's
percentiles are capped near `--duration`. On two cores wrk and the server share the CPU,
so these figures are a floor for the server. Needs wrk (``apt-get install wrk``).
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from urllib.parse import urlencode

import httpx
import jwt

ROOT = Path(__file__).resolve().parent.parent
SECRET = "bench-secret-of-at-least-thirty-two-bytes"
QUERY = {
    "measures": ["orders.count", "orders.revenue"],
    "dimensions": ["customers.region"],
    "filters": [{"member": "orders.status", "operator": "equals", "values": ["completed"]}],
    "order": {"customers.region": "asc"},
}
CACHED_P95_TARGET_MS = 50
UNCACHED_P95_TARGET_MS = 5000

WRK_SCRIPT = """
local path = os.getenv("BENCH_PATH")
local tokens = {}
for line in io.lines(os.getenv("BENCH_TOKENS")) do
  table.insert(tokens, line)
end
local threads = {}
local counter = 0
continue_wait = 0

function setup(thread)
  thread:set("first", #threads * math.floor(#tokens / 2))
  table.insert(threads, thread)
end

function request()
  -- each thread cycles through its half of the tokens
  counter = counter + 1
  local token = tokens[first + counter % math.floor(#tokens / 2) + 1]
  return wrk.format("GET", path, {["Authorization"] = token})
end

function response(status, headers, body)
  if status == 200 and string.find(body, "Continue wait", 1, true) then
    continue_wait = continue_wait + 1
  end
end

function done(summary, latency, requests)
  local waits = 0
  for _, thread in ipairs(threads) do
    waits = waits + thread:get("continue_wait")
  end
  local e = summary.errors
  io.write(string.format(
    '{"requests": %d, "seconds": %f, "p50": %f, "p95": %f, "p99": %f, "max": %f, ' ..
    '"connect": %d, "read": %d, "write": %d, "status": %d, "timeout": %d, "continue_wait": %d}\\n',
    summary.requests, summary.duration / 1e6,
    latency:percentile(50) / 1e3, latency:percentile(95) / 1e3, latency:percentile(99) / 1e3,
    latency.max / 1e3, e.connect, e.read, e.write, e.status, e.timeout, waits))
end
"""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def start_server(port: int, workers: int, processes: int) -> subprocess.Popen:
    command = [sys.executable, "-m", "aiser_jupyter.cli", "serve", "examples/model", "--sample"]
    command += ["--port", str(port), "--workers", str(workers), "--continue-wait", "30"]
    command += ["--processes", str(processes)]
    env = {**os.environ, "CUBEJS_API_SECRET": SECRET}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline:
        try:
            httpx.get(f"http://127.0.0.1:{port}/livez")
            return process
        except httpx.ConnectError:
            if process.poll() is not None:
                raise RuntimeError("aiser serve exited") from None
            time.sleep(0.1)
    process.kill()
    raise RuntimeError("aiser serve did not start in 120 s")


def wrk(port: int, tokens: list[str], uncached: bool, connections: int, seconds: int) -> dict:
    """wrk's figures; `tokens` are cycled through (one per tenant)."""
    params = {"query": json.dumps(QUERY, separators=(",", ":"))}
    if uncached:
        params["cache"] = "no-cache"
    path = "/cubejs-api/v1/load?" + urlencode(params)
    with (
        tempfile.NamedTemporaryFile("w", suffix=".lua") as script,
        tempfile.NamedTemporaryFile("w", suffix=".txt") as listed,
    ):
        script.write(WRK_SCRIPT)
        listed.write("\n".join(tokens * 2 if len(tokens) == 1 else tokens) + "\n")
        script.flush()
        listed.flush()
        env = {**os.environ, "BENCH_TOKENS": listed.name, "BENCH_PATH": path}
        command = ["wrk", "-t2", f"-c{connections}", f"-d{seconds}s", "--timeout", "30s"]
        command += ["-s", script.name, f"http://127.0.0.1:{port}"]
        done = subprocess.run(command, env=env, capture_output=True, text=True)
    if done.returncode != 0:
        raise RuntimeError(f"wrk failed: {done.stdout}{done.stderr}")
    return json.loads(done.stdout.strip().splitlines()[-1])


def cache_hits(port: int) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    text = httpx.get(f"http://127.0.0.1:{port}/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if (
                sample.name == "aiser_result_cache_lookups_total"
                and sample.labels["result"] == "hit"
            ):
                return sample.value
    return 0.0


def in_process(runs: int) -> dict:
    """`Session.query` of the same query in this process: the work one uncached request does."""
    from aiser_jupyter.sessions import Session

    session = Session()
    session.sources.load_sample()
    session.load_model(ROOT / "examples/model/retail.yml")
    session.semantic.refresh_pre_aggregations()
    session.query(QUERY)
    times = []
    for _ in range(runs):
        started = time.perf_counter()
        session.query(QUERY)
        times.append((time.perf_counter() - started) * 1000)
    session.close()
    cuts = statistics.quantiles(times, n=100)
    return {"p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


def errors(result: dict) -> int:
    keys = ("connect", "read", "write", "status", "timeout", "continue_wait")
    return sum(result[k] for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=6, help="seconds per scenario")
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    one = [jwt.encode({"tenant": "bench"}, SECRET, algorithm="HS256")]
    each = [
        jwt.encode({"tenant": f"t{i}"}, SECRET, algorithm="HS256")
        for i in range(2 * args.connections)
    ]
    baseline = in_process(200)
    rows = []
    setups = (
        (1, 1, ("cached", "uncached")),
        (2, 1, ("uncached",)),
        (1, 2, ("cached", "uncached")),
    )
    for workers, processes, scenarios in setups:
        port = free_port()
        server = start_server(port, workers, processes)
        try:
            for scenario in scenarios:
                uncached = scenario == "uncached"
                tokens = each if uncached else one
                wrk(port, tokens, uncached, 10, 1)  # warm: the query compiled, the cache filled
                hits = cache_hits(port)
                result = wrk(port, tokens, uncached, args.connections, args.duration)
                # /metrics is per process: with several, one scrape sees one process only
                result["hits"] = cache_hits(port) - hits if processes == 1 else float("nan")
                rows.append((f"{scenario}, {workers}w x {processes}p", result))
        finally:
            server.terminate()
            server.wait(timeout=30)

    print(f"GET /cubejs-api/v1/load with a JWT, {args.connections} connections, wrk -t2, ")
    print(f"{args.duration} s per scenario, on {os.cpu_count()} cores shared with wrk")
    print(
        f"baseline, Session.query in-process: p50 {baseline['p50']:.2f} ms, "
        f"p95 {baseline['p95']:.2f} ms, p99 {baseline['p99']:.2f} ms"
    )
    header = f"{'scenario':<22}{'req/s':>9}{'p50 ms':>9}{'p95 ms':>9}{'p99 ms':>9}"
    print(header + f"{'errors':>8}{'p50/base':>10}{'cache hits':>12}")
    for name, r in rows:
        rate = r["requests"] / r["seconds"]
        print(
            f"{name:<22}{rate:>9.0f}{r['p50']:>9.1f}{r['p95']:>9.1f}{r['p99']:>9.1f}"
            f"{errors(r):>8}{r['p50'] / baseline['p50']:>9.1f}x{r['hits']:>12.0f}"
        )
    cached = min((r for name, r in rows if name.startswith("cached")), key=lambda r: r["p95"])
    uncached = min((r for name, r in rows if name.startswith("uncached")), key=lambda r: r["p95"])
    print(
        f"target cached p95 < {CACHED_P95_TARGET_MS} ms, no errors: "
        f"{'met' if cached['p95'] < CACHED_P95_TARGET_MS and not errors(cached) else 'NOT met'}"
    )
    print(
        f"target uncached p95 < {UNCACHED_P95_TARGET_MS} ms: "
        f"{'met' if uncached['p95'] < UNCACHED_P95_TARGET_MS else 'NOT met'}"
    )


if __name__ == "__main__":
    main()
