"""Two real ``aiser serve`` processes sharing one Redis (started on loopback) and one rollup
folder: rollups are built once, an answer is computed once between them, a query in flight
in one is not run again by the other, a change announced by any process reaches both, and
Redis going away mid-run leaves them answering from their own caches, with a warning and
no error."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path

import httpx
import jwt
import pytest
from prometheus_client.parser import text_string_to_metric_families

from tools.redisserver import RedisServer

ROOT = Path(__file__).resolve().parent.parent
SECRET = "a-test-secret-of-thirty-two-bytes!"
LOAD = "/cubejs-api/v1/load"
HEADERS = {"Authorization": jwt.encode({"tenant": "a"}, SECRET, algorithm="HS256")}
BY_REGION = {
    "measures": ["orders.count"],
    "dimensions": ["customers.region"],
    "order": {"customers.region": "asc"},
}
BY_REGION_SQL = """SELECT c.region, count(*) FROM orders o JOIN customers c USING (customer_id)
    GROUP BY 1 ORDER BY 1"""
PAUSE_MS = 1500
PAUSES = f"""
cubes:
  - name: pauses
    sql: SELECT 1 AS id, sleep_ms({PAUSE_MS}) IS NULL AS waited
    measures:
      - name: waited
        type: count
        filters:
          - sql: "{{CUBE}}.waited"
    dimensions:
      - name: id
        sql: id
        type: number
        primary_key: true
