"""The agent's own cost per question, apart from the model's thinking time.

1. Overhead with a model: ``session.ask`` against tools/fake_llm.py (a real OpenAI-protocol
   server on loopback, answering at once) scripted with one semantic-query tool call and an
   answer. Overhead = wall time - time inside model calls - time running the query. Baseline,
   same run: ``session.query`` of the same semantic query. Median of 20. Target: < 50 ms.
2. Prompt size on a 200-table database (8 columns each, plus the sample with its model):
   tokens (characters / 4) of the first request (messages + tool definitions), against
   the baseline of putting every table's columns in the prompt. Target: < 4,000 tokens.
3. Offline answers: ``session.ask(q, offline=True)`` over 8 plain questions (planner, query,
   narrative, chart); baseline ``session.query`` of the query the planner made. Median.
   Target: planner < 100 ms per question.
"""

from __future__ import annotations

import json
import statistics
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))

QUESTIONS = [
    "revenue by region",
    "how many orders per status",
    "top 5 product categories by revenue",
    "monthly revenue in 2024",
    "average order value by segment",
    "revenue of enterprise customers by quarter",
    "buyers per region last year",
    "quantity by category excluding returned",
]
QUERY = {"measures": ["orders.revenue"], "dimensions": ["customers.region"]}


def session_with_sample():
    import aiser_jupyter as aiser

    session = aiser.session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    session.agent.workbench.value_index()
    return session


def with_model(session) -> None:
    from tools.fake_llm import Call, FakeLLM

    with FakeLLM() as llm:
        session.settings.model = "openai/test-model"
        session.settings.api_base = llm.api_base
        overheads, direct = [], []
        for _ in range(22):
            llm.script(Call("run_semantic_query", {"query": QUERY}), "West leads.")
            started = time.perf_counter()
            answer = session.ask("revenue by region", new=True)
            total = time.perf_counter() - started
            assert not answer.offline, answer.notes
            spent = sum(s.seconds for s in answer.steps)
            overheads.append(total - spent)
            started = time.perf_counter()
            session.query(QUERY)
            direct.append(time.perf_counter() - started)
        overheads, direct = overheads[2:], direct[2:]  # the first calls import litellm
        model = statistics.median(s.seconds for s in answer.steps if s.kind == "model")
    ours, base = statistics.median(overheads), statistics.median(direct)
    print(
        f"agent overhead per question (model and query time excluded): {ours * 1000:.1f} ms "
        f"| session.query alone {base * 1000:.1f} ms | ratio {ours / base:.1f}x "
        f"| (a model call to the loopback server: {model * 1000:.1f} ms)"
    )
    print(f"  target < 50 ms: {'met' if ours < 0.05 else 'MISSED'}")


def prompt_size(session) -> None:
    from tools.fake_llm import FakeLLM

    con = session.connection().engine.con
    for i in range(200):
        columns = ", ".join(f"metric_{j}_{i} DOUBLE" for j in range(8))
        con.execute(f"CREATE OR REPLACE TABLE warehouse_table_{i} (id INTEGER, {columns})")
    with FakeLLM() as llm:
        session.settings.api_base = llm.api_base
        llm.script("ok")
        session.ask("revenue by region", new=True)
        body = llm.requests[0]
    ours = len(json.dumps(body["messages"]) + json.dumps(body["tools"])) // 4
    every = session.connection().columns().to_pylist()
    dump = "\n".join(f"{r['table']}.{r['column']} {r['type']}" for r in every)
    base = (len(dump) + len(json.dumps(body["tools"]))) // 4
    print(
        f"prompt on a {len({r['table'] for r in every})}-table database: {ours:,} tokens "
        f"| every column in the prompt: {base:,} tokens | ratio {ours / base:.2f}"
    )
    print(f"  target < 4,000 tokens: {'met' if ours < 4000 else 'MISSED'}")


def offline(session) -> None:
    ours, planner, base = [], [], []
    for _ in range(5):
        for question in QUESTIONS:
            started = time.perf_counter()
            answer = session.ask(question, offline=True, new=True)
            ours.append(time.perf_counter() - started)
            planner.append(next(s.seconds for s in answer.steps if s.name == "planner"))
            started = time.perf_counter()
            session.query(answer.query)
            base.append(time.perf_counter() - started)
    print(
        f"offline answer (plan, query, narrative, chart), median of {len(ours)}: "
        f"{statistics.median(ours) * 1000:.1f} ms, of which planner "
        f"{statistics.median(planner) * 1000:.2f} ms | session.query alone "
        f"{statistics.median(base) * 1000:.1f} ms | ratio "
        f"{statistics.median(ours) / statistics.median(base):.1f}x"
    )
    print(f"  target planner < 100 ms: {'met' if max(planner) < 0.1 else 'MISSED'}")


if __name__ == "__main__":
    import os
    import tempfile

    os.environ["AISER_HOME"] = tempfile.mkdtemp(prefix="aiser-bench-")
    os.environ["AISER_API_KEY"] = "sk-bench-key"  # the loopback server takes any key
    session = session_with_sample()
    offline(session)
    with_model(session)
    prompt_size(session)
