"""Fixtures: a fresh Session per test, an IPython shell with the extension, a real PostgreSQL."""

from __future__ import annotations

import os
import signal
import threading
import time

import pytest

import aiser_jupyter.sessions as sessions


@pytest.fixture(autouse=True)
def fresh_session(tmp_path, monkeypatch):
    """Each test gets its own Session and its own empty ~/.aiser."""
    monkeypatch.setenv("AISER_HOME", str(tmp_path / "aiser-home"))
    monkeypatch.setattr(sessions, "_session", None)
    yield
    if sessions._session is not None:
        sessions._session.close()


@pytest.fixture
def ip():
    """A real IPython shell with ``%load_ext aiser_jupyter``, as a kernel would have."""
    from IPython.core.interactiveshell import InteractiveShell

    shell = InteractiveShell.instance()
    shell.run_line_magic("load_ext", "aiser_jupyter")
    shell.user_ns.clear()
    shell.init_user_ns()
    yield shell
    shell.run_line_magic("reset", "-f")


def run(shell, source: str):
    """Run a cell; return its value, failing the test if the cell raised."""
    result = shell.run_cell(source)
    if result.error_in_exec is not None:
        raise result.error_in_exec
    if result.error_before_exec is not None:
        raise result.error_before_exec
    return result.result


def run_failing(shell, source: str) -> BaseException:
    """Run a cell that must fail; return the error it raised."""
    result = shell.run_cell(source)
    error = result.error_in_exec or result.error_before_exec
    assert error is not None, f"cell did not fail: {source!r}"
    return error


def wait_for(check, timeout: float = 20.0):
    """`check()` again every 50 ms until it is truthy or `timeout` seconds have passed; its
    last value (for what a background thread, such as a live stream, does in its time)."""
    deadline = time.monotonic() + timeout
    while True:
        value = check()
        if value or time.monotonic() > deadline:
            return value
        time.sleep(0.05)


@pytest.fixture
def interrupt_soon():
    """Send this process SIGINT after a delay, as Jupyter's "interrupt kernel" does.

    A kernel turns SIGINT into KeyboardInterrupt; a process started in the background
    (as CI may start us) inherits SIGINT ignored or blocked, so both are undone here.
    """
    previous = signal.signal(signal.SIGINT, signal.default_int_handler)
    mask = signal.pthread_sigmask(signal.SIG_UNBLOCK, {signal.SIGINT})  # may come blocked too

    def arm(delay: float) -> None:
        threading.Timer(delay, os.kill, (os.getpid(), signal.SIGINT)).start()

    yield arm
    signal.pthread_sigmask(signal.SIG_SETMASK, mask)
    signal.signal(signal.SIGINT, previous)


@pytest.fixture(scope="module")
def browser():
    """Debian's headless Chromium, every request to another host blocked; a test module's
    pages must not have tried any (the browser tests share this)."""
    from tools.browser import offline_browser

    with offline_browser() as (context, blocked):
        yield context, blocked
        assert blocked == [], f"pages tried to reach the internet: {blocked[:5]}"


@pytest.fixture
def retail():
    """The Session with the sample retail tables and their Cube model loaded."""
    session = sessions.get_session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    return session


@pytest.fixture(scope="session")
def pg_server():
    """A real PostgreSQL server on loopback for the whole test run."""
    from tools.pgserver import PostgresServer

    with PostgresServer() as server:
        server.psql(
            """
            CREATE TABLE sales (id int PRIMARY KEY, region text, amount numeric(10,2), day date);
            INSERT INTO sales
            SELECT g, (ARRAY['North','South','East','West'])[1 + g % 4], g * 1.5,
                   DATE '2024-01-01' + g
            FROM generate_series(1, 1000) AS g;
            """
        )
        yield server


@pytest.fixture
def pg_url(pg_server) -> str:
    return pg_server.url


@pytest.fixture(scope="session")
def pg_retail(pg_server) -> str:
    """The PostgreSQL server holding the sample retail tables (loaded through ADBC); its URL."""
    from adbc_driver_postgresql import dbapi

    from aiser_jupyter.sources.sample import retail_tables

    with dbapi.connect(pg_server.url, autocommit=True) as conn, conn.cursor() as cursor:
        for name, table in retail_tables().items():
            cursor.adbc_ingest(name, table, mode="replace")
    return pg_server.url
