"""The offline planner: ``plan_question`` over a set of plain questions on the sample retail
model (examples/model/retail.yml, with its ValueIndex built once from the sample data).

Each sample times one ``plan_question(question, model, values)`` with ``time.perf_counter``;
every question is planned RUNS times after WARMUP warm-ups, alternating with the baseline:
``to_sql(model, plan.query)``, compiling the very query the planner wrote (the semantic
compiler's own work, uncached, which any answer pays anyway). Printed: p50/p95 over all
samples, the slowest question's p95, and the ratio to the baseline. Also, for information,
the first (cold) plan, which builds the model's vocabulary, and the ValueIndex build.

Target (from the issue): under 100 ms per question. ``--profile`` adds a cProfile of ours.
"""

from __future__ import annotations

import statistics
import sys
import time
from pathlib import Path

from profiling import profile

RUNS, WARMUP, TARGET_MS = 30, 5, 100.0
MODEL = Path(__file__).resolve().parents[1] / "examples" / "model" / "retail.yml"
QUESTIONS = [
    "total revenue",
    "how many orders",
    "How many customers do we have?",
    "revenue by region",
    "revenue per month in 2024",
    "orders by quarter",
    "revenue in March 2024",
    "top 5 products by revenue",
    "worst 3 regions by revenue",
    "revenue for enterprise customers",
    "how many completed orders",
    "revenue excluding returned orders",
    "average order value by segment",
    "average price by category",
    "buyers per year",
    "units sold by category",
    "sales by status",
    "monthly orders in 2023",
    "revenue between 2024-01-01 and 2024-03-31",
    "revenue since 2024-07-01",
    "how many customers signed up per year",
    "revenue by category in the West",
    "completed revenue by region",
    "number of orders by size",
    "top 3 categories by quantity in 2024",
    "revenue by region and segment",
    "weekly revenue in March 2024",
    "gross margin by category",
    "Which region has the most orders?",
    "orders per day in the last 90 days",
    "what is the meaning of life",
]


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1e3


def main() -> None:
    import aiser_jupyter as aiser
    from aiser_jupyter.agent.planner import ValueIndex, plan_question
    from aiser_jupyter.semantic.compiler import to_sql

    session = aiser.session()
    session.sources.load_sample()
    model = session.load_model(MODEL)
    started = time.perf_counter()
    values = ValueIndex.build(model, lambda q: session.query(q).to_arrow())
    build_ms = (time.perf_counter() - started) * 1e3
    started = time.perf_counter()
    plan_question(QUESTIONS[0], model, values)
    cold_ms = (time.perf_counter() - started) * 1e3

    ours: dict[str, list[float]] = {q: [] for q in QUESTIONS}
    base: dict[str, list[float]] = {q: [] for q in QUESTIONS}
    for question in QUESTIONS:
        plan = plan_question(question, model, values)
        for i in range(WARMUP + RUNS):
            started = time.perf_counter()
            plan_question(question, model, values)
            middle = time.perf_counter()
            if plan.status == "answered":  # a declined question has no query to compile
                to_sql(model, plan.query)
            ended = time.perf_counter()
            if i >= WARMUP:
                ours[question].append(middle - started)
                if plan.status == "answered":
                    base[question].append(ended - middle)
    every = [t for samples in ours.values() for t in samples]
    every_base = [t for samples in base.values() for t in samples]
    runs = f"{RUNS} runs each after {WARMUP} warm-ups"
    print(f"plan_question over {len(QUESTIONS)} questions, {runs} (ms)")
    print(f"{'call':<42}{'p50':>8}{'p95':>8}{'max':>8}")
    for name, samples in (
        ("ours: plan_question(question)", every),
        ("baseline: to_sql(model, plan.query)", every_base),
    ):
        print(f"{name:<42}" + "".join(f"{pct(samples, q):>8.3f}" for q in (50, 95, 100)))
    slowest = max(QUESTIONS, key=lambda q: pct(ours[q], 95))
    print(f"slowest question (p95 {pct(ours[slowest], 95):.3f} ms): {slowest!r}")
    for q in (50, 95):
        print(f"ratio ours / baseline at p{q}: {pct(every, q) / pct(every_base, q):.2f}x")
    medians = [statistics.median(s) * 1e3 for s in ours.values()]
    print(f"median of per-question medians: {statistics.median(medians):.3f} ms")
    print(f"(info) first plan, building the vocabulary: {cold_ms:.1f} ms")
    print(f"(info) ValueIndex.build on the sample data: {build_ms:.1f} ms")
    p95 = pct(every, 95)
    verdict = "met" if p95 < TARGET_MS else "MISSED"
    print(f"target under {TARGET_MS:g} ms per question (p95): {verdict} ({p95:.2f} ms)")
    if "--profile" in sys.argv[1:]:
        profile(lambda: [plan_question(q, model, values) for q in QUESTIONS], RUNS)


if __name__ == "__main__":
    main()
