"""Alerts against real receivers on loopback: a webhook (an HTTP server here) and an SMTP
server (aiosmtpd, with a login); fired once, not once per check; a quiet period; retries of
an unreachable webhook; secrets nowhere; ``aiser alerts run`` in a subprocess."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import textwrap
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

import aiser_jupyter as aiser
from aiser_jupyter.alerts.condition import Condition, ConditionError
from tools.browser import free_port

TOKEN = "s3cr3t-hook-token-0123456789"
SMTP_PASSWORD = "smtp-pa55word-xyz"
ROOT = Path(__file__).resolve().parent.parent


class Receiver:
    """A webhook receiver on loopback: it keeps every JSON body POSTed to it."""

    def __init__(self, port: int = 0):
        self.bodies: list[dict] = []
        self.paths: list[str] = []
        received = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                length = int(self.headers["Content-Length"])
                received.bodies.append(json.loads(self.rfile.read(length)))
                received.paths.append(self.path)
                self.send_response(204)
                self.end_headers()

            def log_message(self, *args: object) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", port), Handler)
        self.port = self.server.server_address[1]
        self.url = f"http://127.0.0.1:{self.port}/hooks/{TOKEN}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def hook():
    receiver = Receiver()
    yield receiver
    receiver.close()


@pytest.fixture
def smtp(monkeypatch):
    """A local SMTP server that wants a login; the settings point at it."""
    from aiosmtpd.controller import Controller
    from aiosmtpd.smtp import AuthResult

    class Inbox:
        def __init__(self) -> None:
            self.messages: list = []

        async def handle_DATA(self, server, session, envelope):
            self.messages.append(envelope)
            return "250 OK"

    def authenticate(server, session, envelope, mechanism, auth_data):
        ok = auth_data.login == b"alerts" and auth_data.password == SMTP_PASSWORD.encode()
        return AuthResult(success=ok)

    inbox = Inbox()
    controller = Controller(
        inbox,
        hostname="127.0.0.1",
        port=free_port(),
        authenticator=authenticate,
        auth_require_tls=False,
    )
    controller.start()
    for name, value in {
        "HOST": "127.0.0.1",
        "PORT": str(controller.port),
        "USER": "alerts",
        "PASSWORD": SMTP_PASSWORD,
        "FROM": "aiser@example.test",
    }.items():
        monkeypatch.setenv(f"AISER_SMTP_{name}", value)
    yield inbox
    controller.stop()


def wait_until(predicate, timeout: float = 10.0) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, "timed out waiting"
        time.sleep(0.02)


def stored_bytes() -> bytes:
    """Everything the alert state database holds on disk (with its WAL)."""
    home = Path(os.environ["AISER_HOME"])
    return b"".join(p.read_bytes() for p in home.glob("alerts.db*"))


def test_an_alert_fires_once_to_a_webhook_and_an_email_not_once_per_check(hook, smtp):
    session = aiser.session()
    session.sql("CREATE TABLE orders (id INTEGER, amount DOUBLE)")
    session.sql("INSERT INTO orders VALUES (1, 40), (2, 30)")
    alert = aiser.alert(
        "big_total",
        "SELECT sum(amount) FROM orders",
        "value > 100",
        notify=[f"webhook:{hook.url}", "email:ops@example.test"],
    )
    assert alert.check().status == "clear"  # 70
    session.sql("INSERT INTO orders VALUES (3, 50)")  # 120: the change fires it
    wait_until(lambda: len(hook.bodies) == 1 and len(smtp.messages) == 1)
    for _ in range(3):
        assert alert.check().status == "holds"  # still true: no second firing
    session.sql("INSERT INTO orders VALUES (4, 1)")
    session.live.get("alert:big_total").wait()
    assert len(hook.bodies) == 1 and len(smtp.messages) == 1

    body = hook.bodies[0]
    assert body["alert"] == "big_total" and body["value"] == 40 + 30 + 50
    assert body["previous"] == 70 and body["change"] == pytest.approx(50 / 70)
    assert hook.paths == [f"/hooks/{TOKEN}"]
    mail = smtp.messages[0]
    assert mail.rcpt_tos == ["ops@example.test"] and mail.mail_from == "aiser@example.test"
    assert b"big_total" in mail.content

    # Armed again once false, and fires again when true again.
    session.sql("DELETE FROM orders WHERE id >= 3")
    session.live.get("alert:big_total").wait()
    session.sql("INSERT INTO orders VALUES (5, 500)")
    wait_until(lambda: len(hook.bodies) == 2)
    assert hook.bodies[1]["value"] == 570

    audited = session.governance.audit_log.frame()
    fired = audited[audited["kind"] == "alert"]
    assert list(fired["outcome"]) == ["fired", "fired"]
    shown = repr(alert) + repr(session.alerts.frame().to_dict()) + repr(audited.to_dict())
    for secret in (TOKEN, SMTP_PASSWORD):
        assert secret not in shown and secret.encode() not in stored_bytes()


def test_a_quiet_period_holds_back_a_second_firing(hook):
    session = aiser.session()
    session.sql("CREATE TABLE temps AS SELECT 10 AS celsius")
    alert = aiser.alert(
        "hot",
        "SELECT max(celsius) FROM temps",
        "value >= 30",
        notify=f"webhook:{hook.url}",
        quiet="1h",
        on_change=False,
    )
    session.sql("UPDATE temps SET celsius = 35")
    assert alert.check().status == "fired"
    session.sql("UPDATE temps SET celsius = 20")
    assert alert.check().status == "clear"
    session.sql("UPDATE temps SET celsius = 40")
    assert alert.check().status == "quiet"
    assert alert.check().status == "holds"
    assert [b["value"] for b in hook.bodies] == [35]


def test_an_unreachable_webhook_is_reported_and_retried_without_losing_the_firing():
    port = free_port()  # nothing listens there yet
    session = aiser.session()
    session.sql("CREATE TABLE stock AS SELECT 3 AS units")
    alert = aiser.alert(
        "low_stock",
        "SELECT min(units) FROM stock",
        "value < 5",
        notify=f"webhook:http://127.0.0.1:{port}/hooks/{TOKEN}",
        on_change=False,
    )
    outcome = alert.check()
    assert outcome.status == "fired" and outcome.delivered == []
    assert f"webhook:http://127.0.0.1:{port}/…" in outcome.failed[0]
    assert "unreachable" in outcome.failed[0]
    waiting = session.alerts.deliveries("low_stock")
    assert waiting["sent_at"].isna().all() and list(waiting["attempts"]) == [1]
    assert TOKEN not in repr(outcome) + repr(waiting.to_dict())

    receiver = Receiver(port)
    try:
        session.alerts.retry(now=True)  # (or the backoff timer's retry, whichever is first)
        wait_until(lambda: len(receiver.bodies) == 1)
        assert session.alerts.deliveries("low_stock")["sent_at"].notna().all()
        assert alert.check().status == "holds"  # the firing was kept, not made again
        assert session.alerts.retry(now=True) == 0
        assert [b["value"] for b in receiver.bodies] == [3]
    finally:
        receiver.close()
    assert TOKEN.encode() not in stored_bytes()


@pytest.mark.parametrize(
    ("condition", "value", "previous", "expected"),
    [
        ("value > 100", 101, None, True),
        ("value > 100", 100, None, False),
        ("change < -0.2", 70, 100, True),  # -30 %
        ("change < -0.2", 90, 100, False),  # -10 %
        ("change < -0.2", 70, None, False),  # no previous: change is NULL, not true
        ("abs(change) >= 0.5 AND previous IS NOT NULL", 150, 100, True),
        ("value BETWEEN 10 AND 20 OR value IN (99, 100)", 100, None, True),
        ("NOT (value = previous)", 5, 5, False),
        ("value - previous > 10", 25, 10, True),
        ("value = 'down'", "down", None, True),
    ],
)
def test_conditions_evaluate_as_sql_would(condition, value, previous, expected):
    change = None if previous in (None, 0) else (value - previous) / abs(previous)
    holds = Condition(condition).holds(value=value, previous=previous, change=change)
    assert holds is expected


@pytest.mark.parametrize(
    ("condition", "says"),
    [
        ("price > 100", "unknown name 'price'"),
        ("value > 1; DROP TABLE orders", "cannot read the condition"),
        ("length(value) > 3", "may call abs() only"),
        ("value > (SELECT 1)", "not allowed"),
        ("__import__('os') > 1", "may call abs() only"),
        ("", "empty condition"),
    ],
)
def test_a_bad_condition_is_a_clear_error(condition, says):
    with pytest.raises(ConditionError) as error:
        aiser.alert("bad", "SELECT 1", condition)
    assert says in str(error.value)


def test_an_alert_fires_on_an_anomaly_found_by_insights(hook):
    session = aiser.session()
    series = (
        "CREATE OR REPLACE TABLE visits AS SELECT DATE '2024-01-01' + i::INT AS day,"
        " 100 + (i * 37 % 11) + CASE WHEN i = 40 THEN {spike} ELSE 0 END AS n FROM range(60) t(i)"
    )
    session.sql(series.format(spike=0))
    alert = aiser.alert(
        "odd_day",
        "SELECT day, n FROM visits ORDER BY day",
        "anomaly",
        notify=f"webhook:{hook.url}",
        on_change=False,
    )
    assert alert.check().status == "clear"
    session.sql(series.format(spike=400))
    assert alert.check().status == "fired"
    assert "2024-02-10" in hook.bodies[0]["details"][0]


def orders_model(tmp_path, every: str = "") -> Path:
    """A CSV of 3 orders, a Cube model over it, and alerts.yml beside it (``${ORDERS_HOOK}``)."""
    (tmp_path / "orders.csv").write_text("id,amount\n1,10\n2,20\n3,30\n")
    model = tmp_path / "model"
    model.mkdir()
    (model / "orders.yml").write_text(
        textwrap.dedent(
            """
            cubes:
              - name: orders
                sql_table: orders
                measures:
                  - {name: count, type: count}
                  - {name: amount, sql: amount, type: sum}
            """
        )
    )
    (model / "alerts.yml").write_text(
        textwrap.dedent(
            """
            alerts:
              - name: many_orders
                source: orders.count
                condition: value >= 3
                notify: ["webhook:${ORDERS_HOOK}"]
            """
        )
        + (f"    every: {every}\n" if every else "")
    )
    return model


def test_aiser_alerts_run_in_a_subprocess_fires(hook, tmp_path):
    model = orders_model(tmp_path)
    env = {**os.environ, "ORDERS_HOOK": hook.url, "AISER_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "aiser_jupyter.cli", "alerts", "run", str(model)]
    command += ["--connection", str(tmp_path / "orders.csv"), "--once"]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert done.returncode == 0, done.stderr
    assert "many_orders: fired (value 3.0" in done.stdout
    assert [b["value"] for b in hook.bodies] == [3]
    assert TOKEN not in done.stdout + done.stderr
    again = subprocess.run(command, env=env, capture_output=True, text=True, timeout=60, cwd=ROOT)
    assert "many_orders: holds" in again.stdout  # state kept in SQLite across runs
    assert len(hook.bodies) == 1


def test_alert_state_is_encrypted_at_rest_when_a_key_is_set(monkeypatch):
    pytest.importorskip("sqlcipher3")
    monkeypatch.setenv("AISER_ENCRYPTION_KEY", "correct horse battery staple 42")
    session = aiser.session()
    session.sql("CREATE TABLE t AS SELECT 7 AS n")
    assert aiser.alert("seven", "SELECT n FROM t", "value = 7", on_change=False).check().fired
    session.alerts.close()
    data = (Path(os.environ["AISER_HOME"]) / "alerts.db").read_bytes()
    assert not data.startswith(b"SQLite format 3") and b"seven" not in data


def test_the_alert_magic_adds_checks_and_lists(ip):
    from tests.conftest import run

    aiser.session().sql("CREATE TABLE q AS SELECT 2 AS depth")
    run(ip, "%aiser alert add deep 'SELECT depth FROM q' 'value > 1' --quiet 1h")
    (outcome,) = run(ip, "%aiser alert check deep")
    assert outcome.fired and outcome.value == 2
    listed = run(ip, "%aiser alert list")
    assert list(listed["name"]) == ["deep"] and list(listed["notify"]) == ["notebook"]
    run(ip, "%aiser alert remove deep")
    assert run(ip, "%aiser alert list").empty


def test_aiser_serve_runs_the_models_alerts_alongside(hook, tmp_path):
    model = orders_model(tmp_path, every="1h")
    env = {**os.environ, "ORDERS_HOOK": hook.url, "AISER_HOME": str(tmp_path / "home")}
    command = [sys.executable, "-m", "aiser_jupyter.cli", "serve", str(model), "--no-auth"]
    command += ["--port", str(free_port()), "--connection", str(tmp_path / "orders.csv")]
    server = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, text=True)
    try:
        wait_until(lambda: len(hook.bodies) == 1, timeout=60)
    finally:
        server.terminate()
        out, _ = server.communicate(timeout=20)
    assert hook.bodies[0]["alert"] == "many_orders" and hook.bodies[0]["value"] == 3
    assert "1 alerts from" in out and TOKEN not in out
