"""Parity with Cube itself: every query of tests/cube_parity/queries.yml compiled by Cube's own
schema compiler (tools/cube_oracle, classic planner) and by ours, both run on the same
PostgreSQL data, and the rows compared. One node process compiles the whole corpus.

A query Cube rejects must be rejected by us too (or be listed with its reason in the corpus).
"""

from __future__ import annotations

import json
import math
import shutil
import subprocess
from datetime import datetime
from decimal import Decimal
from itertools import pairwise
from pathlib import Path
from typing import Any

import pytest
import yaml

from aiser_jupyter.semantic.build import load_model
from aiser_jupyter.semantic.compiler import compile_query
from aiser_jupyter.semantic.query import Query, QueryFormatError

HERE = Path(__file__).parent / "cube_parity"
ORACLE = Path(__file__).parent.parent / "tools" / "cube_oracle"
MODELS = [HERE / "models", HERE.parent / "answers" / "models" / "subscriptions.yml"]
NOW = datetime(2024, 11, 15, 10, 30)
"""Relative date ranges ('last 3 months') resolve at this instant on both sides (UTC)."""

CORPUS: list[dict[str, Any]] = yaml.safe_load((HERE / "queries.yml").read_text())


def oracle(queries: list[dict[str, Any]], models: list[Path], tmp: Path) -> Any:
    """Cube's SQL and params for each query (or its error), from one node process."""
    node = shutil.which("node")
    if node is None or not (ORACLE / "node_modules").is_dir():
        pytest.fail(
            "Cube's compiler is not installed: run ./dev test (npm ci in tools/cube_oracle)"
        )
    path = tmp / "queries.json"
    path.write_text(json.dumps(queries))
    args = [node, str(ORACLE / "oracle.js"), str(path), *map(str, models)]
    done = subprocess.run(
        [*args, "--now", NOW.isoformat() + "Z"], capture_output=True, text=True, timeout=120
    )
    assert done.returncode == 0, done.stderr
    return json.loads(done.stdout)


@pytest.fixture(scope="session")
def cube(tmp_path_factory) -> list[dict[str, Any]]:
    answer = oracle([c["query"] for c in CORPUS], MODELS, tmp_path_factory.mktemp("cube"))
    assert isinstance(answer, list), answer
    return answer


@pytest.fixture(scope="session")
def model():
    """The same two model files as Cube reads, loaded by us as one model."""
    merged: dict[str, list] = {"cubes": [], "views": []}
    for path in [*sorted(MODELS[0].glob("*.yml")), MODELS[1]]:
        data = yaml.safe_load(path.read_text())
        for key in merged:
            merged[key] += data.get(key) or []
    return load_model(merged)


@pytest.fixture(scope="session")
def parity_db(pg_server):
    """A database of its own on the test server: the support tables and the subscriptions."""
    from adbc_driver_postgresql import dbapi

    from tools.eval_data import tables

    pg_server.psql("CREATE DATABASE cube_parity")
    pg_server.psql((HERE / "data.sql").read_text(), dbname="cube_parity")
    conn = dbapi.connect(pg_server.url.rsplit("/", 1)[0] + "/cube_parity", autocommit=True)
    with conn.cursor() as cursor:
        cursor.execute("SET TIME ZONE 'UTC'")
        for name, table in tables("subscriptions").items():
            cursor.adbc_ingest(name, table, mode="replace")
    yield conn
    conn.close()


def bind(sql: str, params: list[Any]) -> str:
    """Cube's SQL with each ``$n`` replaced by its value as a quoted literal: untyped, as the
    node driver sends it, so PostgreSQL infers its type from where it stands. The ``$n`` are
    found by sqlglot's tokenizer; the rest of the text stays as Cube wrote it."""
    from sqlglot.dialects.postgres import Postgres
    from sqlglot.tokens import TokenType

    tokens = Postgres().tokenize(sql)
    pieces, done = [], 0
    for sign, number in pairwise(tokens):
        if sign.token_type == TokenType.PARAMETER and number.start == sign.end + 1:
            given = params[int(number.text) - 1]
            text = "NULL" if given is None else "'" + str(given).replace("'", "''") + "'"
            pieces += [sql[done : sign.start], text]
            done = number.end + 1
    return "".join([*pieces, sql[done:]])


def run(conn, sql: str, params: list[Any] | None = None) -> tuple[list[str], list[tuple]]:
    """The column names and rows of `sql` (Cube's, with its `params` bound)."""
    with conn.cursor() as cursor:
        cursor.execute(bind(sql, params) if params else sql)
        table = cursor.fetch_arrow_table()
    return table.column_names, [tuple(row.values()) for row in table.to_pylist()]


def canonical(name: str) -> str:
    """Our column name as Cube aliases it: ``cube.member`` → ``cube__member``,
    ``cube.member.week`` → ``cube__member_week``."""
    cube_name, _, rest = name.partition(".")
    member, _, granularity = rest.partition(".")
    return f"{cube_name}__{member}" + (f"_{granularity}" if granularity else "")


