"""The Cube-compatible API: answers checked against hand-written SQL on the sample data, through
FastAPI's TestClient, a real uvicorn server on loopback, the official @cubejs-client/core under
node, and the ``aiser serve`` command."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from pathlib import Path

import httpx
import jwt
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aiser_jupyter.server import create_app
from aiser_jupyter.server.run import ServerFailed, ServerHandle, serve
from aiser_jupyter.sessions import Session

SECRET = "a-test-secret-of-thirty-two-bytes!"
LOAD = "/cubejs-api/v1/load"
CLIENT_DIR = Path(__file__).parent / "cubejs_client"
BY_REGION = {
    "measures": ["orders.count", "orders.revenue"],
    "dimensions": ["customers.region"],
    "filters": [{"member": "orders.status", "operator": "equals", "values": ["completed"]}],
    "order": {"customers.region": "asc"},
}
BY_REGION_SQL = """
    SELECT c.region, count(*), round(sum(o.revenue), 2)
    FROM orders o JOIN customers c USING (customer_id)
    WHERE o.status = 'completed' GROUP BY 1 ORDER BY 1"""
MONTHS = {
    "measures": ["orders.count"],
    "timeDimensions": [
        {
            "dimension": "orders.order_date",
            "granularity": "month",
            "dateRange": ["2024-01-01", "2024-03-31"],
        }
    ],
}
MONTHS_SQL = """
    SELECT strftime(date_trunc('month', order_date), '%Y-%m-%dT%H:%M:%S.000'), count(*)
    FROM orders WHERE order_date BETWEEN DATE '2024-01-01' AND DATE '2024-03-31'
    GROUP BY 1 ORDER BY 1"""


def token(secret: str = SECRET, **claims) -> str:
    return jwt.encode(claims, secret, algorithm="HS256")


def auth(**claims) -> dict[str, str]:
    return {"Authorization": token(**{"tenant": "a", **claims})}


def hand(session: Session, sql: str) -> list[tuple]:
    return [tuple(row) for row in session.sql(sql).df.itertuples(index=False)]


def region_rows(data: list[dict]) -> list[tuple]:
    return [(r["customers.region"], r["orders.count"], round(r["orders.revenue"], 2)) for r in data]


def metric(client: TestClient, name: str, **labels: str) -> float:
    text = client.get("/metrics").text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


@pytest.fixture
def client(retail):
    with TestClient(create_app(retail, secret=SECRET)) as client:
        yield client


def test_load_by_get_and_post_gives_member_keyed_rows_equal_to_hand_sql(client, retail):
    got = client.get(LOAD, params={"query": json.dumps(BY_REGION)}, headers=auth())
    assert got.status_code == 200
    body = got.json()
    assert region_rows(body["data"]) == hand(retail, BY_REGION_SQL)
    assert body["query"]["measures"] == BY_REGION["measures"]
    assert body["annotation"]["measures"]["orders.revenue"]["format"] == "currency"
    assert body["usedPreAggregations"] == {
        "orders.daily_by_region": {"preAggregationId": "orders.daily_by_region", "type": "rollup"}
    }
    assert body["lastRefreshTime"].endswith("Z")
    posted = client.post(LOAD, json={"query": BY_REGION}, headers=auth())
    assert posted.json()["data"] == body["data"]


def test_time_dimensions_come_in_cube_time_format_with_and_without_granularity(client, retail):
    body = client.get(LOAD, params={"query": json.dumps(MONTHS)}, headers=auth()).json()
    expected = hand(retail, MONTHS_SQL)
    assert [(r["orders.order_date.month"], r["orders.count"]) for r in body["data"]] == expected
    assert [r["orders.order_date"] for r in body["data"]] == [e[0] for e in expected]
    assert set(body["annotation"]["timeDimensions"]) == {
        "orders.order_date.month",
        "orders.order_date",
    }


def test_compare_date_range_needs_multi_and_answers_one_result_per_range(client, retail):
    query = {
        "measures": ["orders.count"],
        "timeDimensions": [
            {
                "dimension": "orders.order_date",
                "compareDateRange": [["2024-01-01", "2024-01-31"], ["2023-01-01", "2023-01-31"]],
            }
        ],
    }
    single = client.post(LOAD, json={"query": query}, headers=auth())
    assert single.status_code == 400
    assert "compareDateRangeQuery" in single.json()["error"]
    body = client.post(LOAD, json={"query": query, "queryType": "multi"}, headers=auth()).json()
    assert body["queryType"] == "compareDateRangeQuery"
    assert body["pivotQuery"]["dimensions"] == ["compareDateRange"]
    counts = [
        (r["data"][0]["compareDateRange"], r["data"][0]["orders.count"]) for r in body["results"]
    ]
    [(jan24,)] = hand(
        retail, "SELECT count(*) FROM orders WHERE order_date BETWEEN '2024-01-01' AND '2024-01-31'"
    )
    [(jan23,)] = hand(
        retail, "SELECT count(*) FROM orders WHERE order_date BETWEEN '2023-01-01' AND '2023-01-31'"
    )
    assert counts == [("2024-01-01 - 2024-01-31", jan24), ("2023-01-01 - 2023-01-31", jan23)]


def test_data_blending_answers_each_query_with_a_shared_time_axis(client, retail):
    customers = {
        "measures": ["customers.count"],
        "timeDimensions": [
            {
                "dimension": "customers.signup_date",
                "granularity": "month",
                "dateRange": ["2024-01-01", "2024-03-31"],
            }
        ],
    }
    body = client.post(
        LOAD, json={"query": [MONTHS, customers], "queryType": "multi"}, headers=auth()
    ).json()
    assert body["queryType"] == "blendingQuery"
    assert body["pivotQuery"]["timeDimensions"] == [{"dimension": "time", "granularity": "month"}]
    orders, signups = body["results"]
    assert [(r["time.month"], r["orders.count"]) for r in orders["data"]] == hand(
        retail, MONTHS_SQL
    )
    assert [(r["time.month"], r["customers.count"]) for r in signups["data"]] == hand(
        retail,
        """SELECT strftime(date_trunc('month', signup_date), '%Y-%m-%dT%H:%M:%S.000'), count(*)
        FROM customers WHERE signup_date BETWEEN DATE '2024-01-01' AND DATE '2024-03-31'
        GROUP BY 1 ORDER BY 1""",
    )
    mixed = client.post(
        LOAD, json={"query": [MONTHS, BY_REGION], "queryType": "multi"}, headers=auth()
    )
    assert (mixed.status_code, mixed.json()["error"]) == (
        400,
        "Data blending queries need one and the same time granularity",
    )


REFUSALS = {
    "missing": (lambda: {}, 401, "Authorization header isn't set"),
    "garbage": (lambda: {"Authorization": "not-a-token"}, 403, "Invalid token"),
    "wrong secret": (
        lambda: {"Authorization": token("another-secret-of-thirty-two-bytes", tenant="a")},
        403,
        "Invalid token",
    ),
    "expired": (
        lambda: {"Authorization": token(tenant="a", exp=int(time.time()) - 60)},
        403,
        "Invalid token: it has expired",
    ),
    "not yet valid": (
        lambda: {"Authorization": token(tenant="a", nbf=int(time.time()) + 600)},
        403,
        "Invalid token: it is not valid yet",
    ),
}


@pytest.mark.parametrize("case", REFUSALS)
def test_bad_missing_and_expired_tokens_are_refused_and_nothing_leaks(client, case):
    headers, status, message = REFUSALS[case]
    for path in (LOAD, "/cubejs-api/v1/sql", "/cubejs-api/v1/meta"):
        got = client.get(path, params={"query": json.dumps(BY_REGION)}, headers=headers())
        assert (got.status_code, got.json()) == (status, {"error": message, "type": "ApiError"})
        assert SECRET not in got.text and "orders" not in got.text


def test_bearer_tokens_and_x_cube_authorization_are_accepted(client):
    good = token(tenant="a")
    for headers in ({"Authorization": f"Bearer {good}"}, {"x-cube-authorization": good}):
        assert client.get("/cubejs-api/v1/meta", headers=headers).status_code == 200


@pytest.mark.parametrize(
    ("params", "message"),
    [
        ({}, "Query param is required"),
        ({"query": "{measures: ["}, "Unable to decode query param as JSON"),
        ({"query": '"orders.count"'}, "A query is a JSON object or a list of them, got str"),
        ({"query": json.dumps({"measures": "orders.count"})}, "'measures' must be a list"),
        (
            {"query": json.dumps({"measures": ["orders.nope"]})},
            "cube 'orders' has no member 'nope'",
        ),
        ({"query": json.dumps({"measures": ["nowhere.count"]})}, "nowhere"),
        ({"query": json.dumps({"measures": ["orders.count"], "limit": -1})}, "'limit' must be"),
    ],
)
def test_malformed_queries_and_unknown_members_are_clear_400s(client, params, message):
    got = client.get(LOAD, params=params, headers=auth())
    assert got.status_code == 400
    assert message in got.json()["error"]
    assert "Traceback" not in got.text


def test_dashboards_from_other_origins_may_call_the_api(client):
    preflight = client.options(
        LOAD,
        headers={
            "Origin": "http://dashboards.example",
            "Access-Control-Request-Method": "GET",
            "Access-Control-Request-Headers": "authorization",
        },
    )
    assert preflight.status_code == 200
    assert preflight.headers["access-control-allow-origin"] == "*"
    got = client.get("/cubejs-api/v1/meta", headers={**auth(), "Origin": "http://x.example"})
    assert got.headers["access-control-allow-origin"] == "*"


def test_a_post_body_that_is_not_json_is_a_400(client):
    got = client.post(
        LOAD, content=b"{nope", headers={**auth(), "Content-Type": "application/json"}
    )
    assert (got.status_code, got.json()["error"]) == (400, "The request body is not valid JSON")


def test_cache_hits_are_counted_and_never_cross_security_contexts(client, retail):
    params = {"query": json.dumps(BY_REGION)}
    first = client.get(LOAD, params=params, headers=auth(exp=int(time.time()) + 60))
    renewed = client.get(LOAD, params=params, headers=auth(exp=int(time.time()) + 120))
    assert renewed.content == first.content  # the very same answer, served from the cache
    assert metric(client, "aiser_result_cache_lookups_total", result="hit") == 1
    client.get(LOAD, params=params, headers=auth(tenant="b"))
    client.get(LOAD, params={**params, "cache": "no-cache"}, headers=auth())
    assert metric(client, "aiser_result_cache_lookups_total", result="hit") == 1
    assert metric(client, "aiser_queries_total", engine="duckdb", pre_aggregation="yes") == 3
    retail.load_model("examples/model/retail.yml")  # a new model: cached answers are dropped
    client.get(LOAD, params=params, headers=auth())
    assert metric(client, "aiser_queries_total", engine="duckdb", pre_aggregation="yes") == 4


def test_cache_keys_keep_sort_priority_but_not_spacing_or_key_order():
    from aiser_jupyter.server.cube import Part

    by_status = {"measures": ["orders.count"], "order": {"orders.status": "asc", "a.b": "asc"}}
    by_b = {"measures": ["orders.count"], "order": {"a.b": "asc", "orders.status": "asc"}}
    assert Part(by_status).key() != Part(by_b).key()
    reordered = json.loads(json.dumps({"order": by_status["order"], "measures": ["orders.count"]}))
    assert Part(reordered).key() == Part(by_status).key()


def test_an_unexpected_failure_is_a_bare_500(retail, monkeypatch):
    import aiser_jupyter.server.app as server_app

    def broken(session, query, context):
        raise RuntimeError("internal detail: /srv/secret/path")

    monkeypatch.setattr(server_app, "run_query", broken)
    app = create_app(retail, secret=SECRET)
    with TestClient(app, raise_server_exceptions=False) as client:
        got = client.get(LOAD, params={"query": json.dumps(BY_REGION)}, headers=auth())
    assert (got.status_code, got.json()) == (500, {"error": "Internal Server Error"})


def test_a_taken_port_is_a_clear_error(retail):
    with ServerHandle(create_app(retail, secret=SECRET), port=0).start() as first:
        second = ServerHandle(create_app(retail, secret=SECRET), port=first.port)
        with pytest.raises(ServerFailed, match=f"could not listen on 127.0.0.1:{first.port}"):
            second.start()


def test_each_tenant_sees_only_its_rows_and_members_through_the_api():
    from governance_model import NORTH, SOUTH, governed_session, rows

    gov = governed_session()
    by_status = {"measures": ["orders.count"], "dimensions": ["orders.status"]}
    hand_sql = """SELECT o.status, count(*) FROM orders o JOIN customers c USING (customer_id)
        WHERE c.region = '{}' GROUP BY 1"""
    with TestClient(create_app(gov, secret=SECRET)) as client:
        for user in (NORTH, SOUTH, NORTH):  # North again: its cached answer, not South's
            headers = {"Authorization": token(**user)}
            got = client.post(LOAD, json={"query": by_status}, headers=headers).json()
            answer = sorted((r["orders.status"], r["orders.count"]) for r in got["data"])
            assert answer == rows(gov, hand_sql.format(user["tenant"]))
        north = {"Authorization": token(**NORTH)}
        cubes = client.get("/cubejs-api/v1/meta", headers=north).json()["cubes"]
        names = {m["name"] for c in cubes for m in c["dimensions"]}
        assert "customers.region" in names and "customers.segment" not in names
        hidden = {"measures": ["customers.count"], "dimensions": ["customers.segment"]}
        refused = client.post(LOAD, json={"query": hidden}, headers=north)
        assert refused.status_code == 403
        assert "customers.segment is not visible" in refused.json()["error"]
        emails = {"dimensions": ["customers.email"], "limit": 5}
        shown = client.post(LOAD, json={"query": emails}, headers=north).json()["data"]
        real = {e for (e,) in rows(gov, "SELECT email FROM customers")}
        assert shown and not {r["customers.email"] for r in shown} & real
        sql = client.post("/cubejs-api/v1/sql", json={"query": by_status}, headers=north).json()
        assert "North" in sql["sql"]["sql"][0]


def test_without_a_secret_queries_run_as_the_sessions_own_context():
    from governance_model import NORTH, SOUTH, governed_session, rows

    gov = governed_session()
    count = {"measures": ["customers.count"]}
    hand_sql = "SELECT count(*) FROM customers WHERE region = '{}'"
    expected = {u["tenant"]: rows(gov, hand_sql.format(u["tenant"])) for u in (NORTH, SOUTH)}
    with TestClient(create_app(gov, secret=None)) as client:
        for user in (NORTH, SOUTH):  # set_context in the notebook: no stale cached answer
            gov.governance.set_context(user)
            got = client.post(LOAD, json={"query": count}).json()["data"]
            assert [(r["customers.count"],) for r in got] == expected[user["tenant"]]


def test_a_query_still_running_says_continue_wait_and_runs_once(retail):
    with TestClient(create_app(retail, secret=SECRET, continue_wait=0)) as client:
        params = {"query": json.dumps(BY_REGION)}
        answers = [client.get(LOAD, params=params, headers=auth())]
        while answers[-1].json().get("error") == "Continue wait":
            assert answers[-1].status_code == 200
            time.sleep(0.01)
            answers.append(client.get(LOAD, params=params, headers=auth()))
        assert answers[0].json() == {"error": "Continue wait"}
        assert region_rows(answers[-1].json()["data"]) == hand(retail, BY_REGION_SQL)
        assert metric(client, "aiser_continue_wait_total") >= 1
        assert metric(client, "aiser_queries_total", engine="duckdb", pre_aggregation="yes") == 1


def test_sql_endpoint_gives_sql_that_runs_to_the_same_answer(client, retail):
    got = client.get("/cubejs-api/v1/sql", params={"query": json.dumps(BY_REGION)}, headers=auth())
    body = got.json()
    assert body["sql"]["order"] == {"customers.region": "asc"}
    sql = body["sql"]["sql"][0]
    assert [(r[0], r[1], round(r[2], 2)) for r in hand(retail, sql)] == hand(retail, BY_REGION_SQL)


def test_meta_lists_cubes_views_and_members(client):
    body = client.get("/cubejs-api/v1/meta", headers=auth()).json()
    cubes = {c["name"]: c for c in body["cubes"]}
    assert set(cubes) == {"orders", "customers", "products", "sales"}
    revenue = next(m for m in cubes["orders"]["measures"] if m["name"] == "orders.revenue")
    assert (revenue["type"], revenue["aggType"], revenue["format"]) == ("number", "sum", "currency")


def test_metrics_count_requests_and_queries_per_engine(client):
    client.get(LOAD, params={"query": json.dumps(BY_REGION)}, headers=auth())
    customers = {"measures": ["customers.count"], "dimensions": ["customers.segment"]}
    client.get(LOAD, params={"query": json.dumps(customers)}, headers=auth())
    client.get(LOAD, params={"query": "{"}, headers=auth())
    assert metric(client, "aiser_queries_total", engine="duckdb", pre_aggregation="yes") == 1
    assert metric(client, "aiser_queries_total", engine="duckdb", pre_aggregation="no") == 1
    assert metric(client, "aiser_http_requests_total", endpoint=LOAD, status="200") == 2
    assert metric(client, "aiser_http_requests_total", endpoint=LOAD, status="400") == 1
    assert metric(client, "aiser_http_request_duration_seconds_count", endpoint=LOAD) == 3


def test_a_model_folder_is_served_by_a_pool_of_sessions(retail):
    app = create_app("examples/model/retail.yml", secret=None, sample=True, workers=2)
    with TestClient(app) as client:
        sessions = app.state.aiser.pool.sessions
        assert len(sessions) == 2 and sessions[0] is not sessions[1]
        params = {"query": json.dumps({**BY_REGION, "order": {"customers.region": "asc"}})}
        got = client.get(LOAD, params=params)
        assert region_rows(got.json()["data"]) == hand(retail, BY_REGION_SQL)


@pytest.fixture(scope="session")
def cubejs_client():
    """`run(app, tokens, calls)`: serve `app` with uvicorn on loopback and make `calls` with
    @cubejs-client/core under node (installed from package-lock.json once); its answers."""
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is needed to test the API with @cubejs-client/core: install nodejs")
    if not (CLIENT_DIR / "node_modules" / "@cubejs-client" / "core").is_dir():
        subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"], cwd=CLIENT_DIR, check=True, timeout=300
        )

    def run(app, tokens: dict[str, str], calls: list[dict]) -> dict:
        with ServerHandle(app, port=0).start() as server:
            config = {"apiUrl": server.api_url, "tokens": tokens, "calls": calls}
            done = subprocess.run(
                [node, str(CLIENT_DIR / "run.mjs"), json.dumps(config)],
                capture_output=True,
                text=True,
                timeout=120,
            )
        assert done.returncode == 0, done.stderr
        return json.loads(done.stdout)

    return run


def test_the_official_cube_client_reads_a_real_server(retail, cubejs_client):
    calls = [
        {"name": "region", "kind": "load", "token": "good", "query": BY_REGION},
        {"name": "months", "kind": "load", "token": "good", "query": MONTHS},
        {"name": "sql", "kind": "sql", "token": "good", "query": BY_REGION},
        {"name": "meta", "kind": "meta", "token": "good", "member": "orders.revenue"},
        {"name": "bad", "kind": "load", "token": "bad", "query": BY_REGION},
        {"name": "expired", "kind": "meta", "token": "expired"},
        {"name": "unknown", "kind": "load", "token": "good", "query": {"measures": ["orders.x"]}},
        {"name": "malformed", "kind": "load", "token": "good", "query": {"measures": "x"}},
    ]
    tokens = {"good": token(tenant="a"), "bad": "abc.def.ghi", "expired": token(exp=1)}
    # continue_wait=0: every first ask says "Continue wait", so the client's retry is tested too
    out = cubejs_client(create_app(retail, secret=SECRET, continue_wait=0), tokens, calls)
    [region] = out["region"]["rawData"]
    assert region_rows(region) == hand(retail, BY_REGION_SQL)
    assert [r["customers.region"] for r in out["region"]["tablePivot"]] == [
        "East",
        "North",
        "South",
        "West",
    ]
    months = hand(retail, MONTHS_SQL)
    assert [(p["x"], p["orders.count"]) for p in out["months"]["chartPivot"]] == months
    assert out["months"]["seriesNames"] == ["orders.count"]
    sql_rows = hand(retail, out["sql"]["sql"])
    assert [(r[0], r[1], round(r[2], 2)) for r in sql_rows] == hand(retail, BY_REGION_SQL)
    assert out["meta"] == {
        "cubes": ["orders", "customers", "products", "sales"],
        "title": "Orders Revenue",
    }
    assert out["bad"] == {"error": "Invalid token", "status": 403}
    assert out["expired"] == {"error": "Invalid token: it has expired", "status": 403}
    assert out["unknown"] == {"error": "cube 'orders' has no member 'x'", "status": 400}
    assert out["malformed"]["status"] == 400


def test_the_official_cube_client_sees_only_its_tenant(cubejs_client):
    from governance_model import NORTH, SOUTH, governed_session, rows

    gov = governed_session()
    by_region = {"measures": ["orders.count"], "dimensions": ["orders.region"]}
    hidden = {"measures": ["customers.count"], "dimensions": ["customers.segment"]}
    calls = [
        {"name": "north", "kind": "load", "token": "north", "query": by_region},
        {"name": "south", "kind": "load", "token": "south", "query": by_region},
        {"name": "hidden", "kind": "load", "token": "north", "query": hidden},
    ]
    tokens = {"north": token(**NORTH), "south": token(**SOUTH)}
    out = cubejs_client(create_app(gov, secret=SECRET), tokens, calls)
    hand_sql = """SELECT c.region, count(*) FROM orders o JOIN customers c USING (customer_id)
        WHERE c.region = '{}' GROUP BY 1"""
    for name, user in (("north", NORTH), ("south", SOUTH)):
        [data] = out[name]["rawData"]
        got = [(r["orders.region"], r["orders.count"]) for r in data]
        assert got == rows(gov, hand_sql.format(user["tenant"]))
    assert out["hidden"]["status"] == 403
    assert "customers.segment is not visible" in out["hidden"]["error"]


def test_serve_from_a_notebook_runs_in_the_background_until_stopped():
    session = Session()
    try:
        session.sources.load_sample()
        session.load_model("examples/model/retail.yml")
        handle = serve(session, port=0)
        assert handle.running and handle.url.startswith("http://127.0.0.1:")
        customers = {"measures": ["customers.count"]}
        got = httpx.get(f"{handle.api_url}/load", params={"query": json.dumps(customers)})
        assert got.json()["data"] == [
            {"customers.count": hand(session, "SELECT count(*) FROM customers")[0][0]}
        ]
        assert session.sql("SELECT 1").df.iloc[0, 0] == 1  # the notebook goes on meanwhile
        handle.stop()
        assert not handle.running
        with pytest.raises(httpx.ConnectError):
            httpx.get(f"{handle.url}/livez")
    finally:
        session.close()


def free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def test_aiser_serve_command_serves_a_model_folder_from_two_processes(retail):
    port = free_port()
    env = {**os.environ, "CUBEJS_API_SECRET": SECRET}
    command = [sys.executable, "-m", "aiser_jupyter.cli", "serve", "examples/model", "--sample"]
    process = subprocess.Popen(
        [*command, "--port", str(port), "--processes", "2"],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    try:
        url = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 60
        while True:
            try:
                httpx.get(f"{url}/livez")
                break
            except httpx.ConnectError:
                assert process.poll() is None, process.stderr.read()
                assert time.monotonic() < deadline, "aiser serve did not start"
                time.sleep(0.1)
        got = httpx.get(f"{url}{LOAD}", params={"query": json.dumps(BY_REGION)}, headers=auth())
        assert region_rows(got.json()["data"]) == hand(retail, BY_REGION_SQL)
        assert httpx.get(f"{url}{LOAD}", params={"query": "{}"}).status_code == 401
    finally:
        process.terminate()
        process.wait(timeout=30)


def test_aiser_serve_without_a_secret_refuses_to_start():
    env = {k: v for k, v in os.environ.items() if k != "CUBEJS_API_SECRET"}
    done = subprocess.run(
        [sys.executable, "-m", "aiser_jupyter.cli", "serve", "examples/model"],
        env=env,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert "No JWT secret: set the environment variable CUBEJS_API_SECRET" in done.stderr