"""
"""A cube whose every query takes 1.5 s in DuckDB (``sleep_ms``): deterministically slow."""


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


class Serve:
    """One ``aiser serve`` process; its stderr kept in a file."""

    def __init__(self, model: Path, cache: str, log: Path, rollups: Path):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.log = log
        self.rollups = rollups
        command = [sys.executable, "-m", "aiser_jupyter.cli", "serve", str(model), "--sample"]
        command += ["--port", str(self.port), "--cache", cache, "--continue-wait", "10"]
        env = {**os.environ, "CUBEJS_API_SECRET": SECRET}
        env["AISER_PREAGGREGATION_SHARED"] = str(rollups)
        with log.open("w") as err:
            self.process = subprocess.Popen(
                command, cwd=ROOT, env=env, stdout=subprocess.DEVNULL, stderr=err
            )

    def wait_ready(self) -> None:
        deadline = time.monotonic() + 90
        while True:
            try:
                httpx.get(f"{self.url}/livez")
                return
            except httpx.ConnectError:
                assert self.process.poll() is None, self.log.read_text()
                assert time.monotonic() < deadline, "aiser serve did not start"
                time.sleep(0.1)

    def load(self, query: dict) -> httpx.Response:
        params = {"query": json.dumps(query)}
        return httpx.get(f"{self.url}{LOAD}", params=params, headers=HEADERS, timeout=30)

    def metric(self, name: str, **labels: str) -> float:
        text = httpx.get(f"{self.url}/metrics").text
        total = 0.0
        for family in text_string_to_metric_families(text):
            for sample in family.samples:
                wanted = all(sample.labels.get(k) == v for k, v in labels.items())
                if sample.name == name and wanted:
                    total += sample.value
        return total

    def runs(self) -> float:
        return self.metric("aiser_queries_total")

    def stop(self) -> None:
        self.process.terminate()
        self.process.wait(timeout=30)


@pytest.fixture(scope="module")
def redis_server():
    with RedisServer() as server:
        yield server


@pytest.fixture(scope="module")
def pair(redis_server):
    """Two server processes of one model (the retail sample and the slow cube), one Redis."""
    folder = Path(tempfile.mkdtemp(prefix="aiser-serve-"))
    shutil.copy(ROOT / "examples/model/retail.yml", folder)
    (folder / "pauses.yml").write_text(PAUSES)
    rollups = folder / "rollups"
    servers = [Serve(folder, redis_server.url, folder / f"err{i}.log", rollups) for i in (1, 2)]
    try:
        for server in servers:
            server.wait_ready()
        yield servers
    finally:
        for server in servers:
            server.stop()
        shutil.rmtree(folder, ignore_errors=True)


def by_region(retail) -> list[list]:
    return [list(row) for row in retail.sql(BY_REGION_SQL).df.itertuples(index=False)]


def rows(response: httpx.Response) -> list[list]:
    return [[r["customers.region"], r["orders.count"]] for r in response.json()["data"]]


def test_an_answer_computed_by_one_process_is_a_cache_hit_in_the_other(pair, retail):
    first, second = pair
    # both built their rollups as they started, into one folder: each rollup once
    built = sorted(p.name.split("-")[0] for p in first.rollups.glob("*.parquet"))
    assert built == ["orders__daily_by_region", "products__copy"]
    answered = first.load(BY_REGION)
    assert rows(answered) == by_region(retail)
    again = second.load(BY_REGION)
    assert again.content == answered.content  # the very bytes the first process made
    assert (first.runs(), second.runs()) == (1, 0)
    assert second.metric("aiser_result_cache_lookups_total", result="hit") == 1
    assert second.metric("aiser_shared_cache_lookups_total", result="hit") == 1


def test_a_query_in_flight_in_one_process_is_not_run_again_by_the_other(pair, redis_server):
    import redis

    first, second = pair
    query = {"measures": ["pauses.waited"]}
    before = (first.runs(), second.runs())
    answers: list[httpx.Response] = []
    asking = threading.Thread(target=lambda: answers.append(first.load(query)))
    asking.start()
    client = redis.Redis.from_url(redis_server.url)
    deadline = time.monotonic() + 10
    while not any(client.scan_iter(match="aiser:*:lock:*")):  # the first process runs it
        assert time.monotonic() < deadline, "the first process never claimed the query"
        time.sleep(0.005)
    waited = second.load(query)  # while the first still runs it: joins that run
    asking.join()
    assert answers[0].json()["data"] == waited.json()["data"] == [{"pauses.waited": 1}]
    assert (first.runs() - before[0], second.runs() - before[1]) == (1, 0)
    assert second.metric("aiser_shared_waits_total") == 1


def test_a_change_announced_by_any_process_drops_the_answers_of_every_process(
    pair, redis_server, retail
):
    import redis

    first, second = pair
    for server in pair:
        server.load(BY_REGION)  # cached everywhere by now
    runs = first.runs() + second.runs()
    client = redis.Redis.from_url(redis_server.url)
    # what a process does when its Session says changed("data:orders")
    prefix = next(client.scan_iter(match="aiser:*:answer:*")).decode().split(":answer:")[0]
    client.hset(f"{prefix}:versions", "orders", "v2")
    client.publish(f"{prefix}:changed", "orders\x1fv2")
    deadline = time.monotonic() + 10
    while first.runs() + second.runs() == runs:  # both dropped it: one of them runs it again
        assert time.monotonic() < deadline, "the change never reached the servers"
        assert rows(second.load(BY_REGION)) == by_region(retail)
        time.sleep(0.05)
    assert rows(first.load(BY_REGION)) == by_region(retail)
    assert first.runs() + second.runs() == runs + 1


def test_redis_going_away_mid_run_leaves_each_process_answering_alone(pair, redis_server, retail):
    first, second = pair
    customers = {"measures": ["customers.count"]}
    [(count,)] = retail.sql("SELECT count(*) FROM customers").df.itertuples(index=False)
    redis_server.stop()
    try:
        for server in (first, second, first, second):
            got = server.load(customers)
            assert got.status_code == 200
            assert got.json()["data"] == [{"customers.count": count}]
            assert rows(server.load(BY_REGION)) == by_region(retail)
        for server in pair:
            assert server.metric("aiser_shared_cache_errors_total") >= 1
            assert "shared cache redis://127.0.0.1" in server.log.read_text()
            assert "unreachable" in server.log.read_text()
            assert server.metric("aiser_http_requests_total", status="500") == 0
    finally:
        redis_server.start()
