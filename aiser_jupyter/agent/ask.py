"""One question, answered: with the configured model through the tools, or offline.

The model path falls back to the offline planner when the model cannot be reached,
times out or answers garbage, and the answer says so. Every answer is remembered
(the conversation, and the question with the SQL that answered it); an answer the user
confirmed is reused for the same question, its query run again (`reuse`).
"""

from __future__ import annotations

import json
import os
from typing import Any

from aiser_jupyter.agent.answer import Answer
from aiser_jupyter.agent.coverage import clarify_text, phrasing
from aiser_jupyter.agent.loop import ModelUnavailable, Step, run_loop
from aiser_jupyter.agent.narrate import narrate, ungrounded
from aiser_jupyter.agent.offline import anchor_today, answer_offline
from aiser_jupyter.agent.planner import Plan, plan_question
from aiser_jupyter.agent.prompts import system_prompt
from aiser_jupyter.agent.registry import agent_tools
from aiser_jupyter.agent.reuse import reuse_confirmed
from aiser_jupyter.agent.tools import Workspace
from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.secrets import register

HISTORY_MESSAGES = 6
"""Earlier turns (questions and answers, not tool output) a follow-up carries along."""


def conversation_id() -> str:
    """This notebook (the path jupyter_server gives its kernel), else this kernel."""
    return os.environ.get("JPY_SESSION_NAME") or f"kernel-{os.getpid()}"


def ask(
    session: Any,
    question: str,
    *,
    model: str | None = None,
    offline: bool = False,
    run: bool = True,
    previous: Answer | None = None,
) -> Answer:
    """Answer `question` about the session's data; `previous` makes it a follow-up."""
    if not question.strip():
        raise AiserError("Ask a question, e.g. %%ask revenue by region last year")
    settings = session.settings
    chosen = model or settings.model
    memory, notes = _memory(session)
    recall = memory.recall(question, conversation_id()) if memory is not None else None
    answer = None if memory is None else reuse_confirmed(session, memory, question, run, notes)
    if answer is None and offline:
        notes.append("Answered offline, as asked (--offline).")
    elif answer is None and not chosen:
        notes.append("No model configured (AISER_MODEL, or --model): answered offline.")
    elif answer is None:
        try:
            answer = _with_model(session, question, chosen, previous, recall, run)
        except ModelUnavailable as exc:
            notes.append(f"{exc}: answered offline instead.")
    if answer is None:
        glossary = recall.glossary if recall is not None else {}
        answer = answer_offline(session, question, previous, glossary, run)
    answer.notes = notes + answer.notes
    if memory is not None:
        _remember(memory, answer)
    return answer


def _with_model(
    session: Any, question: str, model: str, previous: Answer | None, recall: Any, run: bool
) -> Answer:
    """The model's answer through the tools. Its semantic queries run only when they cover
    the question (`Workspace.cover`); when its last one did not, even after a repair round,
    the question is not answered: the user is asked instead, with no numbers."""
    work = Workspace(session, execute=run, plan=_plan(session, question, previous, recall))
    history = []
    if previous is not None:
        history = [m for m in previous.messages if m.get("role") in ("user", "assistant")]
        history = [m for m in history if m.get("content")][-HISTORY_MESSAGES:]
    api_key = os.environ.get("AISER_API_KEY") or None
    if api_key:
        register(api_key)
    settings = session.settings
    outcome = run_loop(
        question,
        model=model,
        tools=agent_tools(work),
        system=system_prompt(session, question, recall),
        history=history,
        api_base=settings.api_base or None,
        api_key=api_key,
        max_steps=settings.agent_max_steps,
        token_budget=settings.agent_token_budget,
        timeout=settings.model_timeout,
    )
    answer = Answer(
        question,
        outcome.text,
        sql=work.sql,
        connection=work.sql_connection,
        query=work.query,
        result=work.result,
        chart=work.chart,
        steps=outcome.steps,
        usage=outcome.usage,
        model=model,
        plan=work.plan,
        messages=outcome.messages,
    )
    if outcome.stopped:
        answer.notes.append(f"Stopped early ({outcome.stopped}): the answer may be incomplete.")
    if work.gaps:
        _not_answered(answer, clarify_text(work.gaps), session.model)
        answer.notes += [f"Not matched: {gap.sentence}" for gap in work.gaps]
        return answer
    _ground(answer, work.evidence, session.model)
    if answer.result is not None and answer.chart is None and answer.result.rowcount > 1:
        answer.chart = session.chart(answer.result)
    return answer


