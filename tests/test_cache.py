"""The result cache: answers kept per source version, in memory and as Arrow files on disk."""

from __future__ import annotations

import os
import re
import time

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiser_jupyter import sessions
from aiser_jupyter.config import home
from aiser_jupyter.engines.cache import ResultCache, Version

QUERY = "SELECT kind, sum(amount) AS total, count(*) AS n FROM sales GROUP BY kind ORDER BY kind"


@pytest.fixture
def session():
    made = sessions.Session()
    yield made
    made.close()


def write_sales(path, amounts: list[float]) -> None:
    kinds = ["a" if i % 2 == 0 else "b" for i in range(len(amounts))]
    pq.write_table(pa.table({"kind": kinds, "amount": amounts}), path)


@pytest.fixture
def sales(session, tmp_path):
    path = tmp_path / "sales.parquet"
    write_sales(path, [1.0, 2.0, 3.0, 4.0])
    session.connect(str(path), name="sales")
    return path


def test_a_repeat_is_answered_from_the_cache_with_identical_rows(session, sales):
    first = session.router.run(QUERY)
    again = session.router.run(QUERY)
    assert not first.plan.cached and again.plan.cached
    assert again.table.equals(first.table)
    assert again.df.values.tolist() == [["a", 4.0, 2], ["b", 6.0, 2]]
    assert re.search(r"cached, \d+ s old", again.caption())
    assert "answered from the cache" in again.plan.explain()
    stats = session.router.cache_stats()
    assert (stats.hits, stats.misses, stats.stores) == (1, 1, 1)
    assert stats.disk_entries == 1 and stats.memory_entries == 1


def test_layout_and_keyword_case_do_not_make_a_new_entry(session, sales):
    session.router.run(QUERY)
    relaid = session.router.run(QUERY.lower().replace(" from ", "\n  FROM  ") + "  -- note")
    assert relaid.plan.cached


def test_a_rewritten_file_is_a_miss_with_the_new_answer(session, sales):
    session.router.run(QUERY)
    write_sales(sales, [10.0, 20.0, 30.0, 40.0, 50.0])
    fresh = session.router.run(QUERY)
    assert not fresh.plan.cached
    assert fresh.df.values.tolist() == [["a", 90.0, 3], ["b", 60.0, 2]]
    assert session.router.run(QUERY).plan.cached


def test_touching_a_file_is_a_miss(session, sales):
    session.router.run(QUERY)
    later = time.time() + 5
    os.utime(sales, (later, later))
    assert not session.router.run(QUERY).plan.cached


def test_a_file_replaced_under_the_same_table_name_is_a_miss(session, sales, tmp_path):
    session.router.run(QUERY)
    other = tmp_path / "other.parquet"
    write_sales(other, [7.0])
    session.connect(str(other), name="sales")
    result = session.router.run(QUERY)
    assert not result.plan.cached and result.df.values.tolist() == [["a", 7.0, 1]]


def test_the_disk_tier_answers_a_new_kernel(session, sales):
    session.router.run(QUERY)
    later = type(session)()  # a new Session: empty memory, same $AISER_HOME/cache
    try:
        later.connect(str(sales), name="sales")
        result = later.router.run(QUERY)
        assert result.plan.cached and result.df.values.tolist() == [["a", 4.0, 2], ["b", 6.0, 2]]
        assert list((home() / "cache").glob("*.arrow"))
    finally:
        later.close()


def test_parameters_and_limits_are_part_of_the_key(session, sales):
    sql = "SELECT count(*) AS n FROM sales WHERE amount > :floor"
    assert session.router.run(sql, params={"floor": 1}).df["n"].tolist() == [3]
    assert session.router.run(sql, params={"floor": 3}).df["n"].tolist() == [1]
    assert session.router.run(sql, params={"floor": 1}).plan.cached
    assert len(session.router.run("SELECT * FROM sales", limit=2)) == 2
    assert len(session.router.run("SELECT * FROM sales", limit=3)) == 3


