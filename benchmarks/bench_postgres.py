"""Fetching 1,000,000 rows x 4 columns from PostgreSQL into a pandas DataFrame.

A throwaway server (tools/pgserver.py) gets ``t (id bigint, amount double precision,
label text, ts timestamp)``; ``SELECT * FROM t`` is then fetched into pandas by:

* ours: ``%%sql pg`` in an IPython shell after ``%aiser connect <url> --name pg``;
* raw ADBC: ``adbc_driver_postgresql.dbapi`` cursor, ``fetch_arrow_table().to_pandas()``
  (and ``fetch_df()``), on a connection opened with ``autocommit=True`` as ours is;
* ``pandas.read_sql`` on a SQLAlchemy engine with psycopg2;
* JupySQL (``%sql``, autopandas, psycopg2) in its own process, since it also defines ``%sql``;
  it is timed inside that process, around the ``%sql SELECT`` alone.

Connections are opened before timing. Methods run in alternation (order rotated each round): best
of 7 for ours and raw ADBC, best of 3 for read_sql and JupySQL (seconds per run).

Targets (from the issue): JupySQL / ours >= 10x; ours / raw ADBC <= 1.3x.
read_sql / ours is reported without a target.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # tools/ from a checkout

from tools.pgserver import PostgresServer

ROWS = 1_000_000
ROUNDS = 7  # ours and raw ADBC (~0.3 s each)
SLOW_ROUNDS = 3  # read_sql and JupySQL (seconds each) run in the first 3 rounds only
QUERY = "SELECT * FROM t"
TARGET_JUPYSQL_RATIO = 10.0
TARGET_ADBC_RATIO = 1.3

CREATE = f"""
CREATE TABLE t AS
SELECT g::bigint AS id,
       (g % 10007) * 1.25::double precision AS amount,
       'label_' || (g % 1000) AS label,
       timestamp '2024-01-01' + g * interval '1 second' AS ts
FROM generate_series(1, {ROWS}) AS g;
VACUUM ANALYZE t;
"""

# JupySQL runs here, in a child process: one "go" line on stdin runs the query once and
# answers "RESULT {json}" on stdout (JupySQL may print other lines, which are skipped).
JUPYSQL_CHILD = """
import json, sys, time
from IPython.core.interactiveshell import InteractiveShell
shell = InteractiveShell.instance()
shell.run_line_magic("load_ext", "sql")
shell.run_line_magic("config", "SqlMagic.autopandas = True")
shell.run_line_magic("config", "SqlMagic.displaylimit = 0")
shell.run_line_magic("config", "SqlMagic.feedback = 0")
shell.run_line_magic("sql", sys.argv[1])
print("READY", flush=True)
for line in sys.stdin:
    started = time.perf_counter()
    frame = shell.run_line_magic("sql", sys.argv[2])
    seconds = time.perf_counter() - started
    answer = {"seconds": seconds, "shape": list(frame.shape), "type": type(frame).__name__}
    del frame
    print("RESULT " + json.dumps(answer), flush=True)
"""


class JupySQL:
    """JupySQL in a child process, timed there so process start-up is not counted."""

    def __init__(self, url: str):
        self.proc = subprocess.Popen(
            [sys.executable, "-c", JUPYSQL_CHILD, url, QUERY],
            stdin=subprocess.PIPE,
            stdout=subprocess.PIPE,
            text=True,
        )
        self._read("READY")

    def _read(self, prefix: str) -> str:
        assert self.proc.stdout is not None
        for line in self.proc.stdout:
            if line.startswith(prefix):
                return line[len(prefix) :].strip()
        raise RuntimeError(f"JupySQL child exited ({self.proc.wait()}) before {prefix}")

    def run(self) -> tuple[float, tuple[int, int]]:
        assert self.proc.stdin is not None
        self.proc.stdin.write("go\n")
        self.proc.stdin.flush()
        answer = json.loads(self._read("RESULT "))
        if answer["type"] != "DataFrame":
            raise RuntimeError(f"JupySQL returned a {answer['type']}, not a DataFrame")
        return answer["seconds"], tuple(answer["shape"])

    def close(self) -> None:
        assert self.proc.stdin is not None
        self.proc.stdin.close()
        self.proc.wait(timeout=30)


def psycopg2_url(url: str) -> str:
    """SQLAlchemy 2.1 defaults postgresql:// to psycopg 3; the bench extra has psycopg2."""
    return url.replace("postgresql://", "postgresql+psycopg2://", 1)


