"""What encryption at rest costs on the two hot paths, plain and encrypted in the same run.

1. A cache hit: ``session.router.run`` of a repeated query over a Parquet file (10,000 rows),
   answered from the result cache. Target: encrypted within 1.3x of plain. Also the disk
   tier alone (a fresh kernel's first hit: the Arrow file memory-mapped, or read and
   decrypted with AES-256-GCM), reported, not targeted.
2. A memory search: ``Memory.search`` over 2,000 entries (SQLite FTS5 plain, SQLCipher
   encrypted). Target: encrypted within 1.3x of plain.
Medians of repeated runs, after a warm-up run; each mode in its own AISER_HOME.
"""

from __future__ import annotations

import os
import statistics
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

PASSPHRASE = "bench passphrase"
WORDS = [
    "revenue",
    "region",
    "customer",
    "order",
    "refund",
    "churn",
    "segment",
    "margin",
    "forecast",
    "quarter",
]


def median_ms(fn: Callable[[], object], repeat: int, number: int) -> float:
    fn()
    times = []
    for _ in range(repeat):
        start = time.perf_counter()
        for _ in range(number):
            fn()
        times.append((time.perf_counter() - start) / number)
    return statistics.median(times) * 1000


def mode(encrypted: bool, root: Path) -> None:
    home = root / ("encrypted" if encrypted else "plain")
    os.environ["AISER_HOME"] = str(home)
    if encrypted:
        os.environ["AISER_ENCRYPTION_KEY"] = PASSPHRASE
    else:
        os.environ.pop("AISER_ENCRYPTION_KEY", None)


def cache_hit(encrypted: bool, root: Path, parquet: Path) -> tuple[float, float]:
    from aiser_jupyter.engines.cache import ResultCache
    from aiser_jupyter.sessions import Session

    mode(encrypted, root)
    session = Session()
    session.connect(str(parquet), name="sales")
    query = "SELECT kind, amount, note FROM sales WHERE amount > 10"
    first = session.router.run(query)
    assert not first.plan.cached and session.router.run(query).plan.cached
    hit = median_ms(lambda: session.router.run(query), repeat=15, number=20)
    cache = session.router.result_cache
    key, version = next(iter(cache._memory.items()))[0], next(iter(cache._memory.values())).version

    def from_disk() -> None:
        fresh = ResultCache(cache.directory)
        assert fresh._read_disk(key, version) is not None

    disk = median_ms(from_disk, repeat=15, number=20)
    session.close()
    return hit, disk


def memory_search(encrypted: bool, root: Path) -> float:
    from aiser_jupyter.memory import Memory

    mode(encrypted, root)
    memory = Memory.open(root / ("encrypted" if encrypted else "plain") / "memory.db")
    for i in range(2000):
        a, b, c = WORDS[i % 10], WORDS[(i * 3) % 10], WORDS[(i * 7) % 10]
        memory.record_episode(f"{a} by {b} for {c} number {i}", f"SELECT {a}_{i} FROM {b}")
    result = median_ms(lambda: memory.search("revenue by region churn"), repeat=15, number=20)
    memory.close()
    return result


def main() -> None:
    import pyarrow as pa
    import pyarrow.parquet as pq

    root = Path(tempfile.mkdtemp(prefix="bench-protection-"))
    parquet = root / "sales.parquet"
    n = 10_000
    pq.write_table(
        pa.table(
            {
                "kind": [WORDS[i % 10] for i in range(n)],
                "amount": [float(i % 97) for i in range(n)],
                "note": [f"customer-{i}@example.org" for i in range(n)],
            }
        ),
        parquet,
    )
    rows = []
    cache_hit(False, root, parquet)  # warm-up: imports, DuckDB, the file in the page cache
    plain_hit, plain_disk = cache_hit(False, root / "2", parquet)
    sealed_hit, sealed_disk = cache_hit(True, root / "2", parquet)
    rows.append(("cache hit (router.run)", plain_hit, sealed_hit, True))
    rows.append(("cache hit from disk (fresh kernel)", plain_disk, sealed_disk, False))
    rows.append(
        (
            "memory search, 2,000 entries",
            memory_search(False, root),
            memory_search(True, root),
            True,
        )
    )
    print(f"{'':38} {'plain ms':>9} {'encrypted ms':>13} {'ratio':>6}  target")
    for name, plain, sealed, targeted in rows:
        verdict = ("ok" if sealed / plain <= 1.3 else "MISSED") if targeted else "-"
        print(f"{name:38} {plain:9.3f} {sealed:13.3f} {sealed / plain:6.2f}  {verdict}")


if __name__ == "__main__":
    main()
