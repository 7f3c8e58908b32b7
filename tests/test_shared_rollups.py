"""Rollups in a shared folder (``preaggregation_shared``): built once whoever asks first,
read by every other Session, rebuilt once when stale (Parquet files, a file lock)."""

from __future__ import annotations

import json
import threading
from datetime import datetime, timedelta

import pytest

from aiser_jupyter.sessions import Session

BY_REGION = {
    "measures": ["orders.count", "orders.revenue"],
    "dimensions": ["customers.region"],
    "order": {"customers.region": "asc"},
}
BY_REGION_SQL = """SELECT c.region, count(*), round(sum(o.revenue), 2)
    FROM orders o JOIN customers c USING (customer_id) GROUP BY 1 ORDER BY 1"""
ROLLUP = "orders__daily_by_region"


@pytest.fixture
def sessions(tmp_path):
    """Two Sessions (two processes' worth) naming the same shared folder."""
    made = []
    for _ in range(2):
        session = Session()
        session.settings.preaggregation_shared = str(tmp_path)
        session.sources.load_sample()
        session.load_model("examples/model/retail.yml")
        made.append(session)
    yield made
    for session in made:
        session.close()


def files(folder) -> list[str]:
    return sorted(p.name for p in folder.glob(f"{ROLLUP}-*.parquet"))


def answer(session: Session) -> list[tuple]:
    result = session.query(BY_REGION)
    assert result.pre_aggregation == "orders.daily_by_region"
    return [(r[0], r[1], round(r[2], 2)) for r in result.df.itertuples(index=False)]


def hand(session: Session) -> list[tuple]:
    return [tuple(r) for r in session.sql(BY_REGION_SQL).df.itertuples(index=False)]


def test_two_sessions_asking_at_once_build_a_rollup_once_and_both_read_it(sessions, tmp_path):
    threads = [
        threading.Thread(target=s.semantic.refresh_pre_aggregations, kwargs={"force": False})
        for s in sessions
    ]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(files(tmp_path)) == 1  # one build: the second waited on the lock, then read it
    for session in sessions:
        assert answer(session) == hand(session)


def test_a_stale_rollup_is_rebuilt_once_and_every_session_moves_to_it(sessions, tmp_path):
    first, second = sessions
    assert answer(first) == hand(first)
    [built] = files(tmp_path)
    described = tmp_path / f"{ROLLUP}.json"
    about = json.loads(described.read_text())
    about["built_at"] = (datetime.now() - timedelta(hours=2)).isoformat()  # refresh: 1 hour
    described.write_text(json.dumps(about))
    assert answer(second) == hand(second)  # the second finds it stale: rebuilds it
    [rebuilt] = set(files(tmp_path)) - {built}
    assert answer(first) == hand(first)  # the first reads the new build, builds nothing
    assert set(files(tmp_path)) == {built, rebuilt}
    store = first.semantic.preaggregations()
    assert store.shared.built(ROLLUP).path.name == rebuilt


def test_with_a_key_set_shared_rollups_are_not_written_in_plaintext(tmp_path, monkeypatch):
    """Data at rest is encrypted once a key exists; shared rollups are plain Parquet, so a
    Session with a key builds its rollups in its own sealed store and says why."""
    monkeypatch.setenv("AISER_ENCRYPTION_KEY", "correct horse battery staple")
    monkeypatch.setenv("AISER_PREAGGREGATION_CACHE", str(tmp_path / "rollups.duckdb"))
    shared = tmp_path / "shared"
    shared.mkdir()
    session = Session()
    session.settings.preaggregation_shared = str(shared)
    try:
        session.sources.load_sample()
        session.load_model("examples/model/retail.yml")
        with pytest.warns(UserWarning, match="not used: they are plain Parquet"):
            got = answer(session)
        assert got == hand(session)
        assert list(shared.iterdir()) == []
    finally:
        session.close()
