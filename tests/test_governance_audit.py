"""The audit log: allowed, refused and failed queries with who ran them; secrets redacted;
append-only and hash-chained; kept across Sessions; exported as JSON lines; PostgreSQL too."""

from __future__ import annotations

import json
import sqlite3
from datetime import datetime, timedelta, timezone

import pytest
from governance_model import NORTH, governed_session

from aiser_jupyter.config import home
from aiser_jupyter.errors import QueryError, UnsafeSQLError
from aiser_jupyter.governance.audit import AuditFailed, AuditLog
from aiser_jupyter.security.context import AccessDenied
from aiser_jupyter.security.secrets import register
from aiser_jupyter.sessions import Session


@pytest.fixture
def gov():
    session = governed_session()
    session.governance.start_audit()
    return session


def test_allowed_refused_and_failed_queries_with_who(gov):
    gov.governance.set_context(NORTH)
    result = gov.query({"measures": ["orders.count"], "dimensions": ["orders.status"]})
    with pytest.raises(AccessDenied):
        gov.query({"dimensions": ["customers.segment"]})
    gov.governance.set_context(None)
    with pytest.raises(UnsafeSQLError):
        gov.sql("DELETE FROM orders", read_only=True)
    with pytest.raises(QueryError):
        gov.sql("SELECT no_such_column FROM orders")
    entries = gov.governance.audit_entries()
    assert [e.outcome for e in entries] == ["allowed", "refused", "refused", "failed"]
    allowed, denied, guarded, failed = entries
    assert (allowed.user, allowed.tenant, allowed.kind, allowed.rows) == (
        "ann",
        "North",
        "query",
        3,
    )
    assert allowed.rows == len(result) and allowed.duration_ms > 0
    assert "region" in allowed.sql and allowed.connection == "duckdb"
    assert (denied.user, denied.outcome) == ("ann", "refused")
    assert "customers.segment is not visible" in denied.reason
    assert "customers.segment" in denied.sql
    assert guarded.user is None and "DELETE" in guarded.sql and guarded.reason
    assert "no_such_column" in failed.reason


def test_secrets_are_redacted(gov):
    register("tok_Zq81xKv")
    gov.sql("SELECT 'tok_Zq81xKv' AS token, 'postgresql://bob:hunter2pw@db.example/x' AS url")
    (entry,) = gov.governance.audit_entries()
    assert "tok_Zq81xKv" not in entry.sql and "hunter2pw" not in entry.sql
    assert "bob:***@db.example" in entry.sql
    raw = (home() / "audit.db").read_bytes()
    assert b"hunter2pw" not in raw and b"tok_Zq81xKv" not in raw


def test_the_log_survives_a_new_session_and_exports_jsonl(gov, tmp_path):
    gov.sql("SELECT 1 AS one")
    gov.sql("SELECT 2 AS two")
    gov.governance.audit_log.flush()  # entries reach the file within a quarter second; now
    later = Session()
    later.governance.start_audit()
    later.sql("SELECT 3 AS three")
    frame = later.governance.audit()
    assert list(frame["sql"]) == ["SELECT 1 AS one", "SELECT 2 AS two", "SELECT 3 AS three"]
    out = tmp_path / "audit.jsonl"
    assert later.governance.export_audit(out) == 3
    lines = [json.loads(line) for line in out.read_text().splitlines()]
    assert [line["sql"] for line in lines] == list(frame["sql"])
    assert {"user", "at", "connection", "rows", "duration_ms", "outcome", "hash"} <= set(lines[0])
    assert later.governance.audit_log.verify() == 3
    later.governance.stop_audit()
    later.sql("SELECT 4 AS four")  # not recorded
    assert len(gov.governance.audit()) == 3


def test_since_and_user_filters(gov):
    gov.sql("SELECT 1")
    gov.governance.set_context(NORTH)
    gov.query({"measures": ["orders.count"]})
    assert len(gov.governance.audit(since="1h")) == 2
    assert len(gov.governance.audit(since=timedelta(minutes=5), user="ann")) == 1
    future = datetime.now(timezone.utc) + timedelta(minutes=1)
    assert len(gov.governance.audit(since=future)) == 0
    assert len(gov.governance.audit(since=future.isoformat())) == 0
    with pytest.raises(AuditFailed, match="an age such as 2h"):
        gov.governance.audit(since="yesterday-ish")


def test_append_only_and_tamper_evident(tmp_path):
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    for n in range(3):
        log.record("sql", f"SELECT {n}", rows=1, duration=0.01)
    assert log.verify() == 3
    db = sqlite3.connect(path)
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("UPDATE aiser_audit SET sql = 'SELECT 42' WHERE id = 2")
    with pytest.raises(sqlite3.DatabaseError, match="append-only"):
        db.execute("DELETE FROM aiser_audit WHERE id = 2")
    db.execute("DROP TRIGGER aiser_audit_no_update")  # someone with file access goes around it
    db.execute("UPDATE aiser_audit SET rows_ = 1000 WHERE id = 2")
    db.commit()
    with pytest.raises(AuditFailed, match="entry 2 was altered"):
        log.verify()
    log.close()


def test_a_deleted_entry_breaks_the_chain(tmp_path):
    path = tmp_path / "audit.db"
    log = AuditLog(path)
    for n in range(3):
        log.record("sql", f"SELECT {n}")
    db = sqlite3.connect(path)
    db.execute("DROP TRIGGER aiser_audit_no_delete")
    db.execute("DELETE FROM aiser_audit WHERE id = 2")
    db.commit()
    with pytest.raises(AuditFailed, match="entry 3"):
        log.verify()


def test_postgres_audit_log(pg_url):
    log = AuditLog(pg_url)
    first = log.record("sql", "SELECT 1", rows=1, duration=0.002)
    second = log.record("query", "SELECT 2", outcome="refused", reason="not visible")
    entries = log.entries()
    assert [e.hash for e in entries[-2:]] == [first.hash, second.hash]
    assert entries[-1].outcome == "refused" and entries[-1].reason == "not visible"
    assert log.verify() == len(entries)
    with pytest.raises(AuditFailed, match="append-only"):
        log._fetch("DELETE FROM aiser_audit")
    log.close()


def test_an_audit_write_failure_warns_and_the_query_still_answers(gov):
    gov.governance.audit_log._conn.close()  # the log's database goes away under it
    assert len(gov.sql("SELECT 1 AS one")) == 1  # the query does not wait for the log
    with pytest.warns(RuntimeWarning, match="not audited: 1 entries"):
        gov.governance.audit_log.flush()
    gov.sql("SELECT 2 AS two")  # still listening
    with pytest.warns(RuntimeWarning, match="not audited: 1 entries"):
        gov.governance.audit_log.flush()
