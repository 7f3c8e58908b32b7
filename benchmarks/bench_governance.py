"""What governance costs a query: access policies at compile time, and the audit log's write.

Model: examples/model/retail.yml over the sample data (load_sample), once as it is and once
with access policies added (orders and customers filtered to the requester's region, the
customers' e-mail masked). Query: revenue and count by status and product category.

1. Compile, policies vs none: ``Session.compile_query(query)`` as the owner on the plain
   model (baseline) vs ``compile_query(query, context=tenant)`` on the governed one; warm
   (the compiled-SQL cache answers, as for a dashboard's repeated queries) and cold (the
   cache emptied before each call: the full compile). 300 samples after 30 warm-ups each,
   alternating.
2. Audit: ``Session.query`` with the audit log on (SQLite WAL in a temporary folder) vs off
   (baseline), alternating, 200 samples after 20 warm-ups; and ``AuditLog.record`` alone.

Prints p50/p95 in ms and the ratios to the baselines. ``--profile`` profiles the governed
cold compile.
"""

from __future__ import annotations

import os
import sys
import tempfile
import time
from pathlib import Path

import yaml
from profiling import profile

RUNS, WARMUP = 300, 30
QUERY = {
    "measures": ["orders.revenue", "orders.count"],
    "dimensions": ["orders.status", "products.category"],
}
TENANT = {"user": "ann", "tenant": "North", "groups": ["analyst"]}
TENANT_FILTER = {
    "row_level": {
        "filters": [
            {"member": "region", "operator": "equals", "values": ["{ securityContext.tenant }"]}
        ]
    }
}


RETAIL = Path(__file__).resolve().parent.parent / "examples/model/retail.yml"


def governed_model() -> dict:
    model = yaml.safe_load(RETAIL.read_text())
    cubes = {c["name"]: c for c in model["cubes"]}
    cubes["orders"]["access_policy"] = [{"role": "*", **TENANT_FILTER}]
    cubes["customers"]["access_policy"] = [
        {"role": "*", **TENANT_FILTER, "masking": {"email": "hash"}}
    ]
    return model


def pct(samples: list[float], q: float) -> float:
    ordered = sorted(samples)
    return ordered[min(len(ordered) - 1, round(q / 100 * (len(ordered) - 1)))] * 1e3


def sample(calls: dict, runs: int = RUNS, warmup: int = WARMUP) -> dict[str, list[float]]:
    times: dict[str, list[float]] = {name: [] for name in calls}
    for i in range(warmup + runs):
        for name, call in calls.items():  # alternate, so drift hits every one alike
            started = time.perf_counter()
            call()
            if i >= warmup:
                times[name].append(time.perf_counter() - started)
    return times


def report(title: str, times: dict[str, list[float]], baseline: str) -> None:
    print(f"\n{title} (ms)")
    print(f"{'call':<48}{'p50':>9}{'p95':>9}")
    for name, samples in times.items():
        print(f"{name:<48}{pct(samples, 50):>9.3f}{pct(samples, 95):>9.3f}")
    for name, samples in times.items():
        if name != baseline:
            ratios = [pct(samples, q) / pct(times[baseline], q) for q in (50, 95)]
            print(f"ratio {name} / baseline: p50 {ratios[0]:.2f}x, p95 {ratios[1]:.2f}x")


def main() -> None:
    home = tempfile.mkdtemp(prefix="aiser-bench-")
    os.environ["AISER_HOME"] = home
    from aiser_jupyter.governance.audit import AuditLog
    from aiser_jupyter.sessions import Session

    plain, governed = Session(), Session()
    for session, model in ((plain, RETAIL), (governed, governed_model())):
        session.sources.load_sample()
        session.load_model(model)
    assert "North" in governed.semantic.compile_query(QUERY, context=TENANT)[1]

    def cold(session, **kwargs):
        session.model.compiled.clear()
        return session.semantic.compile_query(QUERY, **kwargs)

    compile_times = sample(
        {
            "baseline: plain model, warm": lambda: plain.semantic.compile_query(QUERY),
            "policies: governed model + context, warm": (
                lambda: governed.semantic.compile_query(QUERY, context=TENANT)
            ),
            "plain model, cold": lambda: cold(plain),
            "policies, cold": lambda: cold(governed, context=TENANT),
        }
    )
    report("1. compile_query", compile_times, "baseline: plain model, warm")
    cold_ratio = pct(compile_times["policies, cold"], 95) / pct(
        compile_times["plain model, cold"], 95
    )
    print(f"ratio policies cold / plain cold: p95 {cold_ratio:.2f}x")

    audited = Session()
    audited.sources.load_sample()
    audited.load_model(RETAIL)
    audited.governance.start_audit()
    query_times = sample(
        {
            "baseline: query, audit off": lambda: plain.query(QUERY),
            "query, audit on": lambda: audited.query(QUERY),
        },
        runs=200,
        warmup=20,
    )
    log = AuditLog(Path(home) / "alone.db")
    record = sample({"AuditLog.record alone": lambda: log.record("sql", "SELECT 1", rows=1)})
    report("2. audit", query_times | record, "baseline: query, audit off")
    extra = pct(query_times["query, audit on"], 50) - pct(
        query_times["baseline: query, audit off"], 50
    )
    print(
        f"audit write per query: {extra:.3f} ms at p50 (record alone p50 "
        f"{pct(record['AuditLog.record alone'], 50):.3f} ms)"
    )
    print(f"entries written and verified: {audited.governance.audit_log.verify()}")
    if "--profile" in sys.argv[1:]:
        profile(lambda: cold(governed, context=TENANT), RUNS)


if __name__ == "__main__":
    main()
