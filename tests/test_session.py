"""The Python API: connect anything, query it, get a Result; bad input gets a clear error."""

from __future__ import annotations

import json

import duckdb
import pandas as pd
import polars as pl
import pyarrow as pa
import pytest

import aiser_jupyter as aiser
from aiser_jupyter.errors import (
    ConnectionFailed,
    ParameterError,
    QueryError,
    QueryInterrupted,
    UnknownConnection,
)

ROWS = [
    {"id": 1, "city": "Oslo", "temp": -3.5},
    {"id": 2, "city": "Lima", "temp": 19.0},
    {"id": 3, "city": "Pune", "temp": 31.25},
]


def _city_temps(connection=None):
    return aiser.sql("SELECT city, temp FROM cities ORDER BY id", connection).df.values.tolist()


EXPECTED = [[r["city"], r["temp"]] for r in ROWS]


@pytest.mark.parametrize("suffix", ["csv", "parquet", "json", "ndjson", "xlsx"])
def test_connect_each_file_format(tmp_path, suffix):
    frame = pd.DataFrame(ROWS)
    path = tmp_path / f"cities.{suffix}"
    if suffix == "csv":
        frame.to_csv(path, index=False)
    elif suffix == "parquet":
        frame.to_parquet(path)
    elif suffix == "json":
        path.write_text(json.dumps(ROWS))
    elif suffix == "ndjson":
        path.write_text("\n".join(json.dumps(r) for r in ROWS))
    else:
        frame.to_excel(path, index=False)
    connection = aiser.connect(str(path))
    assert connection.name == "duckdb"
    assert _city_temps() == EXPECTED


def test_connect_a_glob_of_parquet_files(tmp_path):
    for part in range(3):
        pd.DataFrame({"part": [part] * (part + 1)}).to_parquet(tmp_path / f"events_{part}.parquet")
    aiser.connect(str(tmp_path / "events_*.parquet"))
    got = aiser.sql("SELECT part, count(*) AS n FROM events GROUP BY 1 ORDER BY 1").df
    assert got.values.tolist() == [[0, 1], [1, 2], [2, 3]]


@pytest.mark.parametrize(
    "make", [pd.DataFrame, pl.DataFrame, pa.Table.from_pylist], ids=["pandas", "polars", "arrow"]
)
def test_connect_in_memory_frames(make):
    aiser.connect(make(ROWS), name="cities")
    assert _city_temps() == EXPECTED


def test_frames_get_distinct_default_names():
    aiser.connect(pd.DataFrame({"a": [1]}))
    aiser.connect(pd.DataFrame({"a": [2, 3]}))
    assert aiser.sql("SELECT (SELECT sum(a) FROM frame_1) + (SELECT sum(a) FROM frame_2) AS s").df[
        "s"
    ].tolist() == [6]


def test_result_api():
    result = aiser.sql("SELECT range AS n, 'x' || range AS label FROM range(4)")
    assert result.sql == "SELECT range AS n, 'x' || range AS label FROM range(4)"
    assert result.connection == "duckdb"
    assert result.elapsed > 0
    assert len(result) == 4
    assert result.to_arrow().column("label").to_pylist() == ["x0", "x1", "x2", "x3"]
    assert result.df["n"].tolist() == [0, 1, 2, 3]
    assert result.to_polars()["n"].to_list() == [0, 1, 2, 3]
    html = result._repr_html_()
    assert "4 rows × 2 columns" in html and "<table" in html


def test_params_positional_and_named():
    assert aiser.sql("SELECT $1 + $2 AS s", params=[40, 2]).df["s"].tolist() == [42]
    assert aiser.sql("SELECT :a * :b AS p", params={"a": 6, "b": 7}).df["p"].tolist() == [42]
    with pytest.raises(ParameterError, match=":b not defined"):
        aiser.sql("SELECT :a * :b AS p", params={"a": 6})


