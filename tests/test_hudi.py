"""Apache Hudi tables read through hudi-rs into DuckDB: upserts, an added column, old
commits, refresh. The tables are written here by tools/hudi_writer.py (Hudi's own writer
is a Spark jar from Maven, out of reach), and read back by hudi-rs, not by that writer."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aiser_jupyter.errors import ConnectionFailed

pytest.importorskip("hudi")

from aiser_jupyter.sources.lakes import open_lake
from aiser_jupyter.sources.sources import external_kind, table_name
from tools.hudi_writer import write_commit

FIRST, SECOND, THIRD = "20240101000000000", "20240102000000000", "20240103000000000"


def trips_commit(path, rows: dict, instant: str) -> None:
    write_commit(path, pa.table(rows), instant, name="trips", record_key="id", partition="city")


@pytest.fixture
def trips(tmp_path):
    """Two commits: 3 trips in two cities; then trip 2 updated (fare 25) and trip 4 added,
    with a new column `tip`."""
    path = tmp_path / "trips"
    ids = pa.array([1, 2, 3], pa.int64())
    trips_commit(path, {"id": ids, "city": ["sf", "sf", "la"], "fare": [10.0, 20.0, 5.0]}, FIRST)
    second = {"id": pa.array([2, 4], pa.int64()), "city": ["sf", "sf"], "fare": [25.0, 7.5]}
    trips_commit(path, {**second, "tip": [1.0, 2.0]}, SECOND)
    return path


@pytest.fixture
def session():
    from aiser_jupyter.sessions import Session

    made = Session()
    yield made
    made.close()


def rows(session, sql):
    return session.sql(sql).to_arrow().to_pylist()


def test_a_hudi_table_is_a_duckdb_table_with_its_upserts(session, trips):
    connection = session.sources.connect_lake(f"hudi://{trips}")
    assert connection.kind == "duckdb" and "trips" in connection.tables
    # 1 sf 10, 2 sf 25 (updated), 3 la 5, 4 sf 7.5; tips on 2 and 4 only.
    assert rows(session, "SELECT count(*) AS n, sum(fare) AS s, count(tip) AS t FROM trips") == [
        {"n": 4, "s": 47.5, "t": 2}
    ]
    assert rows(session, "SELECT city, count(*) AS n FROM trips GROUP BY 1 ORDER BY 1") == [
        {"city": "la", "n": 1},
        {"city": "sf", "n": 3},
    ]
    assert session.sql("SELECT * FROM trips").to_arrow().column_names == [
        "id",
        "city",
        "fare",
        "tip",
    ]  # no _hoodie_* meta columns
    lake = session.sources.external_tables["trips"]
    assert lake.format == "hudi" and lake.version == int(SECOND)


def test_an_older_commit_reads_as_it_was(session, trips):
    session.sources.connect_lake(f"hudi://{trips}?version={FIRST}", "trips_then")
    assert session.sql("SELECT * FROM trips_then").to_arrow().column_names == [
        "id",
        "city",
        "fare",
    ]
    assert rows(session, "SELECT count(*) AS n, sum(fare) AS s FROM trips_then") == [
        {"n": 3, "s": 35.0}
    ]
    lake = open_lake(str(trips))  # a folder holding .hoodie
    assert lake.changes(int(FIRST)) == ["column tip added"]
    assert [(s.version, s.operation) for s in lake.snapshots()] == [
        (int(FIRST), "upsert"),
        (int(SECOND), "upsert"),
    ]
    assert lake.snapshots()[0].at.isoformat() == "2024-01-01T00:00:00+00:00"


def test_refresh_moves_to_the_newest_commit(session, trips):
    session.sources.connect_lake(f"hudi://{trips}")
    trips_commit(
        trips,
        {"id": pa.array([5], pa.int64()), "city": ["ny"], "fare": [3.0], "tip": [0.5]},
        THIRD,
    )
    assert rows(session, "SELECT count(*) AS n FROM trips") == [{"n": 4}]  # pinned commit
    assert session.sources.refresh_external("trips") == []
    assert rows(session, "SELECT count(*) AS n, sum(fare) AS s FROM trips") == [{"n": 5, "s": 50.5}]
    result = session.sql("SELECT max(tip) AS m FROM trips", read_only=True)
    assert result.to_arrow().to_pylist() == [{"m": 2.0}]


def test_an_unpartitioned_table(session, tmp_path):
    path = tmp_path / "plain"
    data = {"k": ["a", "b"], "v": pa.array([1, 2], pa.int32())}
    write_commit(path, pa.table(data), FIRST, name="plain", record_key="k")
    write_commit(
        path,
        pa.table({"k": ["b"], "v": pa.array([20], pa.int32())}),
        SECOND,
        name="plain",
        record_key="k",
    )
    session.sources.connect_lake(f"hudi://{path}")
    assert rows(session, "SELECT k, v FROM plain ORDER BY k") == [
        {"k": "a", "v": 1},
        {"k": "b", "v": 20},
    ]


def test_bad_hudi_targets_fail_clearly(session, trips, tmp_path):
    failures = [
        lambda: session.sources.connect_lake(f"hudi://{tmp_path / 'nothing'}"),
        lambda: session.sources.connect_lake(f"hudi://{trips}?version=20200101000000000"),
        lambda: session.sources.connect_lake(f"hudi://{trips}", colour="red"),
    ]
    for attempt in failures:
        with pytest.raises(ConnectionFailed) as caught:
            attempt()
        assert "\n" not in str(caught.value)
    assert external_kind("hudi:///data/trips") == "lake"
    assert table_name("hudi:///data/trips/") == "trips"
