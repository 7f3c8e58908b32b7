"""Answers the user confirmed, reused: asked again (same words, whatever the case, spacing
or punctuation), the question runs the confirmed query again, on today's data, so a reused
answer never repeats old numbers. It needs no model and no planner."""

from __future__ import annotations

import time
from typing import Any

from aiser_jupyter.agent.answer import Answer
from aiser_jupyter.agent.loop import Step
from aiser_jupyter.agent.narrate import narrate
from aiser_jupyter.errors import AiserError


def reuse_confirmed(
    session: Any, memory: Any, question: str, run: bool, notes: list[str]
) -> Answer | None:
    """The confirmed answer to `question` run again, or None (nothing confirmed, or the
    query no longer runs: then `notes` says why, and the question is answered afresh)."""
    episode = memory.confirmed(question)
    if episode is None:
        return None
    when = episode.confirmed_at.astimezone().date().isoformat()
    started = time.perf_counter()
    result = None
    try:
        if episode.query is not None:
            connection, sql = session.compile_query(episode.query)
            if run:
                result = session.query(episode.query)
        else:
            connection, sql = session.connection(episode.connection).name, episode.sql
            if run:
                result = session.sql(sql, connection, read_only=True)
    except AiserError as exc:
        notes.append(f"The answer you confirmed on {when} no longer runs ({exc}): answered afresh.")
        return None
    step = Step("memory", "reuse", f"episode #{episode.id}", time.perf_counter() - started)
    answer = Answer(
        question,
        "Not run (--no-run): the query and its SQL are below.",
        sql=sql,
        connection=connection,
        query=episode.query,
        result=result,
        steps=[step],
        offline=True,
        notes=[f"Reused an answer you confirmed on {when}: its query ran again on today's data."],
        episode_id=episode.id,
    )
    if result is not None:
        answer.text = narrate(result.df, result.annotation, session.model)
        if result.rowcount:
            answer.chart = session.chart(result)
    return answer
