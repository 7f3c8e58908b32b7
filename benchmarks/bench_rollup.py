"""A dashboard query answered from a rollup pre-aggregation vs the same query on the raw table.

The fact table ``events`` (10,000,000 rows: event_time over 2023-2024, user_id, country
among 20, device among 3, amount) is made in the Session's default DuckDB with
``range()``. The Cube model has measures count, sum(amount) and avg(amount), and a rollup
by day x country x device (about 44,000 rows). The query is a typical dashboard one:
count, revenue and average amount by month and country over 2024 (a dateRange on day
boundaries, so the rollup may answer it).

Timed, each ``REPEATS`` times, the repeats alternating between them (best and median):

* ours, rollup: ``session.query(q)`` with the rollup already built
  (``refresh_pre_aggregations()``, whose time is reported separately); the Result must
  name the pre-aggregation;
* ours, raw: ``session.query(q)`` in a Session whose model has no ``pre_aggregations``
  (sharing the same DuckDB connection, so the same table);
* baseline, for information: the SQL that the raw query compiles to, run straight on
  DuckDB (``con.sql(sql).to_arrow_table()``), so ours raw - it is our own overhead;
* info: the SQL the rollup hit runs, straight on the rollup store's DuckDB, so ours
  rollup - it is our own overhead on a hit (matching, the freshness check, compiling).

All four must give the same numbers (rows sorted, values compared with a tolerance).

Target (from the issue): a rollup hit on a 10,000,000-row fact table at least 20x faster
than the same query on the raw table (ours raw / ours rollup, median).

``--rows N`` makes a smaller table (a quick check; the target is only judged at 10M).
"""

from __future__ import annotations

import argparse
import copy
import math
import numbers
import statistics
import time
from collections.abc import Callable
from typing import Any

ROWS = 10_000_000
REPEATS = 7
TARGET_RATIO = 20.0
COUNTRIES = [
    "US", "GB", "DE", "FR", "ES", "IT", "NL", "SE", "PL", "BR",
    "MX", "CA", "IN", "JP", "KR", "AU", "ZA", "NG", "EG", "TR",
]  # fmt: skip
DEVICES = ["desktop", "mobile", "tablet"]
TWO_YEARS_S = 731 * 86_400  # 2023-01-01 up to 2025-01-01 (2024 is a leap year)

MODEL: dict[str, Any] = {
    "cubes": [
        {
            "name": "events",
            "sql_table": "events",
            "measures": [
                {"name": "count", "type": "count"},
                {"name": "revenue", "type": "sum", "sql": "amount"},
                {"name": "average_amount", "type": "avg", "sql": "amount"},
            ],
            "dimensions": [
                {"name": "event_id", "sql": "event_id", "type": "number", "primary_key": True},
                {"name": "event_time", "sql": "event_time", "type": "time"},
                {"name": "country", "sql": "country", "type": "string"},
                {"name": "device", "sql": "device", "type": "string"},
            ],
            "pre_aggregations": [
                {
                    "name": "daily_by_country_device",
                    "measures": ["count", "revenue", "average_amount"],
                    "dimensions": ["country", "device"],
                    "time_dimension": "event_time",
                    "granularity": "day",
                }
            ],
        }
    ]
}
QUERY: dict[str, Any] = {
    "measures": ["events.count", "events.revenue", "events.average_amount"],
    "dimensions": ["events.country"],
    "timeDimensions": [
        {
            "dimension": "events.event_time",
            "granularity": "month",
            "dateRange": ["2024-01-01", "2024-12-31"],
        }
    ],
}


def make_events(session: Any, rows: int) -> float:
    """Create the fact table in the session's default DuckDB; seconds taken."""
    countries = ", ".join(f"'{c}'" for c in COUNTRIES)
    devices = ", ".join(f"'{d}'" for d in DEVICES)
    started = time.perf_counter()
    session.sql(
        f"""
        CREATE OR REPLACE TABLE events AS
        SELECT
            range AS event_id,
            TIMESTAMP '2023-01-01' + to_seconds((hash(range) % {TWO_YEARS_S})::BIGINT)
                AS event_time,
            (hash(range * 3) % 1000000)::INTEGER AS user_id,
            ([{countries}])[(hash(range * 7) % {len(COUNTRIES)})::INTEGER + 1] AS country,
            ([{devices}])[(hash(range * 11) % {len(DEVICES)})::INTEGER + 1] AS device,
            (hash(range * 13) % 100000) / 100.0 AS amount
        FROM range({rows})
        """
    )
    return time.perf_counter() - started


def rows_of(table: Any) -> list[tuple[Any, ...]]:
    """Rows with the columns in name order, sorted by the non-numeric (key) columns."""
    names = sorted(table.column_names)
    data = table.select(names).to_pylist()
    keyed = [tuple(row[n] for n in names) for row in data]
    numeric = [isinstance(v, numbers.Number) for v in keyed[0]] if keyed else []
    return sorted(
        keyed, key=lambda r: tuple(str(v) for v, num in zip(r, numeric, strict=True) if not num)
    )