def value(v: Any) -> Any:
    if isinstance(v, Decimal | float | int) and not isinstance(v, bool):
        return float(v)
    if isinstance(v, datetime):
        return v.replace(tzinfo=None)
    return v


def same(a: tuple, b: tuple) -> bool:
    """Equal rows; floats to 1e-9 (sums may be added in another order)."""
    return all(
        math.isclose(x, y, rel_tol=1e-9, abs_tol=1e-9)
        if isinstance(x, float) and isinstance(y, float)
        else x == y
        for x, y in zip(a, b, strict=True)
    )


def key(row: tuple) -> tuple:
    return tuple((v is None, str(type(v)), v if v is not None else 0) for v in row)


def rows_match(ours: list[tuple], theirs: list[tuple], ordered: bool) -> bool:
    if len(ours) != len(theirs):
        return False
    if not ordered:
        ours, theirs = sorted(ours, key=key), sorted(theirs, key=key)
    return all(same(a, b) for a, b in zip(ours, theirs, strict=True))


def ours_sql(model, query: dict[str, Any]) -> tuple[str, str | None]:
    parsed = Query.parse(query)
    sql = compile_query(model, parsed, "postgres", NOW).sql(dialect="postgres")
    total = None
    if parsed.total:
        total = compile_query(model, parsed, "postgres", NOW, for_total=True).sql("postgres")
    return sql, total


def answers(conn, model, case: dict[str, Any], theirs: dict[str, Any]) -> dict[str, Any]:
    """Both sides' rows (column order and names as Cube's) and totals, for comparison."""
    sql, total_sql = ours_sql(model, case["query"])
    columns, rows = run(conn, sql)
    cube_columns, cube_rows = run(conn, theirs["sql"], theirs["params"])
    names = [canonical(c) for c in columns]
    assert sorted(names) == sorted(cube_columns), (names, cube_columns)
    order = [cube_columns.index(n) for n in names]
    got = {
        "ours": [tuple(value(v) for v in r) for r in rows],
        "cube": [tuple(value(r[i]) for i in order) for r in cube_rows],
        "sql": sql,
    }
    if total_sql is not None:
        got["ours_total"] = run(conn, total_sql)[1][0][0]
        got["cube_total"] = run(conn, theirs["totalSql"], theirs["totalParams"])[1][0][0]
    return got


@pytest.mark.parametrize(
    "index", range(len(CORPUS)), ids=[c.get("id", str(i)) for i, c in enumerate(CORPUS)]
)
def test_rows_match_cube(index, cube, model, parity_db):
    """Identical rows, except where the corpus says why not: Cube rejects the query
    (`cube_rejects`; we reject it too when `ours_rejects`), Cube's SQL cannot run on this
    server (`cube_fails`), or Cube answers differently for the reason given (`differs`)."""
    case, theirs = CORPUS[index], cube[index]
    if "error" in theirs:
        assert case.get("cube_rejects"), f"Cube rejects it: {theirs['error']}"
        if case.get("ours_rejects"):
            with pytest.raises(QueryFormatError):
                ours_sql(model, case["query"])
        else:
            run(parity_db, ours_sql(model, case["query"])[0])
        return
    assert not case.get("cube_rejects"), "Cube compiles it now"
    if case.get("cube_fails"):
        with pytest.raises(Exception):  # noqa: B017 - PostgreSQL's own error
            run(parity_db, theirs["sql"], theirs["params"])
        run(parity_db, ours_sql(model, case["query"])[0])
        return
    got = answers(parity_db, model, case, theirs)
    same_rows = rows_match(got["ours"], got["cube"], ordered=bool(case["query"].get("order")))
    if case.get("differs"):
        assert not same_rows, "Cube gives our answer now: drop 'differs'"
        return
    assert same_rows, (
        f"\nours ({len(got['ours'])}): {got['ours'][:8]}\ncube ({len(got['cube'])}): "
        f"{got['cube'][:8]}\nour SQL:\n{got['sql']}\n"
        f"Cube's SQL:\n{theirs['sql']}\n{theirs['params']}"
    )
    assert got.get("ours_total") == got.get("cube_total")


def test_a_model_cube_refuses_warns_on_load(tmp_path):
    """A measure reading a cube whose join multiplies its own rows: Cube compiles the model
    but refuses every query of that measure; we load it with a warning that says so."""
    from aiser_jupyter.semantic.checks import NotPortableToCube

    folder = HERE / "not_portable"
    queries = [{"measures": ["teams.ticket_hours"]}, {"measures": ["teams.count"]}]
    refused, fine = oracle(queries, [folder], tmp_path)
    assert "row multiplication" in refused["error"]
    assert "error" not in fine
    with pytest.warns(NotPortableToCube, match=r"teams\.ticket_hours .*will not port to Cube"):
        load_model(folder / "teams.yml")
