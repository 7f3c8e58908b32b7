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

First, the ceiling: a raw ASGI app on the same uvicorn that checks the same JWT with PyJWT
and answers a constant JSON body (the cached answer's bytes; benchmarks/asgi_limit.py), in
two forms: verifying the token on every request, and verifying it once per token as
``aiser serve`` does. wrk at 100 connections alternates between it and the cached
``/v1/load`` for `--rounds` rounds; the ratio is the median of the rounds' ratios. Then the
same cached path with 2 processes (uvicorn workers sharing the port) against 1.

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
RATIO_CONNECTIONS = 100
SERVER_CPU, WRK_CPU = ("0", "1") if (os.cpu_count() or 1) >= 2 else (None, None)
"""The ceiling and the cached path each run on one core, wrk on another."""
LIMIT_TARGET = 0.85
SCALING_TARGET = 1.6
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


def pinned(cpu: str | None) -> list[str]:
    """A command prefix that keeps a process on `cpu` (None, or no taskset: anywhere)."""
    return ["taskset", "-c", cpu] if cpu is not None and shutil.which("taskset") else []


def start_server(
    port: int, workers: int, processes: int, extra: tuple[str, ...] = (), cpu: str | None = None
) -> subprocess.Popen:
    command = [*pinned(cpu), sys.executable, "-m", "aiser_jupyter.cli", "serve", "examples/model"]
    command += ["--sample"]
    command += ["--port", str(port), "--workers", str(workers), "--continue-wait", "30"]
    command += ["--processes", str(processes), *extra]
    env = {**os.environ, "CUBEJS_API_SECRET": SECRET}
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return wait_live(port, process)


def start_limit(port: int, body: bytes, keep_tokens: bool, cpu: str | None) -> subprocess.Popen:
    """benchmarks/asgi_limit.py on the same uvicorn (uvloop, httptools, no access log)."""
    with tempfile.NamedTemporaryFile("wb", suffix=".json", delete=False) as listed:
        listed.write(body)
    command = [*pinned(cpu), sys.executable, "-m", "uvicorn", "benchmarks.asgi_limit:app"]
    command += ["--port", str(port)]
    command += ["--log-level", "warning", "--no-access-log"]
    env = {**os.environ, "CUBEJS_API_SECRET": SECRET, "BENCH_BODY": listed.name}
    env["BENCH_KEEP_TOKENS"] = "1" if keep_tokens else "0"
    process = subprocess.Popen(command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL)
    return wait_live(port, process)


def wait_live(port: int, process: subprocess.Popen) -> subprocess.Popen:
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


def wrk(
    port: int,
    tokens: list[str],
    uncached: bool,
    connections: int,
    seconds: int,
    cpu: str | None = None,
) -> dict:
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
        command = [*pinned(cpu), "wrk", "-t2", f"-c{connections}", f"-d{seconds}s"]
        command += ["--timeout", "30s"]
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


def rate(result: dict) -> float:
    return result["requests"] / result["seconds"]


def limit_ratios(token: str, rounds: int) -> dict[str, list[float]]:
    """req/s of the cached /v1/load and of both ceilings, alternating, `rounds` times."""
    port = free_port()
    server = start_server(port, 1, 1, cpu=SERVER_CPU)
    try:
        query = json.dumps(QUERY, separators=(",", ":"))
        path = "/cubejs-api/v1/load?" + urlencode({"query": query})
        body = httpx.get(f"http://127.0.0.1:{port}{path}", headers={"Authorization": token}).content
        limits = {}
        for keep in (False, True):
            limit_port = free_port()
            limits[keep] = (limit_port, start_limit(limit_port, body, keep, SERVER_CPU))
        runs: dict[str, list[float]] = {"cached": [], "limit": [], "limit, token kept": []}
        try:
            for _ in range(rounds):
                result = wrk(port, [token], False, RATIO_CONNECTIONS, 3, WRK_CPU)
                runs["cached"].append(rate(result))
                for keep, name in ((False, "limit"), (True, "limit, token kept")):
                    result = wrk(limits[keep][0], [token], False, RATIO_CONNECTIONS, 3, WRK_CPU)
                    runs[name].append(rate(result))
        finally:
            for _, process in limits.values():
                process.terminate()
                process.wait(timeout=30)
        return runs
    finally:
        server.terminate()
        server.wait(timeout=30)


def process_scaling(tokens: list[str], rounds: int) -> dict[int, list[float]]:
    """Cached req/s at 100 connections with 1 process and with 2, alternating."""
    servers = {}
    for processes in (1, 2):
        port = free_port()
        servers[processes] = (port, start_server(port, 1, processes))
    try:
        for port, _ in servers.values():
            wrk(port, tokens, False, 10, 1)  # every process's cache filled
        runs: dict[int, list[float]] = {1: [], 2: []}
        for _ in range(rounds):
            for processes, (port, _) in servers.items():
                runs[processes].append(rate(wrk(port, tokens, False, RATIO_CONNECTIONS, 3)))
        return runs
    finally:
        for _, process in servers.values():
            process.terminate()
            process.wait(timeout=30)


def print_limits(limits: dict[str, list[float]], scaling: dict[int, list[float]]) -> None:
    print(f"cached GET /v1/load against the raw-ASGI ceiling, wrk {RATIO_CONNECTIONS} connections:")
    for name, rates in limits.items():
        shown = " ".join(f"{r:.0f}" for r in rates)
        print(f"  {name:<20} req/s per round: {shown}")
    for name in ("limit", "limit, token kept"):
        ratios = [c / top for c, top in zip(limits["cached"], limits[name], strict=True)]
        print(
            f"  cached / {name}: median {statistics.median(ratios):.2f}x "
            f"(rounds {' '.join(f'{r:.2f}' for r in ratios)}; target >= {LIMIT_TARGET})"
        )
    ratios = [two / one for one, two in zip(scaling[1], scaling[2], strict=True)]
    print(
        f"cached, 2 processes / 1 process: median {statistics.median(ratios):.2f}x "
        f"(1p {' '.join(f'{r:.0f}' for r in scaling[1])} req/s; "
        f"2p {' '.join(f'{r:.0f}' for r in scaling[2])} req/s; target >= {SCALING_TARGET}, "
        f"on {os.cpu_count()} cores shared with wrk)"
    )


def errors(result: dict) -> int:
    keys = ("connect", "read", "write", "status", "timeout", "continue_wait")
    return sum(result[k] for k in keys)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--connections", type=int, default=1000)
    parser.add_argument("--duration", type=int, default=6, help="seconds per scenario")
    parser.add_argument("--rounds", type=int, default=3, help="rounds of the ratio runs")
    parser.add_argument(
        "--ratios-only", action="store_true", help="only the ceiling and process ratios"
    )
    args = parser.parse_args()
    if shutil.which("wrk") is None:
        sys.exit("wrk is needed: apt-get install wrk")
    one = [jwt.encode({"tenant": "bench"}, SECRET, algorithm="HS256")]
    each = [
        jwt.encode({"tenant": f"t{i}"}, SECRET, algorithm="HS256")
        for i in range(2 * args.connections)
    ]
    limits = limit_ratios(one[0], args.rounds)
    scaling = process_scaling(one, args.rounds)
    if args.ratios_only:
        print_limits(limits, scaling)
        return
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
    print_limits(limits, scaling)
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