def same_numbers(a: Any, b: Any) -> str | None:
    """None when the two tables agree (floats within a relative 1e-9); else why not."""
    if sorted(a.column_names) != sorted(b.column_names):
        return f"columns differ: {a.column_names} vs {b.column_names}"
    left, right = rows_of(a), rows_of(b)
    if len(left) != len(right):
        return f"{len(left)} rows vs {len(right)}"
    for x, y in zip(left, right, strict=True):
        for u, v in zip(x, y, strict=True):
            if isinstance(u, numbers.Number) and isinstance(v, numbers.Number):
                if not math.isclose(float(u), float(v), rel_tol=1e-9, abs_tol=1e-6):  # type: ignore[arg-type]
                    return f"rows differ: {x} vs {y}"
            elif u != v:
                return f"rows differ: {x} vs {y}"
    return None


def main() -> None:
    from aiser_jupyter.config import Settings
    from aiser_jupyter.sessions import Session

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=ROWS)
    parser.add_argument("--repeats", type=int, default=REPEATS)
    args = parser.parse_args()

    settings = Settings()  # defaults: in-memory DuckDB and rollup cache, no user config
    rolled = Session(settings)
    made_s = make_events(rolled, args.rows)
    raw = Session(settings)  # the same DuckDB connection, a model without rollups
    raw.sources.connections[settings.default_connection] = rolled.sources.default_duckdb()

    rolled.load_model(copy.deepcopy(MODEL))
    plain = copy.deepcopy(MODEL)
    del plain["cubes"][0]["pre_aggregations"]
    raw.load_model(plain)

    started = time.perf_counter()
    built = rolled.semantic.refresh_pre_aggregations()
    build_s = time.perf_counter() - started
    rollup_rows = rolled.semantic.preaggregations().engine.execute(
        'SELECT count(*) FROM "events__daily_by_country_device"'
    )
    rollup_rows = rollup_rows.column(0)[0].as_py()

    sql = raw.semantic.query_sql(QUERY)
    con = rolled.sources.default_duckdb().engine.con  # type: ignore[attr-defined]

    def ours_rollup() -> Any:
        result = rolled.query(QUERY)
        if result.pre_aggregation != "events.daily_by_country_device":
            got = result.pre_aggregation
            raise RuntimeError(f"the rollup did not answer (pre_aggregation={got!r})")
        return result.to_arrow()

    def ours_raw() -> Any:
        result = raw.query(QUERY)
        if result.pre_aggregation is not None:
            raise RuntimeError("the raw model answered from a pre-aggregation")
        return result.to_arrow()

    candidates: dict[str, Callable[[], Any]] = {
        "ours, rollup: session.query(q)": ours_rollup,
        "ours, raw: session.query(q)": ours_raw,
        "baseline: con.sql(raw sql)": lambda: con.sql(sql).to_arrow_table(),
    }
    answers = {name: call() for name, call in candidates.items()}  # warm up, and check
    rollup_sql = rolled.query(QUERY).sql
    store = rolled.semantic.preaggregations().engine.con  # type: ignore[attr-defined]
    candidates["info: store.sql(rollup sql)"] = lambda: store.sql(rollup_sql).to_arrow_table()
    answers["info: store.sql(rollup sql)"] = candidates["info: store.sql(rollup sql)"]()
    names = list(candidates)
    for name in names[1:]:
        why = same_numbers(answers[names[0]], answers[name])
        if why is not None:
            raise RuntimeError(f"{names[0]} and {name} disagree: {why}")

    times: dict[str, list[float]] = {name: [] for name in candidates}
    for _ in range(args.repeats):
        for name, call in candidates.items():  # alternate, so drift hits every one alike
            started = time.perf_counter()
            call()
            times[name].append(time.perf_counter() - started)

    best = {name: min(t) for name, t in times.items()}
    median = {name: statistics.median(t) for name, t in times.items()}
    rollup_name = names[0]
    print(
        f"events: {args.rows:,} rows, made in {made_s:.1f} s; rollup {', '.join(built)} "
        f"({rollup_rows:,} rows) built in {build_s:.2f} s"
    )
    print(
        f"query: count, revenue, avg by month x country over 2024 "
        f"({answers[rollup_name].num_rows} rows); {args.repeats} repeats, alternating; "
        "answers equal"
    )
    print(f"{'call':<34}{'best ms':>10}{'median ms':>11}{'it / rollup':>13}")
    for name in candidates:
        ratio = median[name] / median[rollup_name]
        print(f"{name:<34}{best[name] * 1e3:>10.2f}{median[name] * 1e3:>11.2f}{ratio:>12.1f}x")
    for path, direct in ((names[1], names[2]), (rollup_name, names[3])):
        overhead = median[path] - median[direct]
        label = path.split(":")[0]
        print(f"our own overhead, {label} (median - its SQL direct): {overhead * 1e3:.1f} ms")
    for label, stat in (("median", median), ("best", best)):
        ratio = stat[names[1]] / stat[rollup_name]
        verdict = "met" if ratio >= TARGET_RATIO else "MISSED"
        print(f"raw / rollup ({label}): {ratio:.1f}x; target >= {TARGET_RATIO:.0f}x: {verdict}")
    if args.rows != ROWS:
        print(f"(the target is judged at {ROWS:,} rows; this run had {args.rows:,})")
    rolled.close()


if __name__ == "__main__":
    main()
