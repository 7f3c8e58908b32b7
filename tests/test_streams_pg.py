"""Live PostgreSQL tables through logical replication, against a real server started with
wal_level=logical: the replica is compared with the server's own SELECT after inserts,
updates (the key too), deletes and a truncate; a stream stopped or killed (a subprocess
killed with SIGKILL) resumes with nothing lost or doubled; a server that goes away is
retried, reported, and caught up with when it is back."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
import time
from pathlib import Path

import pytest

import aiser_jupyter.sessions as sessions
from aiser_jupyter.errors import ConnectionFailed, QueryError
from tests.conftest import run, wait_for

pytest.importorskip("adbc_driver_postgresql")

COLUMNS = "id, name, amount::float8 AS amount, flag"


@pytest.fixture(scope="module")
def pg():
    from tools.pgserver import PostgresServer

    with PostgresServer(logical=True) as server:
        yield server


def make_table(pg, table: str, rows: int = 50) -> None:
    pg.psql(
        f"""
        CREATE TABLE {table} (id int PRIMARY KEY, name text, amount numeric(10,2), flag bool);
        INSERT INTO {table} SELECT g, 'n' || g, g * 1.25, g % 2 = 0
        FROM generate_series(1, {rows}) AS g;
        """
    )


def server_rows(pg, table: str) -> list[tuple]:
    from adbc_driver_postgresql import dbapi

    with dbapi.connect(pg.url) as conn, conn.cursor() as cursor:
        cursor.execute(f"SELECT {COLUMNS} FROM {table} ORDER BY id")
        return cursor.fetchall()


def replica_rows(session, table: str) -> list[tuple]:
    rows = session.sql(f"SELECT {COLUMNS} FROM {table} ORDER BY id").df
    return [tuple(r) for r in rows.itertuples(index=False)]


def caught_up(pg, session, table: str, live: str) -> bool:
    expected = server_rows(pg, table)
    return wait_for(lambda: replica_rows(session, f"{live}.{table}") == expected)


def slots(pg, name: str) -> int:
    return int(pg.psql(f"SELECT count(*) FROM pg_replication_slots WHERE slot_name = '{name}'"))


def test_changes_on_the_server_reach_the_live_table(pg):
    make_table(pg, "orders")
    session = sessions.get_session()
    events: list[str] = []
    session.on_change(events.append)
    session.connect(pg.url, name="shop", live=True, tables=["orders"])
    assert replica_rows(session, "shop.orders") == server_rows(pg, "orders")
    pg.psql(
        """
        INSERT INTO orders SELECT g, 'new' || g, g, true FROM generate_series(100, 139) AS g;
        UPDATE orders SET name = 'renamed', amount = amount + 1 WHERE id % 5 = 0;
        UPDATE orders SET id = 1000 WHERE id = 7;
        DELETE FROM orders WHERE id BETWEEN 20 AND 29;
        BEGIN; INSERT INTO orders VALUES (2000, 'gone', 1, false);
        DELETE FROM orders WHERE id = 2000; COMMIT;
        """
    )
    assert caught_up(pg, session, "orders", "shop")
    assert "data:shop.orders" in events
    frame = session.streams()
    [row] = frame.to_dict("records")
    assert (row["stream"], row["table"], row["state"]) == ("shop", "shop.orders", "running")
    assert row["rows_applied"] >= 50 + 40 and row["last_error"] is None

    pg.psql("TRUNCATE orders; INSERT INTO orders VALUES (1, 'only', 2.5, true)")
    assert caught_up(pg, session, "orders", "shop")
    assert replica_rows(session, "shop.orders") == [(1, "only", 2.5, True)]

    session.sources.disconnect("shop")
    assert slots(pg, "aiser_shop") == 0, "the slot is dropped on disconnect"


def test_columns_added_and_dropped_on_the_server(pg):
    make_table(pg, "parts", rows=5)
    session = sessions.get_session()
    session.connect(pg.url, name="plant", live=True, tables=["parts"])
    pg.psql(
        """
        UPDATE parts SET name = 'before' WHERE id = 1;
        ALTER TABLE parts ADD COLUMN note text;
        INSERT INTO parts VALUES (6, 'six', 6, true, 'noted');
        UPDATE parts SET note = 'later' WHERE id = 2;
        ALTER TABLE parts DROP COLUMN flag;
        INSERT INTO parts VALUES (7, 'seven', 7, 'last');
        """
    )
    query = "SELECT id, name, amount::float8, note FROM {} ORDER BY id"
    expected = [
        tuple(None if v == "" else v for v in line.split("|"))
        for line in pg.psql(query.format("parts")).splitlines()
    ]

    def replica() -> list[tuple]:
        try:
            frame = session.sql(query.format("plant.parts")).df
        except QueryError:  # no column "note" until the stream has added it
            return []
        return [
            tuple(None if v is None or v != v else str(v).removesuffix(".0") for v in row)
            for row in frame.itertuples(index=False)
        ]

    assert wait_for(lambda: replica() == expected), (replica(), expected)
    columns = session.sources.schema("duckdb", None)
    assert "flag" not in set(columns[columns["table"] == "parts"]["column"])


def test_a_stopped_stream_resumes_where_it_was(pg, monkeypatch):
    from aiser_jupyter.sources.pg_stream import PostgresStream

    make_table(pg, "items", rows=30)
    session = sessions.get_session()
    session.connect(pg.url, name="inv", live=True, tables=["items"], keep_slot=True)
    session.sources.disconnect("inv")
    assert slots(pg, "aiser_inv") == 1, "keep_slot keeps the slot"
    pg.psql(
        """
        INSERT INTO items SELECT g, 'late', 1, false FROM generate_series(31, 40) AS g;
        UPDATE items SET flag = NOT flag WHERE id <= 5;
        DELETE FROM items WHERE id = 30;
        """
    )
    # The first slot advance after a batch fails once, as a kill between DuckDB's commit
    # and the slot's would: the batch comes again from the slot and must not apply twice.
    advance, failed = PostgresStream._advance, []

    def flaky(self, end):
        if not failed:
            failed.append(end)
            raise OSError("connection lost before the slot advanced")
        advance(self, end)

    monkeypatch.setattr(PostgresStream, "_advance", flaky)
    stream = session.sources.streams.start(pg.url, "inv", tables=["items"], keep_slot=False)
    assert stream.resumed is not None, "resumed from its position, not copied again"
    assert caught_up(pg, session, "items", "inv")
    assert wait_for(lambda: stream.retries == 1 and stream.state == "running") and failed
    [row] = session.streams().to_dict("records")
    assert row["rows_applied"] == 10 + 5 + 1, "each changed key applied once"
    session.sources.disconnect("inv")
    assert slots(pg, "aiser_inv") == 0


CHILD = """
import sys, time
import aiser_jupyter as aiser
url, name, table, then = sys.argv[1:]
aiser.connect(url, name=name, live=True, tables=[table])
print("ready", flush=True)
if then == "wait":
    time.sleep(600)
