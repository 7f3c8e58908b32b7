"""An HTTP JSON API as a table, against a real server on loopback: pagination styles, 429
with Retry-After, 5xx retries, rate limiting, the page cache, and clear failures."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import ClassVar
from urllib.parse import parse_qs, urlsplit

import pytest

from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.sources.http_api import PAGES, HttpApi, Pagination, retry_after_seconds

ITEMS = [{"id": i, "name": f"item {i}", "price": i * 2.5} for i in range(1, 26)]
TOKEN = "s3cr3t-token-value"


class Api(BaseHTTPRequestHandler):
    """A small API. Every request is logged on the server as (time, path, query)."""

    log: ClassVar[list[tuple[float, str, dict]]] = []
    failures: ClassVar[dict[str, list[tuple[int, dict]]]] = {}
    """Replies to give before the real answer, by path: (status, headers)."""

    def do_GET(self):
        parts = urlsplit(self.path)
        query = {k: v[0] for k, v in parse_qs(parts.query).items()}
        Api.log.append((time.monotonic(), parts.path, query))
        pending = Api.failures.get(parts.path)
        if pending:
            status, headers = pending.pop(0)
            return self.reply(status, {"error": "try later"}, headers)
        if parts.path == "/private" and self.headers.get("Authorization") != f"Bearer {TOKEN}":
            return self.reply(401, {"error": "bad token"})
        if parts.path in {"/items", "/private", "/flaky", "/always-busy"}:
            page, size = int(query.get("page", 1)), int(query.get("per_page", 10))
            return self.reply(200, {"data": ITEMS[(page - 1) * size : page * size], "page": page})
        if parts.path == "/offset":
            offset, limit = int(query.get("offset", 0)), int(query.get("limit", 10))
            return self.reply(200, {"results": ITEMS[offset : offset + limit]})
        if parts.path == "/cursor":
            start = int(query.get("cursor", 0))
            end = start + 10
            cursor = str(end) if end < len(ITEMS) else None
            return self.reply(200, {"data": ITEMS[start:end], "meta": {"next": cursor}})
        if parts.path == "/linked":
            start = int(query.get("from", 0))
            headers = {}
            if start + 10 < len(ITEMS):
                headers["Link"] = f'</linked?from={start + 10}>; rel="next"'
            return self.reply(200, ITEMS[start : start + 10], headers)
        if parts.path == "/elsewhere":
            return self.reply(200, {"data": [{"id": 1}], "next": "http://localhost:9/steal"})
        if parts.path == "/mixed":
            return self.reply(200, {"data": [{"id": 1, "v": 5}, {"id": 2, "v": "five"}]})
        if parts.path == "/text":
            self.send_response(200)
            self.end_headers()
            return self.wfile.write(b"<html>not json</html>")
        return self.reply(404, {"error": "no such thing"})

    def reply(self, status: int, body, headers=None):
        data = json.dumps(body).encode()
        self.send_response(status)
        self.send_header("Content-Type", "application/json")
        for key, value in (headers or {}).items():
            self.send_header(key, value)
        self.send_header("Content-Length", str(len(data)))
        self.end_headers()
        self.wfile.write(data)

    def log_message(self, *args):
        pass


@pytest.fixture(scope="module")
def server():
    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Api)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{httpd.server_address[1]}"
    httpd.shutdown()


@pytest.fixture(autouse=True)
def clean():
    Api.log.clear()
    Api.failures.clear()
    PAGES.clear()


@pytest.fixture
def session():
    from aiser_jupyter.sessions import Session

    made = Session()
    yield made
    made.close()


def requests_to(path: str) -> list[tuple[float, str, dict]]:
    return [entry for entry in Api.log if entry[1] == path]


PAGED = Pagination("page", "page", size_param="per_page", size=10, start=1)


def test_page_numbers_into_duckdb(session, server):
    session.sources.connect_api(f"{server}/items", records="data", paginate=PAGED, progress=False)
    result = session.sql("SELECT count(*) AS n, sum(price) AS total, max(id) AS top FROM items")
    assert result.to_arrow().to_pylist() == [
        {"n": 25, "total": sum(i["price"] for i in ITEMS), "top": 25}
    ]
    # Three pages (10, 10, 5): the short third page is known to be the last.
    assert [q["page"] for _, _, q in requests_to("/items")] == ["1", "2", "3"]


def test_page_numbers_until_an_empty_page(server):
    table = HttpApi(f"{server}/items", records="data", paginate="page", progress=False).fetch()
    assert table.column("id").to_pylist() == list(range(1, 11)) + list(range(11, 26))
    assert [q["page"] for _, _, q in requests_to("/items")] == ["1", "2", "3", "4"]


def test_offsets_cursors_and_link_headers(server):
    offset = HttpApi(
        f"{server}/offset",
        records="results",
        paginate=Pagination("offset", "offset", size_param="limit", size=10),
        progress=False,
    ).fetch()
    cursor = HttpApi(
        f"{server}/cursor",
        records="data",
        paginate=Pagination("cursor", "cursor", path="meta.next"),
        progress=False,
    ).fetch()
    linked = HttpApi(f"{server}/linked", paginate="link", progress=False).fetch()
    for table in (offset, cursor, linked):
        assert table.column("id").to_pylist() == list(range(1, 26))
    assert [q.get("cursor") for _, _, q in requests_to("/cursor")] == [None, "10", "20"]
    assert [q.get("from") for _, _, q in requests_to("/linked")] == [None, "10", "20"]


def test_a_429_waits_what_retry_after_asks(server):
    Api.failures["/flaky"] = [(429, {"Retry-After": "1"})]
    api = HttpApi(f"{server}/flaky", records="data", backoff=0.01, progress=False)
    assert api.fetch().num_rows == 10
    first, second = requests_to("/flaky")
    assert second[0] - first[0] >= 0.95  # the backoff alone would have waited 0.01 s


def test_server_errors_are_retried_with_backoff_then_reported(server):
    Api.failures["/flaky"] = [(503, {}), (500, {})]
    assert HttpApi(f"{server}/flaky", records="data", backoff=0.01, progress=False).fetch()
    assert len(requests_to("/flaky")) == 3
    Api.failures["/always-busy"] = [(429, {"Retry-After": "0"})] * 10
    with pytest.raises(ConnectionFailed, match="429 Too Many Requests after 3 tries"):
        HttpApi(f"{server}/always-busy", records="data", retries=2, progress=False).fetch()
    assert len(requests_to("/always-busy")) == 3
    with pytest.raises(ConnectionFailed, match=r"404 Not Found: .*no such thing"):
        HttpApi(f"{server}/missing", progress=False).fetch()
    assert len(requests_to("/missing")) == 1  # a client error is not retried


def test_pages_are_cached_until_refreshed(server):
    api = HttpApi(f"{server}/items", records="data", paginate=PAGED, progress=False)
    api.fetch()
    assert len(requests_to("/items")) == 3
    again = HttpApi(f"{server}/items", records="data", paginate=PAGED, progress=False)
    assert again.fetch().num_rows == 25
    assert again.requests == 0 and len(requests_to("/items")) == 3
    again.fetch(refresh=True)
    assert len(requests_to("/items")) == 6
    expired = HttpApi(
        f"{server}/items", records="data", paginate=PAGED, cache_ttl=0, progress=False
    )
    expired.fetch()
    assert len(requests_to("/items")) == 9


def test_the_rate_limit_spaces_requests(server):
    HttpApi(
        f"{server}/items", records="data", paginate=PAGED, rate_limit=10, progress=False
    ).fetch()
    times = [t for t, _, _ in requests_to("/items")]
    assert len(times) == 3
    # Two gaps of 0.1 s at 10 requests a second (the server's clock, so allow some jitter);
    # unpaced, three local requests take a few milliseconds.
    assert times[-1] - times[0] >= 0.17


def test_progress_reports_pages(server):
    reports = []
    HttpApi(f"{server}/items", records="data", paginate=PAGED, progress=reports.append).fetch()
    assert [(r.pages, r.rows) for r in reports] == [(1, 10), (2, 20), (3, 25)]
    assert str(reports[-1]) == "api: 3 pages, 25 rows"


def test_credentials_work_and_never_show(session, server):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    session.sources.connect_api(
        f"{server}/private", "secret_items", records="data", headers=headers, progress=False
    )
    assert session.sql("SELECT count(*) AS n FROM secret_items").to_arrow().to_pylist() == [
        {"n": 10}
    ]
    with pytest.raises(ConnectionFailed) as caught:
        session.sources.connect_api(
            f"{server}/private?token={TOKEN}", "x", records="data", progress=False
        )
    assert "401" in str(caught.value) and TOKEN not in str(caught.value)


def test_awkward_answers(session, server):
    mixed = HttpApi(f"{server}/mixed", records="data", progress=False).fetch()
    assert mixed.column("v").to_pylist() == ["5", '"five"']  # disagreeing types kept as JSON
    with pytest.raises(ConnectionFailed, match=r"records= one of its fields \(data\)"):
        HttpApi(f"{server}/mixed", records="items.list", progress=False).fetch()
    with pytest.raises(ConnectionFailed, match="did not answer JSON"):
        HttpApi(f"{server}/text", progress=False).fetch()
    with pytest.raises(ConnectionFailed, match="Unknown pagination"):
        HttpApi(f"{server}/items", paginate="pages")
    with pytest.raises(ConnectionFailed, match="Unknown option"):
        session.sources.connect_api(f"{server}/items", record="data")
    assert session.sources.external_tables == {}


def test_retry_after_as_a_date():
    from email.utils import formatdate

    assert retry_after_seconds("3") == 3.0
    assert 8 < retry_after_seconds(formatdate(time.time() + 10, usegmt=True)) <= 10
    assert retry_after_seconds("soon") is None


def test_credentials_never_follow_a_link_to_another_server(server):
    headers = {"Authorization": f"Bearer {TOKEN}"}
    with pytest.raises(ConnectionFailed, match="next page is on another server"):
        HttpApi(f"{server}/elsewhere", paginate="link", headers=headers, progress=False).fetch()


def test_reaching_max_pages_says_so(server):
    with pytest.warns(UserWarning, match="stopped after 2 pages"):
        table = HttpApi(
            f"{server}/items", records="data", paginate=PAGED, max_pages=2, progress=False
        ).fetch()
    assert table.num_rows == 20


def test_connect_takes_an_api_url_like_any_other_source(ip, server):
    from conftest import run

    ip.user_ns.update(paged=PAGED, url=f"{server}/items")
    run(ip, "import aiser_jupyter as aiser")
    run(ip, "aiser.connect(url, name='items', records='data', paginate=paged, progress=False)")
    frame = run(ip, "%sql SELECT count(*) AS n, sum(price) AS total FROM items")
    assert frame["n"][0] == len(ITEMS)
    assert frame["total"][0] == sum(item["price"] for item in ITEMS)
