"""``aiser keys init|rotate``: plain data encrypted in place; a rotation killed halfway (a
real process, SIGKILL) leaves every file readable with the old key or the new one, and
running it again finishes it."""

from __future__ import annotations

import os
import signal
import subprocess
import sys
from pathlib import Path

import pyarrow as pa

from aiser_jupyter.memory import Memory
from aiser_jupyter.security import keys, rotate
from aiser_jupyter.security.atrest import MAGIC, open_keyed
from aiser_jupyter.security.keys import Key
from aiser_jupyter.sessions import Session


def make_data(home: Path, parquet: Path) -> None:
    session = Session()
    session.agent.memory.remember("the fiscal year starts in April")
    session.connect(str(parquet), name="sales")
    for limit in range(1, 5):  # four cache files
        session.router.run(f"SELECT * FROM sales ORDER BY amount LIMIT {limit}")
    session.governance.audit_log.flush()
    session.close()


def cli(*args: str, **env: str) -> subprocess.Popen:
    return subprocess.Popen(
        [sys.executable, "-m", "aiser_jupyter.cli", "keys", *args],
        env={**os.environ, **env},
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def key_at(path: Path) -> Key:
    return Key(bytes.fromhex(path.read_text().strip()), str(path))


def readable_with(path: Path, candidates: list[Key]) -> Key | None:
    data = path.read_bytes()
    if data.startswith(MAGIC):
        kid = data[len(MAGIC) : len(MAGIC) + 8].hex()
        return next((k for k in candidates if k.kid == kid), None)
    for key in candidates:
        connection = open_keyed(str(path), key)
        if connection is not None:
            connection.execute("SELECT count(*) FROM sqlite_master").fetchall()
            connection.close()
            return key
    return None


def test_init_then_rotation_killed_halfway_then_finished(tmp_path):
    import pyarrow.parquet as pq

    home = Path(os.environ["AISER_HOME"])
    parquet = tmp_path / "sales.parquet"
    pq.write_table(pa.table({"amount": [3.0, 1.0, 2.0, 5.0]}), parquet)
    make_data(home, parquet)
    files = rotate.data_files()
    assert len(files) >= 6  # memory, audit, four cache files

    # init: the plain files are encrypted in place with a new key in keys/key
    done = cli("init")
    assert done.wait(60) == 0, done.stderr.read()
    old = key_at(home / "keys" / "key")
    assert (home / "keys" / "key").stat().st_mode & 0o077 == 0
    assert all(readable_with(p, [old]) for p in files)
    assert set(rotate.journal().values()) == {old.kid}

    # rotate, killed with SIGKILL after two files, the third one's new copy written
    running = cli("rotate", AISER_ROTATE_HOLD_AFTER="2")
    said = [running.stdout.readline().strip() for _ in range(3)]
    assert said[2] == "holding", said  # two files said done, then the hold
    running.send_signal(signal.SIGKILL)
    running.wait(30)
    new = key_at(home / "keys" / "key.new")
    assert new.kid != old.kid
    used = {p: readable_with(p, [old, new]) for p in files}
    assert all(used.values()), used
    assert {k.kid for k in used.values()} == {old.kid, new.kid}  # halfway indeed
    with Memory.open(home / "memory.db") as memory:  # and the product reads on, mid-way
        assert [e.text for e in memory.entries("fact")] == ["the fiscal year starts in April"]

    # run again: finished, the new key is the key, nothing lost
    again = cli("rotate")
    assert again.wait(60) == 0, again.stderr.read()
    assert not (home / "keys" / "key.new").exists()
    assert key_at(home / "keys" / "key").kid == new.kid
    assert all(readable_with(p, [new]) == new for p in files)
    assert not list(home.rglob("*" + rotate.TEMP_SUFFIX))
    assert keys.ring().current.kid == new.kid
    session = Session()
    assert [e.text for e in session.agent.memory.entries("fact")] == [
        "the fiscal year starts in April"
    ]
    session.connect(str(parquet), name="sales")
    hit = session.router.run("SELECT * FROM sales ORDER BY amount LIMIT 3")
    assert hit.plan.cached and hit.df["amount"].tolist() == [1.0, 2.0, 3.0]
    assert session.governance.audit_log.verify() >= 4
    session.close()