def test_duckdb_file_database_persists(tmp_path):
    path = tmp_path / "shop.duckdb"
    aiser.connect(f"duckdb:///{path}", name="shop")
    aiser.sql("CREATE TABLE items AS SELECT 5 AS qty")
    aiser.session().sources.disconnect("shop")
    assert duckdb.connect(str(path)).sql("SELECT qty FROM items").fetchall() == [(5,)]


def test_sqlite_through_sqlalchemy(tmp_path):
    import sqlite3

    path = tmp_path / "legacy.db"
    with sqlite3.connect(path) as db:
        db.execute("CREATE TABLE cities (id INTEGER, city TEXT, temp REAL)")
        db.executemany("INSERT INTO cities VALUES (:id, :city, :temp)", ROWS)
    connection = aiser.connect(f"sqlite:///{path}")
    assert (connection.name, connection.kind) == ("legacy", "sqlalchemy")
    assert _city_temps("legacy") == EXPECTED
    assert aiser.sql("SELECT city FROM cities WHERE temp > :t", params={"t": 0}).df[
        "city"
    ].tolist() == ["Lima", "Pune"]
    assert aiser.session().sources.schema("legacy")["column"].tolist() == ["id", "city", "temp"]


@pytest.mark.parametrize(
    "target, message",
    [
        ("postgresql://u:pw@host:notaport/db", "Malformed URL"),
        ("no/such/file.parquet", "No file matches"),
        ("report.docx", "No file matches"),
        ("bogus+driver://x", "Cannot connect"),
    ],
)
def test_bad_targets_are_clear_errors(target, message):
    with pytest.raises(ConnectionFailed, match=message):
        aiser.connect(target)


def test_unreadable_suffix(tmp_path):
    (tmp_path / "notes.docx").write_text("hi")
    with pytest.raises(ConnectionFailed, match="Don't know how to read"):
        aiser.connect(str(tmp_path / "notes.docx"))


def test_failures_lose_nothing(tmp_path):
    aiser.connect(pd.DataFrame(ROWS), name="cities")
    aiser.sql("SELECT 1 AS v", save="one", execute=False)
    for bad in (
        lambda: aiser.connect("nope.csv"),
        lambda: aiser.sql("SELEC 1"),
        lambda: aiser.sql("SELECT 1", connection="ghost"),
    ):
        with pytest.raises((ConnectionFailed, QueryError, UnknownConnection)):
            bad()
    assert _city_temps() == EXPECTED
    assert aiser.sql("SELECT v FROM one").df["v"].tolist() == [1]


def test_snippet_cycle_is_reported():
    session = aiser.session()
    session.snippets.save("a", "SELECT * FROM b", "duckdb")
    session.snippets.save("b", "SELECT * FROM a", "duckdb")
    with pytest.raises(ParameterError, match="cycle"):
        aiser.sql("SELECT * FROM a")


def test_parameters_bind_in_a_query_that_uses_a_snippet():
    """A snippet is composed as a CTE by sqlglot; ``:name`` in the snippet and in the query
    still binds (DuckDB's writer would have turned it into ``$name``)."""
    aiser.connect(pd.DataFrame({"v": range(10)}), name="numbers")
    aiser.sql("SELECT v FROM numbers WHERE v >= :low", save="above", execute=False)
    got = aiser.sql("SELECT count(*) AS n FROM above WHERE v < :high", params={"low": 3, "high": 8})
    assert got.df["n"].tolist() == [len([v for v in range(10) if 3 <= v < 8])]


def test_a_snippet_must_be_one_query():
    with pytest.raises(QueryError, match="single query"):
        aiser.sql("CREATE TABLE z (v INT)", save="z", execute=False)


