"""Serving at scale: the cached answer's fast path, tokens verified once, answers dropped when
a table they read changes (in-process, through FastAPI's TestClient)."""

from __future__ import annotations

import json
import time

import jwt
import pytest
from fastapi.testclient import TestClient
from prometheus_client.parser import text_string_to_metric_families

from aiser_jupyter.server import create_app
from aiser_jupyter.server.auth import Verifier
from aiser_jupyter.server.cube import ApiError

SECRET = "a-test-secret-of-thirty-two-bytes!"
LOAD = "/cubejs-api/v1/load"
ORDERS = {"measures": ["orders.count"], "dimensions": ["orders.region"]}
"""A query no rollup answers: a change to its rows shows at once."""
CUSTOMERS = {"measures": ["customers.count"]}


def token(**claims) -> str:
    return jwt.encode({"tenant": "a", **claims}, SECRET, algorithm="HS256")


def metric(client: TestClient, name: str, **labels: str) -> float:
    for family in text_string_to_metric_families(client.get("/metrics").text):
        for sample in family.samples:
            if sample.name == name and all(sample.labels.get(k) == v for k, v in labels.items()):
                return sample.value
    return 0.0


def queries_run(client: TestClient) -> float:
    return sum(
        metric(client, "aiser_queries_total", engine="duckdb", pre_aggregation=pre)
        for pre in ("yes", "no")
    )


def without_date(headers) -> list[tuple[str, str]]:
    """The headers in their order, less the date a real server adds."""
    return [(k, v) for k, v in headers.multi_items() if k != "date"]


@pytest.fixture
def client(retail):
    with TestClient(create_app(retail, secret=SECRET)) as client:
        yield client


def test_a_cached_answer_from_the_fast_path_is_the_full_paths_answer(client):
    """Same bytes, headers (CORS too) and counts, whichever path answers."""
    params = {"query": json.dumps(ORDERS)}
    headers = {"Authorization": token()}
    first = client.get(LOAD, params=params, headers=headers)  # FastAPI: parses, runs, learns
    again = client.get(LOAD, params=params, headers=headers)  # the fast path
    assert again.content == first.content
    assert without_date(again.headers) == without_date(first.headers)
    assert metric(client, "aiser_result_cache_lookups_total", result="hit") == 1
    assert metric(client, "aiser_http_requests_total", endpoint=LOAD, status="200") == 2
    assert metric(client, "aiser_http_request_duration_seconds_count", endpoint=LOAD) == 2
    # a dashboard in a browser (an Origin): the CORS headers the middleware writes
    browser = {**headers, "Origin": "http://x.example"}
    full = client.get(LOAD, params={"query": json.dumps(CUSTOMERS)}, headers=browser)
    fast = client.get(LOAD, params={"query": json.dumps(CUSTOMERS)}, headers=browser)
    assert fast.content == full.content
    assert without_date(fast.headers) == without_date(full.headers)
    assert fast.headers["access-control-allow-origin"] == "*"
    # the same query string from another tenant is not the first tenant's answer
    other = client.get(LOAD, params=params, headers={"Authorization": token(tenant="b")})
    assert other.status_code == 200
    assert metric(client, "aiser_result_cache_lookups_total", result="hit") == 2
    assert queries_run(client) == 3


def test_a_token_verified_before_is_still_refused_once_it_expires(client):
    app_server = client.app.state.aiser
    now = time.time()
    app_server.verifier.clock = lambda: now
    params = {"query": json.dumps(ORDERS)}
    headers = {"Authorization": token(exp=int(now) + 30)}
    assert client.get(LOAD, params=params, headers=headers).status_code == 200
    assert client.get(LOAD, params=params, headers=headers).status_code == 200  # fast path
    app_server.verifier.clock = lambda: now + 31
    for _ in range(2):
        late = client.get(LOAD, params=params, headers=headers)
        assert (late.status_code, late.json()) == (
            403,
            {"error": "Invalid token: it has expired", "type": "ApiError"},
        )


def test_a_forged_token_is_refused_after_the_real_one_was_accepted(client):
    params = {"query": json.dumps(ORDERS)}
    real = token()
    assert client.get(LOAD, params=params, headers={"Authorization": real}).status_code == 200
    header, payload, _ = real.split(".")
    forged = jwt.encode({"tenant": "a"}, "another-secret-of-thirty-two-bytes!", algorithm="HS256")
    for bad in (f"{header}.{payload}.{forged.split('.')[2]}", f"{header}.{payload}."):
        got = client.get(LOAD, params=params, headers={"Authorization": bad})
        assert (got.status_code, got.json()["error"]) == (403, "Invalid token")


def test_verified_tokens_are_kept_least_recently_used_first_out():
    verifier = Verifier(SECRET, cache_size=2)
    first, second, third = (token(user=name) for name in ("x", "y", "z"))
    assert verifier.known(first) is None  # never verified: the caller must verify it
    for each in (first, second, first, third):
        verifier.verify(each)
    assert verifier.known(first) is not None and verifier.known(third) is not None
    assert verifier.known(second) is None  # the least recently used went
    assert verifier.verify(f"Bearer {second}").context.value("user") == "y"
    with pytest.raises(ApiError, match="Authorization header isn't set"):
        verifier.verify(" ")


@pytest.fixture
def own():
    """A Session of this test's own: its rows change."""
    from aiser_jupyter.sessions import Session

    session = Session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    yield session
    session.close()


def test_a_change_to_a_table_drops_the_answers_that_read_it_and_only_those(own):
    headers = {"Authorization": token()}
    orders = {"query": json.dumps(ORDERS)}
    customers = {"query": json.dumps(CUSTOMERS)}
    with TestClient(create_app(own, secret=SECRET)) as client:
        before = client.get(LOAD, params=orders, headers=headers).json()
        assert "usedPreAggregations" not in before
        client.get(LOAD, params=customers, headers=headers)
        client.get(LOAD, params=orders, headers=headers)
        assert queries_run(client) == 2
        own.sql("INSERT INTO orders SELECT * FROM orders LIMIT 3")
        own.changed("data:orders")  # what a write through Session.sql or a stream announces
        after = client.get(LOAD, params=orders, headers=headers).json()["data"]
        client.get(LOAD, params=customers, headers=headers)  # customers: still cached
        assert queries_run(client) == 3
    counts = [sum(r["orders.count"] for r in data) for data in (before["data"], after)]
    [(total,)] = own.sql("SELECT count(*) FROM orders").df.itertuples(index=False)
    assert counts == [total - 3, total]
