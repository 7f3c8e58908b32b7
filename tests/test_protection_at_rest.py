"""Encryption at rest: with a key, no file the product writes holds planted personal data in
plaintext; without the key nothing opens (and nothing is damaged); with it all works."""

from __future__ import annotations

import hashlib
import os
from pathlib import Path

import pytest

from aiser_jupyter.engines.snapshot import sealed_path
from aiser_jupyter.governance.audit import AuditLog
from aiser_jupyter.memory import Memory
from aiser_jupyter.security import keys
from aiser_jupyter.security.keys import EncryptionKeyError
from aiser_jupyter.semantic.preagg import PreAggregationStore
from aiser_jupyter.sessions import Session

SECRET = "hunter2-Zq9xK7vW"
EMAIL = "jane.roe.7781@example.org"
PLANTED = (SECRET.encode(), EMAIL.encode())
MODEL = {
    "cubes": [
        {
            "name": "people",
            "sql_table": "people",
            "dimensions": [
                {"name": "email", "sql": "email", "type": "string", "meta": {"pii": "email"}},
                {"name": "note", "sql": "note", "type": "string"},
            ],
            "measures": [{"name": "total", "sql": "amount", "type": "sum"}],
            "pre_aggregations": [
                {"name": "by_person", "measures": ["total"], "dimensions": ["email", "note"]}
            ],
        }
    ]
}
QUESTION = f"what did {EMAIL} buy with {SECRET}?"
FACT = f"{EMAIL} is our contact, passphrase {SECRET}"
SQL = "SELECT email, note, amount FROM people ORDER BY amount"


def plant(session: Session, data: Path) -> None:
    """The secret and the e-mail in a question, a fact, an audit entry, a cached result and
    a rollup."""
    memory = session.agent.memory
    memory.record_turn("notebook-1", "user", QUESTION)
    memory.record_episode(QUESTION, f"SELECT * FROM people WHERE email = '{EMAIL}'")
    memory.remember(FACT)
    session.connect(str(data), name="people")
    session.router.run(SQL)  # audited, and cached (a file's rows)
    session.load_model(MODEL)
    session.query({"measures": ["people.total"], "dimensions": ["people.email", "people.note"]})
    session.governance.audit_log.flush()


def on_disk(root: Path) -> dict[Path, bytes]:
    return {p: p.read_bytes() for p in sorted(root.rglob("*")) if p.is_file()}


def leaks(root: Path) -> list[str]:
    return [
        f"{path.relative_to(root)} holds {needle.decode()}"
        for path, data in on_disk(root).items()
        for needle in PLANTED
        if needle in data
    ]


@pytest.fixture
def data(tmp_path):
    import pyarrow as pa
    import pyarrow.parquet as pq

    path = tmp_path / "data" / "people.parquet"
    path.parent.mkdir()
    columns = {"email": [EMAIL, "bob@example.com"], "note": [SECRET, "plain"], "amount": [42, 7]}
    pq.write_table(pa.table(columns), path)
    return path


@pytest.fixture
def keyed(tmp_path, monkeypatch):
    home = Path(os.environ["AISER_HOME"])
    monkeypatch.setenv("AISER_ENCRYPTION_KEY", "correct horse battery staple")
    monkeypatch.setenv("AISER_PREAGGREGATION_CACHE", str(home / "rollups.duckdb"))
    monkeypatch.setenv("AISER_CACHE_TTL", "0")
    return home


def test_without_a_key_the_files_are_plain_and_status_says_so(data):
    session = Session()
    plant(session, data)
    home = Path(os.environ["AISER_HOME"])
    assert leaks(home), "the planted text is in the plain files (the scan finds it)"
    assert keys.describe().startswith("data at rest: not encrypted")
    session.close()


def test_with_a_key_nothing_planted_is_plaintext_on_disk(data, keyed):
    session = Session()
    plant(session, data)
    rollups = keyed / "rollups.duckdb"
    assert rollups.is_file() and list((keyed / "cache").glob("*.arrow"))
    assert (keyed / "memory.db-wal").exists() or (keyed / "memory.db").exists()
    assert leaks(keyed) == []  # open: WAL files included
    status = keys.describe()
    assert status.startswith("data at rest: encrypted") and "AISER_ENCRYPTION_KEY" in status
    session.close()
    assert leaks(keyed) == []  # closed: checkpointed into the databases

    # Without the key: one clear error per store, and not a byte of any file changes.
    before = {p: hashlib.sha256(b).hexdigest() for p, b in on_disk(keyed).items()}
    os.environ.pop("AISER_ENCRYPTION_KEY")
    try:
        with pytest.raises(EncryptionKeyError, match="encrypted: set AISER_ENCRYPTION_KEY"):
            Memory.open(keyed / "memory.db")
        with pytest.raises(EncryptionKeyError, match="encrypted: set AISER_ENCRYPTION_KEY"):
            AuditLog(keyed / "audit.db")
        with pytest.raises(EncryptionKeyError, match="encrypted: set AISER_ENCRYPTION_KEY"):
            sealed_path(str(rollups))
        os.environ["AISER_ENCRYPTION_KEY"] = "wrong horse"
        with pytest.raises(EncryptionKeyError, match="set the key it was made with"):
            Memory.open(keyed / "memory.db")
        with pytest.raises(EncryptionKeyError, match="not given"):
            PreAggregationStore(str(rollups))
    finally:
        os.environ["AISER_ENCRYPTION_KEY"] = "correct horse battery staple"
    after = {p: hashlib.sha256(b).hexdigest() for p, b in on_disk(keyed).items()}
    assert {p: h for p, h in after.items() if p in before} == before

    # With the key, everything is as it was: memory, audit, cache hit, rollup.
    again = Session()
    memory = again.agent.memory
    assert [e.text for e in memory.entries("fact")] == [FACT]
    assert [e.text for e in memory.search("contact")] == [FACT]
    assert memory.conversation("notebook-1")[-1].text == QUESTION
    assert any(EMAIL in (e.sql or "") for e in memory.entries("episode"))
    audited = again.governance.audit_entries()
    assert any(e.sql == SQL for e in audited)
    again.connect(str(data), name="people")
    cached = again.router.run(SQL)
    assert cached.plan.cached and cached.df["email"].tolist() == ["bob@example.com", EMAIL]
    again.load_model(MODEL)
    served = again.query({"measures": ["people.total"], "dimensions": ["people.note"]})
    assert served.pre_aggregation is not None
    assert dict(zip(served.df["people.note"], served.df["people.total"], strict=True)) == {
        SECRET: 42,
        "plain": 7,
    }
    again.close()
    assert leaks(keyed) == []


def test_a_key_file_others_may_read_is_refused(tmp_path, monkeypatch):
    path = tmp_path / "key"
    path.write_text("ab" * 32)
    path.chmod(0o644)
    monkeypatch.setenv("AISER_ENCRYPTION_KEY_FILE", str(path))
    with pytest.raises(EncryptionKeyError, match=r"may be read by others .*chmod 600"):
        keys.ring()
    path.chmod(0o600)
    assert keys.ring().current.source == f"key file {path}"


def test_a_plain_store_with_a_key_set_says_to_run_keys_init(tmp_path, monkeypatch):
    Memory.open(tmp_path / "memory.db").close()
    monkeypatch.setenv("AISER_ENCRYPTION_KEY", "s3cret")
    with pytest.raises(EncryptionKeyError, match="aiser keys init"):
        Memory.open(tmp_path / "memory.db")
