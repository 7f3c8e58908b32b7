"""An open-loop load model of ``aiser serve``: many users with think time, not wrk's closed loop.

1,000 simulated users, each on its own keep-alive connection, each looking at one of three
dashboards as one of 20 tenants (a JWT per tenant, so the cache keeps an answer per tenant).
Every user sends one of its dashboard's queries, then thinks (exponentially distributed,
mean `--think` seconds), then sends the next. Requests are scheduled, not sent when the last
answer came back: a request's latency counts from when it was due, so a server that falls
behind shows it (no coordinated omission). A share of requests (`--uncached`) asks with
``cache=no-cache``, which runs the query again (a dashboard's refresh button).

Runs: (1) the mix at the users' own pace, with p50/p95/p99 and errors for cached and
uncached requests; (2) cached requests only, at increasing rates (think time shrinking), to
find the highest rate at which p95 stays under 50 ms with no errors. The load generator is
one Python process (asyncio, uvloop) on the same 2 cores as the server, so the rates it can
offer are a floor for what the server could take; each run prints the rate it achieved.
The baseline is the same server at a low rate (100 req/s): its p50 is what one request
costs without queueing.
"""

from __future__ import annotations

import argparse
import asyncio
import collections
import json
import os
import random
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlencode

import jwt

sys.path.insert(0, str(Path(__file__).resolve().parent))
from bench_server import SECRET, free_port, start_server

TENANTS = 20
USERS = 1000
P95_TARGET_MS = 50.0
DASHBOARDS = [
    [  # sales
        {"measures": ["orders.count", "orders.revenue"], "dimensions": ["customers.region"]},
        {
            "measures": ["orders.revenue"],
            "timeDimensions": [{"dimension": "orders.order_date", "granularity": "month"}],
        },
        {"measures": ["orders.count"], "dimensions": ["orders.status"]},
        {"measures": ["orders.revenue"], "dimensions": ["products.category"]},
    ],
    [  # customers
        {"measures": ["customers.count"], "dimensions": ["customers.segment"]},
        {"measures": ["customers.count"], "dimensions": ["customers.region"]},
        {"measures": ["orders.buyers"], "dimensions": ["customers.region"]},
    ],
    [  # products
        {"measures": ["products.count"], "dimensions": ["products.category"]},
        {"measures": ["orders.quantity"], "dimensions": ["products.category"]},
        {
            "measures": ["orders.count"],
            "dimensions": ["products.category"],
            "filters": [{"member": "orders.status", "operator": "equals", "values": ["completed"]}],
        },
    ],
]


def request_bytes(query: dict, token: str, cached: bool) -> bytes:
    params = {"query": json.dumps(query, separators=(",", ":"))}
    if not cached:
        params["cache"] = "no-cache"
    path = "/cubejs-api/v1/load?" + urlencode(params)
    return f"GET {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nAuthorization: {token}\r\n\r\n".encode()


class Run:
    """One open-loop run: latencies (ms) and errors, by kind of request."""

    def __init__(self) -> None:
        self.latencies: dict[str, list[float]] = {"cached": [], "uncached": []}
        self.errors: dict[str, int] = {"cached": 0, "uncached": 0}
        self.reasons: collections.Counter[str] = collections.Counter()
        self.sent = 0

    def summary(self, kind: str) -> dict[str, float]:
        values = sorted(self.latencies[kind])
        if len(values) < 2:
            return {"n": len(values), "p50": float("nan"), "p95": float("nan"), "p99": float("nan")}
        cuts = statistics.quantiles(values, n=100)
        return {"n": len(values), "p50": cuts[49], "p95": cuts[94], "p99": cuts[98]}


async def exchange(
    reader: asyncio.StreamReader, writer: asyncio.StreamWriter, raw: bytes
) -> tuple[int, bytes]:
    """Send one request on a keep-alive connection; its status and body."""
    writer.write(raw)
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head.split(b" ", 2)[1])
    length = next(
        int(line.split(b":", 1)[1])
        for line in head.split(b"\r\n")
        if line.lower().startswith(b"content-length:")
    )
    return status, await reader.readexactly(length)


