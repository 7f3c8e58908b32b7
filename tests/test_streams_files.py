"""Live tables from files that grow, folders that receive Parquet files, and an HTTP API on
loopback polled on an interval; what each should hold is written by the test itself."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aiser_jupyter.sessions as sessions
from tests.conftest import wait_for


def column(session, sql: str) -> list:
    return session.sql(sql).df.iloc[:, 0].tolist()


def test_a_growing_ndjson_file_complete_lines_only_and_a_restart(tmp_path):
    path = tmp_path / "events.ndjson"
    lines = [json.dumps({"id": i, "kind": "k" + str(i % 3)}) for i in range(1, 7)]
    path.write_text("\n".join(lines[:3]) + "\n" + lines[3][:5])  # the 4th still being written
    session = sessions.get_session()
    events: list[str] = []
    session.on_change(events.append)
    session.connect(str(path), name="logs", live=True, interval=0.05)
    ids = "SELECT id FROM logs.events ORDER BY id"
    assert column(session, ids) == [1, 2, 3]
    with path.open("a") as handle:
        handle.write(lines[3][5:] + "\n" + lines[4] + "\n")
    assert wait_for(lambda: column(session, ids) == [1, 2, 3, 4, 5])
    assert "data:logs.events" in events
    session.sources.disconnect("logs")
    with path.open("a") as handle:
        handle.write(lines[5] + "\n")
    session.connect(str(path), name="logs", live=True, interval=0.05)
    assert wait_for(lambda: column(session, ids) == [1, 2, 3, 4, 5, 6]), "resumed, not re-read"
    [row] = session.streams().to_dict("records")
    assert (row["table"], row["kind"], row["rows_applied"]) == ("logs.events", "file", 1)


def test_a_growing_csv_file(tmp_path):
    path = tmp_path / "prices.csv"
    path.write_text("sku,price\na,1.5\nb,2.5\n")
    session = sessions.get_session()
    session.connect(str(path), name="feed", live=True, interval=0.05)
    with path.open("a") as handle:
        handle.write("c,4.0\nd,")
    total = "SELECT sum(price) FROM feed.prices"
    assert wait_for(lambda: column(session, total) == [8.0])
    with path.open("a") as handle:
        handle.write("10\n")
    assert wait_for(lambda: column(session, total) == [18.0])


def test_a_folder_receiving_parquet_files(tmp_path):
    folder = tmp_path / "drops"
    folder.mkdir()

    def drop(name: str, values: list[int]) -> None:
        partial = folder / f".{name}.tmp"
        pq.write_table(pa.table({"v": values}), partial)
        partial.rename(folder / f"{name}.parquet")

    drop("001", [1, 2])
    (folder / "002.parquet").write_bytes(b"PAR1 not yet whole")  # a writer still at work
    session = sessions.get_session()
    session.connect(str(folder), name="lake", live=True, interval=0.05)
    query = "SELECT count(*), sum(v) FROM lake.drops"
    assert session.sql(query).df.iloc[0].tolist() == [2, 3]
    (folder / "002.parquet").unlink()
    drop("002", [10])
    drop("003", [100, 200])
    assert wait_for(lambda: session.sql(query).df.iloc[0].tolist() == [5, 313])


class Api:
    """A loopback JSON API whose records the test changes, and can stop and start again."""

    def __init__(self) -> None:
        self.records = [{"id": 1, "status": "open"}]
        self.port = 0
        self.server: ThreadingHTTPServer | None = None

    def start(self) -> None:
        api = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                body = json.dumps({"items": api.records}).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(body)))
                self.end_headers()
                self.wfile.write(body)

            def log_message(self, *args) -> None:
                pass

        ThreadingHTTPServer.allow_reuse_address = True
        self.server = ThreadingHTTPServer(("127.0.0.1", self.port), Handler)
        self.port = self.server.server_address[1]
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def stop(self) -> None:
        assert self.server is not None
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def api():
    server = Api()
    server.start()
    yield server
    server.stop()


def test_an_http_api_polled_on_an_interval(api):
    session = sessions.get_session()
    events: list[str] = []
    session.on_change(events.append)
    url = f"http://127.0.0.1:{api.port}/v1/tickets"
    session.connect(url, name="desk", live=True, records="items", interval=0.05, max_backoff=0.2)
    query = "SELECT id, status FROM desk.tickets ORDER BY id"
    assert session.sql(query).df.values.tolist() == [[1, "open"]]
    time.sleep(0.3)
    assert events.count("data:desk.tickets") == 1, "the first copy; unchanged records are no news"
    api.records = [{"id": 1, "status": "closed"}, {"id": 2, "status": "open"}]
    assert wait_for(lambda: session.sql(query).df.values.tolist() == [[1, "closed"], [2, "open"]])
    assert events.count("data:desk.tickets") == 2

    api.stop()
    stream = session.sources.streams.streams["desk"]
    assert wait_for(lambda: stream.state == "retrying")
    assert "127.0.0.1" in session.streams()["last_error"][0]
    api.records = [{"id": 3, "status": "new"}]
    api.start()
    assert wait_for(lambda: session.sql(query).df.values.tolist() == [[3, "new"]])
    assert wait_for(lambda: stream.state == "running")