def test_interrupting_a_duckdb_query_stops_it(interrupt_soon):
    interrupt_soon(0.5)
    with pytest.raises(QueryInterrupted):
        # ~10 s on this machine when not interrupted: a missed interrupt fails, never hangs
        aiser.sql("SELECT count(*) FROM range(3000000000) a WHERE a.range % 7 = 3")
    assert aiser.sql("SELECT 1 AS ok").df["ok"].tolist() == [1]


def test_no_extension_is_downloaded():
    with pytest.raises(QueryError, match="excel"):
        aiser.sql("SELECT * FROM read_xlsx('x.xlsx')")


def test_connections_toml_and_environment_variables(tmp_path, monkeypatch):
    db = tmp_path / "warehouse.duckdb"
    duckdb.connect(str(db)).execute("CREATE TABLE kpi AS SELECT 99 AS v").close()
    home = tmp_path / "aiser-home"
    home.mkdir(exist_ok=True)
    (home / "connections.toml").write_text(f'[wh]\nurl = "duckdb:///${{WH_DIR}}/{db.name}"\n')
    monkeypatch.setenv("WH_DIR", str(tmp_path))
    connection = aiser.connect("wh")
    assert connection.name == "wh"
    assert aiser.sql("SELECT v FROM kpi").df["v"].tolist() == [99]


def test_broken_connections_toml_names_the_file(tmp_path):
    home = tmp_path / "aiser-home"
    home.mkdir(exist_ok=True)
    (home / "connections.toml").write_text("[wh\nurl = 1\n")
    with pytest.raises(ConnectionFailed, match=r"connections\.toml"):
        aiser.connect("wh")


def test_reconnecting_a_name_replaces_it(tmp_path):
    aiser.connect(f"duckdb:///{tmp_path}/a.duckdb", name="db")
    aiser.sql("CREATE TABLE marker AS SELECT 'a' AS v")
    aiser.connect(f"duckdb:///{tmp_path}/b.duckdb", name="db")
    assert list(aiser.session().sources.connections) == ["db"]
    with pytest.raises(QueryError, match="marker"):
        aiser.sql("SELECT v FROM marker")


def test_the_embedded_duckdb_name_is_reserved(tmp_path):
    with pytest.raises(ConnectionFailed, match="embedded DuckDB"):
        aiser.connect(f"sqlite:///{tmp_path}/x.db", name="duckdb")
    assert aiser.sql("SELECT 1 AS v").connection == "duckdb"


def test_caption_speaks_english():
    assert aiser.sql("SELECT 1 AS a").caption().startswith("1 row × 1 column · duckdb")


def test_views_hear_of_changes_and_a_broken_view_is_dropped():
    session = aiser.session()
    heard: list[str] = []
    stop = session.on_change(heard.append)

    def broken(what: str) -> None:
        raise RuntimeError("a view that fails")

    session.on_change(broken)
    session.connect("duckdb:///:memory:", name="scratch")
    session.sql("SELECT 1", "scratch")
    session.load_model(
        {
            "cubes": [
                {"name": "t", "sql": "SELECT 1 AS x", "measures": [{"name": "n", "type": "count"}]}
            ]
        }
    )
    session.sources.disconnect("scratch")
    assert heard == ["connections", "history", "model", "connections"]
    assert broken not in session._listeners
    stop()
    session.sql("SELECT 2")
    assert heard[-1] == "connections"


def test_a_long_duckdb_query_says_how_it_is_doing(capsys):
    session = aiser.session()
    engine = session.connection().engine
    engine.watch.delay = 0.2
    engine.con.execute(
        "CREATE TABLE big AS SELECT range AS a, range % 997 AS b FROM range(20000000)"
    )
    capsys.readouterr()
    session.sql("SELECT b, count(DISTINCT a) FROM big GROUP BY b")
    printed = capsys.readouterr().out
    assert "\rDuckDB: " in printed and " s" in printed
    assert printed.endswith("\r")  # the line is wiped once the query is done
    session.sql("SELECT 42")
    assert capsys.readouterr().out == ""  # a quick query shows nothing
