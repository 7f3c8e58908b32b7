"""Answers with no language model: the deterministic planner, the semantic layer, and the
numbers told by ``narrate``. Used when no model is configured or reachable, or asked for.

A question the planner does not fully understand is not run: the answer says why and
offers questions it can answer (``Answer.status``)."""

from __future__ import annotations

import dataclasses
import json
import time
from datetime import date
from typing import Any

from aiser_jupyter.agent.answer import Answer
from aiser_jupyter.agent.loop import Step
from aiser_jupyter.agent.narrate import narrate, narrate_derivation
from aiser_jupyter.agent.planner import Plan, plan_question
from aiser_jupyter.agent.suggest import without
from aiser_jupyter.agent.vocabulary import ValueIndex
from aiser_jupyter.errors import AiserError


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
    today = anchor_today(session.settings.today, session.model, values)
    plan = plan_question(
        question, session.model, values, earlier, list((glossary or {}).items()), today
    )
    steps.append(_step("planner", _compact(plan.query), started))
    notes = plan.explain().splitlines()
    if plan.status != "answered":
        return Answer(
            question,
            plan.reason,
            status=plan.status,  # type: ignore[arg-type]
            suggestions=plan.suggestions,
            steps=steps,
            offline=True,
            notes=notes,
            plan=plan,
        )
    connection, sql = session.compile_query(plan.query)
    if plan.derivation is not None:
        sql = plan.derivation.sql(sql, session.connection(connection).engine.dialect)
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
    result = session.query(plan.query)
    if plan.derivation is not None:
        result = dataclasses.replace(
            result, table=plan.derivation.apply(result.to_arrow()), sql=sql, _df=None
        )
    steps.append(_step("query", f"{result.rowcount:,} rows", started))
    if _nothing_together(result, plan):
        return _decline_empty(answer, plan, session, values, earlier, glossary, today)
    answer.result = result
    if plan.derivation is not None:
        answer.text = narrate_derivation(result.df, result.annotation, plan.derivation)
    else:
        answer.text = narrate(result.df, result.annotation, session.model)
    if result.rowcount:
        answer.chart = session.chart(result)
    return answer


def _nothing_together(result: Any, plan: Plan) -> bool:
    """Two or more filters that no row meets together ("organic" traffic of a "search"
    campaign): more likely a misreading than an answer of zero."""
    filters = [f for f in plan.query.get("filters", []) if f["operator"] == "equals"]
    if len(filters) < 2:
        return False
    table = result.to_arrow()
    measures = [m for m in plan.query["measures"] if m in table.column_names]
    return table.num_rows == 0 or all(
        value in (0, None) for m in measures for value in table.column(m).to_pylist()
    )


def _decline_empty(
    answer: Answer,
    plan: Plan,
    session: Any,
    values: ValueIndex,
    earlier: Plan | None,
    glossary: dict[str, str] | None,
    today: date | None,
) -> Answer:
    filters = [f for f in plan.query["filters"] if f["operator"] == "equals"]
    said = "; ".join(f"{f['member']} = {' or '.join(f['values'])}" for f in filters)
    answer.status = "clarify"
    answer.text = f"No rows match all of these together: {said}. Did you mean only some of them?"
    answer.sql = answer.query = None
    terms = list((glossary or {}).items())
    for f in filters:
        for value in f["values"]:
            candidate = " ".join(without(answer.question, value).split())
            again = plan_question(candidate, session.model, values, earlier, terms, today)
            if again.status == "answered" and candidate not in answer.suggestions:
                answer.suggestions.append(candidate)
    answer.suggestions = answer.suggestions[:3]
    return answer


def anchor_today(setting: str, model: Any, values: ValueIndex | None) -> date | None:
    """The day relative periods count from, when the user anchors it for historical data:
    ``AISER_TODAY`` (a date, or ``data`` for the last day of the data), else a cube's
    ``meta: {today: ...}`` in the model; None: the real today."""
    anchor = setting or next(
        (str(c.meta["today"]) for c in model.cubes.values() if c.meta.get("today")), ""
    )
    if not anchor:
        return None
    if anchor == "data":
        ends = [end for _, end in values.time_bounds.values()] if values is not None else []
        return max(ends) if ends else None
    try:
        return date.fromisoformat(anchor)
    except ValueError:
        raise AiserError(
            f"AISER_TODAY must be a date (YYYY-MM-DD) or 'data', not {anchor!r}"
        ) from None


def _step(name: str, detail: str, started: float) -> Step:
    return Step("offline", name, detail, time.perf_counter() - started)


def _compact(query: dict[str, Any]) -> str:
    return json.dumps(query, separators=(",", ":"), default=str)