def timed(fetch: Callable[[], Any]) -> Callable[[], tuple[float, tuple[int, int]]]:
    """A runner that times `fetch` in this process and returns (seconds, frame shape)."""

    def run() -> tuple[float, tuple[int, int]]:
        started = time.perf_counter()
        frame = fetch()
        seconds = time.perf_counter() - started
        return seconds, frame.shape

    return run


def main() -> None:
    import adbc_driver_postgresql.dbapi as adbc
    import pandas as pd
    import sqlalchemy
    from IPython.core.interactiveshell import InteractiveShell

    with PostgresServer() as pg:
        started = time.perf_counter()
        pg.psql(CREATE)
        print(f"table t: {ROWS:,} rows x 4 columns, made in {time.perf_counter() - started:.1f} s")

        shell = InteractiveShell.instance()
        shell.run_line_magic("load_ext", "aiser_jupyter")
        shell.run_line_magic("aiser", f"connect {pg.url} --name pg")

        raw = adbc.connect(pg.url, autocommit=True)

        def adbc_arrow() -> pd.DataFrame:
            with raw.cursor() as cursor:
                cursor.execute(QUERY)
                return cursor.fetch_arrow_table().to_pandas()

        def adbc_fetch_df() -> pd.DataFrame:
            with raw.cursor() as cursor:
                cursor.execute(QUERY)
                return cursor.fetch_df()

        engine = sqlalchemy.create_engine(psycopg2_url(pg.url))
        with engine.connect():  # open the pool's connection before timing
            pass

        Runner = Callable[[], tuple[float, tuple[int, int]]]
        runners: dict[str, Runner] = {
            "ours (%%sql pg)": timed(lambda: shell.run_cell_magic("sql", "pg", QUERY)),
            "raw ADBC arrow->pandas": timed(adbc_arrow),
        }
        if hasattr(adbc.Cursor, "fetch_df"):
            runners["raw ADBC fetch_df()"] = timed(adbc_fetch_df)
        slow: dict[str, Runner] = {"pandas.read_sql": timed(lambda: pd.read_sql(QUERY, engine))}
        jupysql: JupySQL | None = None
        try:
            jupysql = JupySQL(psycopg2_url(pg.url))
            slow["JupySQL (%sql)"] = jupysql.run
        except Exception as exc:
            print(f"JupySQL unavailable ({exc}); pip install -e '.[bench]'")

        every = {**runners, **slow}
        best: dict[str, float] = {name: float("inf") for name in every}
        for round_ in range(ROUNDS):
            # Alternate, so drift hits every method alike, and rotate who goes first: with a
            # fixed order, whichever method ran first in a round came out ~10% slower.
            current = list(every if round_ < SLOW_ROUNDS else runners)
            shift = round_ % len(current)
            for name in current[shift:] + current[:shift]:
                seconds, shape = every[name]()
                if shape != (ROWS, 4):
                    raise RuntimeError(f"{name} returned shape {shape}, expected ({ROWS}, 4)")
                best[name] = min(best[name], seconds)

        if jupysql is not None:
            jupysql.close()
        raw.close()
        engine.dispose()

    ours = best["ours (%%sql pg)"]
    print(
        f"SELECT * FROM t into pandas, best of {ROUNDS} (read_sql, JupySQL: best of "
        f"{SLOW_ROUNDS}); every frame is ({ROWS:,}, 4)"
    )
    print(f"{'method':<26}{'seconds':>9}{'x ours':>9}")
    for name, seconds in best.items():
        print(f"{name:<26}{seconds:>9.3f}{seconds / ours:>8.2f}x")
    adbc_ratio = ours / best["raw ADBC arrow->pandas"]
    print(f"ours / raw ADBC: {adbc_ratio:.2f}x")
    if "raw ADBC fetch_df()" in best:
        print(f"ours / raw ADBC fetch_df(): {ours / best['raw ADBC fetch_df()']:.2f}x")
    print(f"read_sql / ours: {best['pandas.read_sql'] / ours:.1f}x")
    verdict = "met" if adbc_ratio <= TARGET_ADBC_RATIO else "MISSED"
    print(f"target ours / raw ADBC <= {TARGET_ADBC_RATIO}x: {verdict} ({adbc_ratio:.2f}x)")
    if "JupySQL (%sql)" in best:
        ratio = best["JupySQL (%sql)"] / ours
        print(f"JupySQL / ours: {ratio:.1f}x")
        verdict = "met" if ratio >= TARGET_JUPYSQL_RATIO else "MISSED"
        print(f"target JupySQL / ours >= {TARGET_JUPYSQL_RATIO:g}x: {verdict} ({ratio:.1f}x)")


if __name__ == "__main__":
    main()
