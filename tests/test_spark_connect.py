"""Spark Connect (``sc://``): a real Connect server (pyspark's own, started with spark-submit
on loopback) and the engine as its gRPC client.

Opt-in (``AISER_TEST_SPARK_CONNECT=1``): a second JVM costs 30-70 s on a busy two-core
machine, more than the whole suite's budget for Spark.
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiser_jupyter.errors import QueryError, QueryInterrupted, QueryTimeout, UnsafeSQLError

if not os.environ.get("AISER_TEST_SPARK_CONNECT"):
    pytest.skip("set AISER_TEST_SPARK_CONNECT=1 to run Spark Connect", allow_module_level=True)
pyspark = pytest.importorskip("pyspark")
pytest.importorskip("grpc", reason="Spark Connect needs pyspark[connect]")

from aiser_jupyter.engines.spark import SparkEngine  # noqa: E402

LONG_QUERY = "SELECT sum(id % 7) AS s FROM range(0, 1000000000000, 1, 2)"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@pytest.fixture(scope="module")
def connect_url(tmp_path_factory):
    home = Path(pyspark.__file__).parent
    port = free_port()
    folder = tmp_path_factory.mktemp("connect")
    command = [
        str(home / "bin" / "spark-submit"),
        "--master", "local[2]",
        "--conf", "spark.ui.enabled=false",
        "--conf", "spark.sql.shuffle.partitions=2",
        "--conf", f"spark.connect.grpc.binding.port={port}",
        "--conf", "spark.connect.grpc.binding.address=127.0.0.1",
        "--class", "org.apache.spark.sql.connect.service.SparkConnectServer",
        "spark-internal",
    ]  # fmt: skip
    env = {**os.environ, "SPARK_HOME": str(home), "SPARK_LOCAL_IP": "127.0.0.1"}
    env["PYSPARK_PYTHON"] = sys.executable
    log = open(folder / "server.log", "wb")  # noqa: SIM115 - closed at teardown
    server = subprocess.Popen(
        command, cwd=folder, env=env, stdout=log, stderr=log, start_new_session=True
    )
    deadline = time.monotonic() + 90
    while time.monotonic() < deadline:
        if server.poll() is not None:
            pytest.fail(f"the Connect server exited: {(folder / 'server.log').read_text()[-2000:]}")
        with socket.socket() as probe:
            if probe.connect_ex(("127.0.0.1", port)) == 0:
                break
        time.sleep(0.2)
    else:
        pytest.fail("the Connect server did not open its port within 90 s")
    yield f"sc://127.0.0.1:{port}"
    os.killpg(server.pid, signal.SIGTERM)
    try:
        server.wait(30)
    except subprocess.TimeoutExpired:
        os.killpg(server.pid, signal.SIGKILL)
        server.wait()
    log.close()


@pytest.fixture(scope="module")
def remote(connect_url):
    engine = SparkEngine(connect_url, progress=False)
    yield engine
    engine.close()


def test_queries_files_and_arrow_over_spark_connect(remote, tmp_path):
    table = remote.execute("SELECT id * 2 AS d FROM range(10) WHERE id >= :low", {"low": 8})
    assert table.to_pylist() == [{"d": 16}, {"d": 18}]
    pq.write_table(pa.table({"k": ["a", "b", "a"], "v": [1, 2, 3]}), tmp_path / "kv.parquet")
    remote.read("kv", str(tmp_path / "kv.parquet"))
    remote.register("extra", pa.table({"k": ["a"], "w": [10]}))
    joined = remote.execute(
        "SELECT kv.k, sum(v) + max(w) AS s FROM kv JOIN extra ON kv.k = extra.k GROUP BY kv.k"
    )
    assert joined.to_pylist() == [{"k": "a", "s": 14}]
    assert {"schema": "", "table": "extra", "column": "w", "type": "bigint"} in (
        remote.columns().to_pylist()
    )
    with pytest.raises(QueryError, match="TABLE_OR_VIEW_NOT_FOUND") as caught:
        remote.execute("SELECT * FROM nowhere")
    assert "\n" not in str(caught.value)


def test_interrupt_and_progress_over_spark_connect(connect_url, interrupt_soon):
    reports = []
    watched = SparkEngine(connect_url, progress=reports.append)
    try:
        interrupt_soon(3)
        with pytest.raises(QueryInterrupted):
            watched.execute(LONG_QUERY)
        assert reports and reports[-1].tasks >= 2 and reports[-1].seconds > 0
        assert watched.execute("SELECT 1 AS one").to_pylist() == [{"one": 1}]
    finally:
        watched.close()


def test_read_only_over_spark_connect(remote):
    with pytest.raises(QueryTimeout):
        remote.execute_read_only(LONG_QUERY, limit=5, timeout=2)
    with pytest.raises(UnsafeSQLError):
        remote.execute_read_only("DROP VIEW kv", limit=5, timeout=10)
    assert remote.execute_read_only("SELECT id FROM range(20)", limit=4, timeout=30).num_rows == 4
