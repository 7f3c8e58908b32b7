"""How far ``%%ask`` (offline) can be trusted, per model of the evaluation sets in
tests/answers/: answered right, declined right, wrong or unasked numbers shown (must be
zero), coverage of the answerable questions, and the planner's p50/p95 time per question.

The baseline in the same run is the semantic compiler alone (``to_sql(model, …)`` of each
answered query), so the planner's time reads as a ratio to work every answer needs anyway.

    .venv/bin/python benchmarks/bench_answers.py [SET ...] [--failures]
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))


def main(argv: list[str]) -> int:
    import aiser_jupyter as aiser
    from aiser_jupyter.semantic.compiler import to_sql
    from tools.answer_eval import load_set, score_set, set_names
    from tools.eval_data import load

    show = "--failures" in argv
    names = [a for a in argv if not a.startswith("--")] or set_names()
    print(
        f"{'set':<14}{'asked':>6}{'right':>7}{'declined':>10}{'WRONG':>7}{'missed':>8}"
        f"{'coverage':>10}{'p50 ms':>8}{'p95 ms':>8}{'compile p50':>13}"
    )
    worst = 0
    for name in names:
        model_name, cases = load_set(name)
        session = aiser.session()
        load(session, model_name)
        score = score_set(session, name, cases)
        times = sorted(o.planner_ms for o in score.outcomes)
        compile_ms = []
        for case in cases:
            plan = session.ask(case.question, offline=True, new=True, run=False).plan
            if plan is not None and plan.status == "answered":
                started = time.perf_counter()
                to_sql(session.model, plan.query)
                compile_ms.append((time.perf_counter() - started) * 1000)
        p95 = times[max(0, int(len(times) * 0.95) - 1)]
        missed = score.count("declined wrongly") + score.count("no suggestion")
        print(
            f"{name:<14}{len(score.outcomes):>6}{score.count('right'):>7}"
            f"{score.count('declined right'):>10}{score.shown_wrong:>7}{missed:>8}"
            f"{score.coverage:>10.1%}{statistics.median(times):>8.2f}{p95:>8.2f}"
            f"{statistics.median(compile_ms or [0]):>13.2f}"
        )
        worst = max(worst, score.shown_wrong)
        if show:
            for o in score.failures():
                print(f"   {o.outcome:<16} {o.status:<12} {o.question}\n      {o.detail[:300]}")
        session.close()
    print(
        f"target: WRONG = 0 on every set ({'met' if worst == 0 else 'MISSED'}); "
        "coverage >= 90%; planner p95 < 100 ms"
    )
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
