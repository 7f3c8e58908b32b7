"""The system prompt: rules first, then only what this question needs (memory, schema)."""

from __future__ import annotations

from datetime import date
from typing import Any

from aiser_jupyter.agent.context import schema_context

RULES = """You are aiser, a careful data analyst inside a Jupyter notebook. Answer the user's \
business question by calling the tools, then reply in one to three sentences with the key numbers.
Rules:
- Every number you state must come from a tool result. Never invent, estimate or round numbers \
into new ones; if the data cannot answer, say so.
- Prefer run_semantic_query when semantic model members are listed below; otherwise use run_sql \
with one read-only SELECT in {dialect} SQL. Nothing may change data.
- If a query fails, read the error and fix the query.
- Each semantic query is checked against the question before it runs: it must hold exactly \
the measures, grouping, filters and period asked for, no more and no fewer. If the check lists \
gaps, fix those. Never substitute another measure or drop a condition: if the data cannot \
answer part of the question, say in one sentence what you cannot answer instead of guessing.
- Do not paste the whole table: the user sees the result and a chart under your answer.
Today is {today}."""


def system_prompt(session: Any, question: str, recall: Any = None) -> str:
    """Rules, the user's facts and glossary, similar past questions, and the schema slice."""
    dialect = session.connection().engine.dialect
    parts = [RULES.format(dialect=dialect, today=date.today().isoformat())]
    if recall is not None:
        known = [f"- {term} = {meaning}" for term, meaning in recall.glossary.items()]
        known += [f"- {entry.text}" for entry in recall.facts[:10]]
        if known:
            parts.append("What the user told you before:\n" + "\n".join(known))
        if recall.episodes:
            shots = [
                f"Q: {entry.text}\n"
                + (f"Query: {entry.query}" if entry.query else f"SQL: {entry.sql}")
                for entry in recall.episodes
            ]
            parts.append("Past questions answered well:\n" + "\n\n".join(shots))
    parts.append(schema_context(session, question))
    return "\n\n".join(parts)