async def user(
    port: int,
    requests: dict[str, list[bytes]],
    uncached: float,
    think: float,
    until: float,
    run: Run,
) -> None:
    loop = asyncio.get_running_loop()
    rng = random.Random()
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    due = loop.time() + rng.uniform(0, think)  # users arrive spread over one think time
    try:
        while due < until:
            await asyncio.sleep(max(0.0, due - loop.time()))
            kind = "uncached" if rng.random() < uncached else "cached"
            raw = rng.choice(requests[kind])
            run.sent += 1
            try:
                status, body = await exchange(reader, writer, raw)
            except (OSError, asyncio.IncompleteReadError):
                # uvicorn closes a connection idle for 5 s (a long think): a browser
                # opens a new one and asks again, and so does this user
                writer.close()
                reader, writer = await asyncio.open_connection("127.0.0.1", port)
                try:
                    status, body = await exchange(reader, writer, raw)
                except (OSError, asyncio.IncompleteReadError, ValueError) as exc:
                    run.errors[kind] += 1
                    run.reasons[type(exc).__name__] += 1
                    return
            if status != 200 or b'"Continue wait"' in body[:40]:
                run.errors[kind] += 1
                run.reasons[f"{status} {body[:60].decode(errors='replace')}"] += 1
            else:
                run.latencies[kind].append((loop.time() - due) * 1000)
            due += rng.expovariate(1 / think)
    finally:
        writer.close()


async def open_loop(
    port: int, tokens: list[str], think: float, seconds: float, uncached: float
) -> tuple[Run, float]:
    """`USERS` users for `seconds`; the run and the request rate achieved."""
    loop = asyncio.get_running_loop()
    run = Run()
    until = loop.time() + seconds
    users = []
    for index in range(USERS):
        token = tokens[index % len(tokens)]
        queries = DASHBOARDS[index % len(DASHBOARDS)]
        requests = {
            "cached": [request_bytes(q, token, True) for q in queries],
            "uncached": [request_bytes(q, token, False) for q in queries],
        }
        users.append(user(port, requests, uncached, think, until, run))
    started = time.perf_counter()
    await asyncio.gather(*users)
    return run, run.sent / (time.perf_counter() - started)


async def warm(port: int, tokens: list[str]) -> None:
    """Every tenant's every query asked once: the cache holds what the users will ask."""
    reader, writer = await asyncio.open_connection("127.0.0.1", port)
    for token in tokens:
        for queries in DASHBOARDS:
            for query in queries:
                await exchange(reader, writer, request_bytes(query, token, True))
    writer.close()


def line(name: str, run: Run, rate: float) -> str:
    parts = [f"{name:<34}{rate:>8.0f}"]
    for kind in ("cached", "uncached"):
        s = run.summary(kind)
        if s["n"]:
            parts.append(
                f"  {kind} n={s['n']:.0f} p50 {s['p50']:.1f} p95 {s['p95']:.1f} "
                f"p99 {s['p99']:.1f} ms errors {run.errors[kind]}"
            )
    if run.reasons:
        parts.append(f"\n    errors: {dict(run.reasons.most_common(3))}")
    return "".join(parts)


async def main_async(args: argparse.Namespace, port: int) -> None:
    tokens = [
        jwt.encode({"tenant": f"t{i}", "sub": f"user{i}"}, SECRET, algorithm="HS256")
        for i in range(TENANTS)
    ]
    await warm(port, tokens)
    print(
        f"{USERS} users, {TENANTS} tenants, {len(DASHBOARDS)} dashboards; "
        f"aiser serve x{args.processes} process(es) on {os.cpu_count()} cores shared with "
        "the load generator"
    )
    print(f"{'run':<34}{'req/s':>8}  latency from when each request was due")
    base, rate = await open_loop(port, tokens, USERS / 100, 5, 0.0)
    print(line("baseline: 100 req/s, cached", base, rate))
    mix, rate = await open_loop(port, tokens, args.think, args.duration, args.uncached)
    print(line(f"think {args.think:g} s, {args.uncached:.0%} uncached", mix, rate))
    best = None
    for target in args.rates:
        run, rate = await open_loop(port, tokens, USERS / target, args.step, 0.0)
        print(line(f"cached only, offered {target} req/s", run, rate))
        summary = run.summary("cached")
        if summary["p95"] < P95_TARGET_MS and not run.errors["cached"]:
            best = rate
        else:
            break
    shown = f"{best:.0f} req/s" if best is not None else "below the lowest rate tried"
    print(f"highest rate with cached p95 < {P95_TARGET_MS:.0f} ms and no errors: {shown}")


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--think", type=float, default=3.0, help="mean think time, seconds")
    parser.add_argument("--duration", type=float, default=20.0, help="seconds of the mix run")
    parser.add_argument("--uncached", type=float, default=0.05, help="share asked no-cache")
    parser.add_argument("--step", type=float, default=5.0, help="seconds per rate step")
    parser.add_argument("--processes", type=int, default=1)
    parser.add_argument(
        "--rates",
        type=int,
        nargs="+",
        default=[500, 1000, 2000, 4000, 8000, 12000, 16000, 20000, 24000],
    )
    args = parser.parse_args()
    try:
        import uvloop

        uvloop.install()
    except ImportError:
        pass
    port = free_port()
    server = start_server(port, 1, args.processes)
    try:
        asyncio.run(main_async(args, port))
    finally:
        server.terminate()
        server.wait(timeout=30)


if __name__ == "__main__":
    main()
