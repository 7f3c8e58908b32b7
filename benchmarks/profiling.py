"""Shared by the benchmarks' ``--profile`` option: where a call spends its time."""

from __future__ import annotations

import cProfile
import io
import pstats
from collections.abc import Callable


def profile(call: Callable[[], object], runs: int) -> None:
    """cProfile `call` over `runs` calls; print the top functions by own and total time."""
    profiler = cProfile.Profile()
    profiler.enable()
    for _ in range(runs):
        call()
    profiler.disable()
    for order in ("tottime", "cumulative"):
        out = io.StringIO()
        pstats.Stats(profiler, stream=out).strip_dirs().sort_stats(order).print_stats(20)
        print(out.getvalue())