def _plan(session: Any, question: str, previous: Answer | None, recall: Any) -> Plan | None:
    """The offline planner's reading of the question, from the same inputs as an offline
    answer: what the model's semantic queries must cover (`Workspace.cover`). Where the
    data's values cannot be read (a security context that hides some dimensions), the
    planner reads names only, and judges less."""
    if session.model is None:
        return None
    try:
        values = session.value_index()
    except AiserError:
        values = None
    glossary = list(recall.glossary.items()) if recall is not None else []
    earlier = previous.plan if previous is not None else None
    today = anchor_today(session.settings.today, session.model, values)  # as offline
    return plan_question(question, session.model, values, earlier, glossary, today)


def _ground(answer: Answer, evidence: list[str], model: Any) -> None:
    """Check the numbers the model stated against what the tools returned.

    Any number no tool returned is listed in a note. When the first number (the headline
    figure) is one of them, the model's sentence is not shown as the answer, since a
    reader takes that figure as the answer: with a result, the answer tells the result's own
    numbers (`narrate`: computed, never guessed); with none, nothing backs any number, so
    the question is not answered. A later figure not found (a difference, a ratio the
    model worked out) keeps the text beside the note, for the reader to check.
    """
    # The question's own numbers ("in 2024", "top 5") and the query's dates are no invention.
    asked = [answer.question, json.dumps(answer.query)] if answer.query else [answer.question]
    unfounded = ungrounded(answer.text, [*evidence, *asked])
    if not unfounded:
        return
    answer.notes.append(
        "Numbers in this answer that no query returned (check them): " + ", ".join(unfounded)
    )
    if ungrounded(answer.text, [])[0] != unfounded[0]:
        return
    if answer.result is None:
        _not_answered(
            answer, "No query result backs the numbers I found, so none are shown.", model
        )
        return
    answer.text = narrate(answer.result.df, answer.result.annotation, model)
    answer.steps.append(
        Step(
            "note",
            "narrate",
            "the model's headline number is in no result: told the result's",
            0.0,
            False,
        )
    )


def _not_answered(answer: Answer, text: str, model: Any) -> None:
    """Make `answer` a question to clarify: `text`, no result, and what to ask instead (the
    planner's suggestions, else its own reading of the question)."""
    plan = answer.plan
    suggestions = list(getattr(plan, "suggestions", None) or [])
    if not suggestions and plan is not None and (said := phrasing(plan.query, model)):
        suggestions = [said]
    answer.text, answer.status, answer.suggestions = text, "clarify", suggestions[:3]
    answer.result = answer.chart = answer.query = answer.sql = answer.connection = None


def _memory(session: Any) -> tuple[Any, list[str]]:
    """The memory store, or None with a note when it cannot be opened (answers go on)."""
    try:
        return session.memory, []
    except AiserError as exc:
        return None, [f"Memory unavailable ({exc}): nothing was recalled or kept."]


def _remember(memory: Any, answer: Answer) -> None:
    """Keep the turn, and an answered question as an episode (a reused answer has one
    already; one not answered never becomes an example); the answer keeps the store, for
    `Answer.feedback`."""
    conversation = conversation_id()
    memory.record_turn(conversation, "user", answer.question)
    memory.record_turn(conversation, "assistant", answer.text)
    answered = answer.status == "answered" and answer.result is not None
    if answered and answer.episode_id is None and answer.sql:
        answer.episode_id = memory.record_episode(
            answer.question,
            answer.sql,
            query=answer.query,
            worked=True,
            conversation_id=conversation,
            connection=answer.connection,
        ).id
    answer.memory = memory
