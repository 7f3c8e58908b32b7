"""Iceberg (pyiceberg, local SQLite catalog) and Delta (deltalake) tables read through DuckDB,
with schema evolution: added and renamed columns, old and new snapshots."""

from __future__ import annotations

import pyarrow as pa
import pytest

from aiser_jupyter.errors import ConnectionFailed

pytest.importorskip("pyiceberg")
pytest.importorskip("deltalake")

from deltalake import write_deltalake
from pyiceberg.types import StringType

from aiser_jupyter.sources.lakes import catalog_options, local_catalog, open_lake
from aiser_jupyter.sources.sources import external_kind, table_name

FIRST = pa.table({"id": pa.array([1, 2, 3], pa.int64()), "amount": [1.5, 2.5, 3.5]})


@pytest.fixture
def session():
    from aiser_jupyter.sessions import Session

    made = Session()
    yield made
    made.close()


@pytest.fixture
def iceberg(tmp_path):
    """db.sales in a local catalog: 3 rows (first snapshot); its options for connect."""
    catalog = local_catalog(tmp_path / "lake")
    catalog.create_namespace("db")
    table = catalog.create_table("db.sales", schema=FIRST.schema)
    table.append(FIRST)
    return table, catalog_options(tmp_path / "lake")


def evolve(table) -> None:
    """Add `region`, rename `amount` to `total`, and append a row in the new shape."""
    with table.update_schema() as update:
        update.add_column("region", StringType())
        update.rename_column("amount", "total")
    table.append(pa.table({"id": pa.array([4], pa.int64()), "total": [4.5], "region": ["North"]}))


def rows(session, sql):
    return session.sql(sql).to_arrow().to_pylist()


def test_an_iceberg_table_is_a_duckdb_table(session, iceberg):
    _, options = iceberg
    connection = session.sources.connect_lake("iceberg://local/db.sales", **options)
    assert connection.kind == "duckdb" and "sales" in connection.tables
    assert rows(session, "SELECT count(*) AS n, sum(amount) AS s FROM sales") == [
        {"n": 3, "s": 7.5}
    ]
    assert session.sources.external_tables["sales"].format == "iceberg"


def test_iceberg_schema_evolution_old_and_new_snapshots(session, iceberg):
    table, options = iceberg
    first = table.current_snapshot().snapshot_id
    evolve(table)
    session.sources.connect_lake("iceberg://local/db.sales", **options)
    assert rows(session, "SELECT sum(total) AS s, count(region) AS r FROM sales") == [
        {"s": 12.0, "r": 1}
    ]
    # Rows written before the rename read under the new name; the added column is NULL there.
    assert rows(session, "SELECT total, region FROM sales WHERE id = 1") == [
        {"total": 1.5, "region": None}
    ]
    session.sources.connect_lake(
        "iceberg://local/db.sales", "sales_then", snapshot=first, **options
    )
    assert session.sql("SELECT * FROM sales_then").to_arrow().column_names == ["id", "amount"]
    assert rows(session, "SELECT sum(amount) AS s FROM sales_then") == [{"s": 7.5}]
    lake = session.sources.external_tables["sales"]
    assert lake.changes(first) == ["column region added", "column amount renamed to total"]
    assert len(lake.snapshots()) == 2 and lake.snapshots()[0].version == first


def test_refreshing_a_lake_table_follows_its_schema(session, iceberg):
    table, options = iceberg
    session.sources.connect_lake("iceberg://local/db.sales", **options)
    evolve(table)
    assert rows(session, "SELECT count(*) AS n FROM sales") == [{"n": 3}]  # pinned snapshot
    notes = session.sources.refresh_external("sales")
    assert notes == ["column region added", "column amount renamed to total"]
    assert rows(session, "SELECT count(*) AS n, sum(total) AS s FROM sales") == [
        {"n": 4, "s": 12.0}
    ]


