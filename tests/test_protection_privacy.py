"""GDPR: one person's memory entries, audit entries and cached answers exported and erased,
others' left intact, the audit chain still verifying; retention purges old entries."""

from __future__ import annotations

import json
import os
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

import aiser_jupyter as aiser
from aiser_jupyter.governance.shred import ERASED
from aiser_jupyter.sessions import Session

ALICE_FACT = "alice.liddell.5521@example.org prefers revenue net of refunds"
BOB_FACT = "bob prefers gross revenue"
ALICE_SQL = "SELECT * FROM sales WHERE amount > 2"
BOB_SQL = "SELECT * FROM sales WHERE amount < 2"


@pytest.fixture
def session(tmp_path):
    path = tmp_path / "sales.parquet"
    pq.write_table(pa.table({"amount": [1.0, 2.0, 3.0, 4.0]}), path)
    session = aiser.session()
    session.connect(str(path), name="sales")
    for user, fact, sql in (("alice", ALICE_FACT, ALICE_SQL), ("bob", BOB_FACT, BOB_SQL)):
        session.governance.set_context(user=user)
        session.agent.memory.remember(fact)
        session.router.run(sql)
    session.governance.set_context()
    session.governance.audit_log.flush()
    return session


def test_export_holds_one_subjects_data_only(session, tmp_path):
    counts = aiser.privacy.export("alice", tmp_path / "alice.json")
    document = json.loads((tmp_path / "alice.json").read_text())
    assert document["subject"] == "alice"
    assert [e["text"] for e in document["memory"]] == [ALICE_FACT]
    assert [e["sql"] for e in document["audit"]] == [ALICE_SQL]
    assert [e["user"] for e in document["audit"]] == ["alice"]
    assert [a["rows"] for a in document["cached_answers"]] == [[{"amount": 3.0}, {"amount": 4.0}]]
    assert counts == {"memory": 1, "audit": 1, "cached_answers": 1}
    assert aiser.privacy("bob")["memory"][0]["text"] == BOB_FACT


def test_erase_removes_one_subject_and_the_chain_still_verifies(session):
    home = Path(os.environ["AISER_HOME"])
    audit_db = home / "audit.db"
    with sqlite3.connect(audit_db) as raw:
        alice_keys = [
            k for (k,) in raw.execute("SELECT key FROM aiser_audit_subjects WHERE who = 'alice'")
        ]
    assert alice_keys

    erased = aiser.privacy.erase("alice")
    assert erased == {"memory": 1, "audit": 1, "cached_answers": 1}

    memory = session.agent.memory
    assert [e.text for e in memory.entries("fact")] == [BOB_FACT]
    assert b"alice.liddell" not in (home / "memory.db").read_bytes()
    entries = session.governance.audit_entries()
    alice = [e for e in entries if e.user == ERASED]
    bob = [e for e in entries if e.user == "bob"]
    assert len(alice) == 1 and alice[0].sql == ERASED and alice[0].rows == 2
    assert [e.sql for e in bob] == [BOB_SQL]
    assert session.governance.audit_log.verify() == len(entries)
    on_disk = b"".join(p.read_bytes() for p in home.glob("audit.db*"))
    assert not any(key.encode() in on_disk for key in alice_keys)  # the key is gone for good
    assert aiser.privacy("alice") == {
        **aiser.privacy("alice"),
        "memory": [],
        "audit": [],
        "cached_answers": [],
    }
    assert session.router.run(BOB_SQL).plan.cached  # bob's answer is still cached
    assert not session.router.run(ALICE_SQL).plan.cached  # alice's is not


def test_retention_purges_old_memory_and_shreds_old_audit_fields(session, monkeypatch):
    log = session.governance.audit_log
    old = (datetime.now(timezone.utc) - timedelta(days=40)).isoformat()
    log.record("sql", "SELECT 'an old query'", at=old)
    home = Path(os.environ["AISER_HOME"])
    with sqlite3.connect(home / "memory.db") as raw:
        raw.execute("UPDATE aiser_memory SET created_at = ? WHERE text = ?", (old, BOB_FACT))
    monkeypatch.setattr(session.settings, "audit_retention_days", 30, raising=False)
    monkeypatch.setattr(session.settings, "memory_retention_days", 30, raising=False)
    assert session.privacy.purge() == {"memory": 1, "audit": 1}
    assert [e.text for e in session.agent.memory.entries("fact")] == [ALICE_FACT]
    sqls = [e.sql for e in session.governance.audit_entries()]
    assert sqls[-1] == ERASED and ALICE_SQL in sqls and BOB_SQL in sqls
    assert log.verify() == len(sqls)
    assert "memory retention: 30 days" in session.privacy.status()


def test_a_session_with_retention_purges_at_start(tmp_path, monkeypatch):
    first = Session()
    first.agent.memory.remember("an old fact")
    first.close()
    old = (datetime.now(timezone.utc) - timedelta(days=9)).isoformat()
    with sqlite3.connect(Path(os.environ["AISER_HOME"]) / "memory.db") as raw:
        raw.execute("UPDATE aiser_memory SET created_at = ?", (old,))
    monkeypatch.setenv("AISER_MEMORY_RETENTION_DAYS", "7")
    second = Session()
    assert second.agent.memory.entries() == []
    second.close()
