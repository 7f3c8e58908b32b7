"""Answers with no language model: the deterministic planner, the semantic layer, and the
numbers told by ``narrate``. Used when no model is configured or reachable, or asked for."""

from __future__ import annotations

import json
import time
from typing import Any

from aiser_jupyter.agent.answer import Answer
from aiser_jupyter.agent.loop import Step
from aiser_jupyter.agent.narrate import narrate
from aiser_jupyter.agent.planner import Plan, plan_question


def answer_offline(
    session: Any,
    question: str,
    previous: Answer | None = None,
    glossary: dict[str, str] | None = None,
    run: bool = True,
) -> Answer:
    """Plan `question` over the session's semantic model (drafted from the data if none is
    loaded), run it, and say in numbers what came back."""
    steps: list[Step] = []
    started = time.perf_counter()
    if session.model is None:
        model = session.auto_model_load()
        steps.append(_step("automodel", f"drafted a model of {len(model.cubes)} cubes", started))
    started = time.perf_counter()
    values = session.value_index()
    steps.append(_step("values", "values of the model's small dimensions", started))
    started = time.perf_counter()
    earlier: Plan | None = previous.plan if previous is not None else None
    plan = plan_question(question, session.model, values, earlier, list((glossary or {}).items()))
    steps.append(_step("planner", _compact(plan.query), started))
    connection, sql = session.compile_query(plan.query)
    notes = plan.explain().splitlines()
    answer = Answer(
        question,
        "",
        sql=sql,
        connection=connection,
        query=plan.query,
        steps=steps,
        offline=True,
        notes=notes,
        plan=plan,
    )
    if not run:
        answer.text = "Not run (--no-run): the query and its SQL are below."
        return answer
    started = time.perf_counter()
    answer.result = session.query(plan.query)
    steps.append(_step("query", f"{answer.result.rowcount:,} rows", started))
    answer.text = narrate(answer.result.df, answer.result.annotation, session.model)
    if answer.result.rowcount:
        answer.chart = session.chart(answer.result)
    return answer


def _step(name: str, detail: str, started: float) -> Step:
    return Step("offline", name, detail, time.perf_counter() - started)


def _compact(query: dict[str, Any]) -> str:
    return json.dumps(query, separators=(",", ":"), default=str)