"""


def start_child(pg, database: str, name: str, table: str, then: str) -> subprocess.Popen:
    """A Python process that connects `table` live as `name` into DuckDB file `database`,
    prints "ready", then waits (``wait``) or exits."""
    script = Path(database).with_suffix(".py")
    script.write_text(textwrap.dedent(CHILD))
    return subprocess.Popen(
        [sys.executable, str(script), pg.url, name, table, then],
        env={**os.environ, "AISER_DUCKDB_DATABASE": database, "AISER_AUDIT": "off"},
        stdout=subprocess.PIPE,
        cwd=Path(__file__).parent.parent,
        text=True,
    )


def test_a_killed_process_resumes_with_nothing_lost_or_doubled(pg, tmp_path, monkeypatch):
    make_table(pg, "events", rows=20)
    replica = str(tmp_path / "replica.duckdb")
    child = start_child(pg, replica, "kill", "events", "wait")
    try:
        assert child.stdout.readline().strip() == "ready"
        for batch in range(10):  # changes while it runs, and while it is being killed
            pg.psql(
                f"INSERT INTO events VALUES ({100 + batch}, 'b{batch}', {batch}, true);"
                f"UPDATE events SET amount = amount + 1 WHERE id = {batch + 1};"
                f"DELETE FROM events WHERE id = {batch + 11};"
            )
            if batch == 5:
                child.send_signal(signal.SIGKILL)
            time.sleep(0.05)
    finally:
        child.kill()
        child.wait()
    assert slots(pg, "aiser_kill") == 1, "a killed process leaves its slot behind"
    monkeypatch.setenv("AISER_DUCKDB_DATABASE", replica)
    session = sessions.get_session()
    session.connect(pg.url, name="kill", live=True, tables=["events"])
    assert session.sources.streams.streams["kill"].resumed is not None
    assert caught_up(pg, session, "events", "kill")
    session.close()
    sessions._session = None
    assert slots(pg, "aiser_kill") == 0


def test_a_server_that_goes_away_is_retried_and_reported(pg):
    make_table(pg, "ticks", rows=10)
    session = sessions.get_session()
    session.connect(pg.url, name="feed", live=True, tables=["ticks"], max_backoff=0.5)
    stream = session.sources.streams.streams["feed"]
    pg.halt()
    try:
        assert wait_for(lambda: stream.state == "retrying" and stream.last_error)
        [row] = session.streams().to_dict("records")
        assert row["state"] == "retrying" and row["retries"] >= 1 and row["last_error"]
        assert replica_rows(session, "feed.ticks")  # the replica still answers
    finally:
        pg.resume()
    pg.psql("INSERT INTO ticks VALUES (11, 'after', 1, true); DELETE FROM ticks WHERE id = 1")
    assert caught_up(pg, session, "ticks", "feed")
    assert wait_for(lambda: stream.state == "running")
    assert session.streams()["last_error"].isna().all()


def test_magics_connect_live_and_list_streams(pg, ip, capsys):
    make_table(pg, "stock", rows=5)
    run(ip, f"%aiser connect {pg.url} --name wh --live --tables stock")
    assert "wh.stock" in capsys.readouterr().out
    frame = run(ip, "%aiser streams")
    assert list(frame["table"]) == ["wh.stock"]
    pg.psql("INSERT INTO stock VALUES (6, 'six', 6, true)")
    session = sessions.get_session()
    assert caught_up(pg, session, "stock", "wh")
    run(ip, f"%aiser connect {pg.url} --name wh --live --tables stock")  # the cell run again
    assert session.sources.streams.streams["wh"].resumed is not None, "goes on, no new copy"
    pg.psql("DELETE FROM stock WHERE id = 6")
    assert caught_up(pg, session, "stock", "wh")
    run(ip, "%aiser disconnect wh")
    assert session.streams().empty


def test_a_server_without_logical_wal_says_so(pg_server):
    with pytest.raises(ConnectionFailed, match="wal_level=logical"):
        sessions.get_session().connect(pg_server.url, name="nolog", live=True)


def test_a_process_that_exits_drops_its_slot(pg, tmp_path):
    make_table(pg, "visits", rows=3)
    child = start_child(pg, str(tmp_path / "replica.duckdb"), "exits", "visits", "exit")
    assert child.stdout.readline().strip() == "ready"
    assert child.wait(timeout=30) == 0
    assert slots(pg, "aiser_exits") == 0, "dropped when the interpreter exited"


def test_a_name_that_is_the_duckdb_files_own_is_refused(pg, tmp_path, monkeypatch):
    monkeypatch.setenv("AISER_DUCKDB_DATABASE", str(tmp_path / "shop.duckdb"))
    with pytest.raises(ConnectionFailed, match="ambiguous"):
        sessions.get_session().connect(pg.url, name="shop", live=True)