def test_a_delta_table_added_and_renamed_columns(session, tmp_path):
    path = tmp_path / "events"
    write_deltalake(path, FIRST)
    write_deltalake(
        path,
        pa.table({"id": pa.array([4], pa.int64()), "amount": [4.5], "region": ["North"]}),
        mode="append",
        schema_mode="merge",
    )
    session.sources.connect_lake(f"delta://{path}")
    assert rows(session, "SELECT count(region) AS r, sum(amount) AS s FROM events") == [
        {"r": 1, "s": 12.0}
    ]
    session.sources.connect_lake(f"delta://{path}?version=0", "events_v0")
    assert session.sql("SELECT * FROM events_v0").to_arrow().column_names == ["id", "amount"]
    # deltalake cannot rename in place; a rewrite with the new schema is the rename here.
    renamed = session.sql("SELECT id, amount AS total, region FROM events").to_arrow()
    write_deltalake(path, renamed, mode="overwrite", schema_mode="overwrite")
    notes = session.sources.refresh_external("events")
    assert notes == ["column total added", "column amount dropped"]
    assert rows(session, "SELECT sum(total) AS s FROM events") == [{"s": 12.0}]
    assert rows(session, "SELECT sum(amount) AS s FROM events_v0") == [{"s": 7.5}]
    lake = session.sources.external_tables["events"]
    assert [s.version for s in lake.snapshots()] == [0, 1, 2]
    assert lake.to_arrow(version=1).column_names == ["id", "amount", "region"]


def test_a_delta_folder_path_and_read_only_queries(session, tmp_path):
    write_deltalake(tmp_path / "t", FIRST)
    lake = open_lake(str(tmp_path / "t"))
    assert lake.format == "delta" and lake.version == 0
    session.sources.connect_lake(f"delta://{tmp_path / 't'}", "facts")
    result = session.sql("SELECT max(amount) AS m FROM facts", read_only=True)
    assert result.to_arrow().to_pylist() == [{"m": 3.5}]


def test_bad_lake_targets_fail_clearly_and_keep_state(session, iceberg, tmp_path):
    _, options = iceberg
    session.sources.connect_lake("iceberg://local/db.sales", **options)
    failures = [
        lambda: session.sources.connect_lake(f"delta://{tmp_path / 'nothing'}"),
        lambda: session.sources.connect_lake("iceberg://local/db.nosuch", **options),
        lambda: session.sources.connect_lake("iceberg://local", **options),
        lambda: session.sources.connect_lake("iceberg://local/db.sales", snapshot=1, **options),
        lambda: session.sources.connect_lake(f"delta://{tmp_path}", colour="red"),
        lambda: open_lake(str(tmp_path)),
    ]
    write_deltalake(tmp_path / "broken", FIRST)
    for data_file in (tmp_path / "broken").glob("*.parquet"):
        data_file.unlink()
    failures.append(lambda: session.sources.connect_lake(f"delta://{tmp_path / 'broken'}"))
    for attempt in failures:
        with pytest.raises(ConnectionFailed) as caught:
            attempt()
        assert "\n" not in str(caught.value)
    assert list(session.sources.external_tables) == ["sales"]
    assert rows(session, "SELECT count(*) AS n FROM sales") == [{"n": 3}]


def test_what_connect_dispatches():
    assert external_kind("iceberg://local/db.sales") == "lake"
    assert external_kind("delta:///data/events") == "lake"
    assert external_kind("sc://cluster:15002") == "spark"
    assert external_kind("spark://local[4]") == "spark"
    assert external_kind("https://api.example.com/v1/items") == "api"
    assert external_kind("https://example.com/data/sales.parquet") is None
    assert external_kind("postgresql://u@h/db") is None
    assert table_name("delta:///data/events/") == "events"
    assert table_name("iceberg://local/db.sales") == "sales"
    assert table_name("https://api.example.com/v1/items?page=1") == "items"