def test_what_cannot_be_versioned_is_not_cached(session, sales):
    session.sources.default_duckdb().engine.store("local", pa.table({"x": [1, 2]}))
    for sql in ("SELECT sum(x) FROM local", "SELECT random() < 2 AS r FROM sales", "SELECT 42"):
        session.router.run(sql)
        assert not session.router.run(sql).plan.cached, sql
    assert session.router.cache_stats().stores == 0


def test_cache_can_be_bypassed_and_cleared(session, sales):
    session.router.run(QUERY)
    assert not session.router.run(QUERY, cache=False).plan.cached
    assert session.router.cache_clear() == 1
    assert not session.router.run(QUERY).plan.cached
    assert session.router.cache_stats().disk_entries == 1


def test_database_entries_expire_after_the_ttl_and_writes_make_them_stale(session, pg_url):
    session.connect(pg_url, name="pg")
    session.router.run("SELECT count(*) FROM sales")
    assert not session.router.run("SELECT count(*) FROM sales").plan.cached  # no TTL: none
    session.settings.cache_ttl = 60
    session.router.run("CREATE TABLE IF NOT EXISTS cache_probe (v int)")
    session.router.run("DELETE FROM cache_probe")
    count = "SELECT count(*) AS n FROM cache_probe"
    assert session.router.run(count).df["n"].tolist() == [0]
    assert session.router.run(count).plan.cached
    session.router.run("INSERT INTO cache_probe VALUES (1), (2)")  # a write through the Session
    after = session.router.run(count)
    assert not after.plan.cached and after.df["n"].tolist() == [2]
    assert session.router.run(count).plan.cached
    time.sleep(0.1)
    session.settings.cache_ttl = 0.05  # the TTL in force when asked is the one that counts
    assert not session.router.run(count).plan.cached


def table_of(nbytes: int, tag: int) -> pa.Table:
    return pa.table({"v": pa.array([tag] * (nbytes // 8), pa.int64())})


def test_memory_tier_evicts_the_least_recently_used_by_size():
    cache = ResultCache(None, memory_bytes=3000)
    forever = Version("v1", None)
    for key in ("a", "b"):
        assert cache.put(key, forever, table_of(1000, ord(key)))
    assert cache.get("a", forever) is not None  # a is now the most recently used
    cache.put("c", forever, table_of(1000, 3))
    cache.put("d", forever, table_of(1000, 4))
    assert cache.get("b", forever) is None
    assert [k for k in "acd" if cache.get(k, forever) is not None] == ["a", "c", "d"]
    assert cache.stats().evictions == 1
    assert not cache.put("big", forever, table_of(2000, 5))  # over half the budget: not kept


def test_disk_tier_evicts_the_least_recently_used_files(tmp_path):
    cache = ResultCache(tmp_path, memory_bytes=10_000_000, disk_bytes=30_000)
    forever = Version("v1", None)
    for index, key in enumerate("abc"):
        cache.put(key, forever, table_of(8000, index))
        past = time.time() - 100 + index  # file times a second apart, oldest first
        os.utime(next(tmp_path.glob(f"{key}-*.arrow")), (past, past))
    cache.put("d", forever, table_of(8000, 9))
    names = sorted(p.name.split("-")[0] for p in tmp_path.glob("*.arrow"))
    assert names == ["b", "c", "d"]
    fresh = ResultCache(tmp_path)
    hit = fresh.get("c", forever)
    assert hit is not None and hit[0].column("v")[0].as_py() == 2


def test_an_entry_is_only_good_for_its_version_and_ttl(tmp_path):
    cache = ResultCache(tmp_path)
    cache.put("q", Version("v1", None), table_of(80, 1))
    assert cache.get("q", Version("v2", None)) is None
    cache.put("q", Version("v2", 60), table_of(80, 2))
    assert len(list(tmp_path.glob("q-*.arrow"))) == 1  # the old version's file is gone
    assert cache.get("q", Version("v2", 60))[0].column("v")[0].as_py() == 2
    time.sleep(0.15)
    assert cache.get("q", Version("v2", 0.1)) is None
    assert not list(tmp_path.glob("q-*.arrow"))
