"""What the model may do, as tools over the Session: look at the data, query it read-only,
chart it, remember a fact. Nothing here writes data, and no semantic query runs unless it
covers the question (``agent.coverage``).

Each tool returns compact text (CSV for rows) that the loop hands to the model as data;
a query that fails raises ToolFailed with the database's error, so the model can repair it.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from aiser_jupyter.agent.context import member_docs, rank, table_docs
from aiser_jupyter.agent.coverage import Gap, find_gaps
from aiser_jupyter.agent.loop import Tool, ToolFailed
from aiser_jupyter.errors import AiserError
from aiser_jupyter.security.guard import check_sql

if TYPE_CHECKING:
    from aiser_jupyter.agent.planner import Plan

ROWS_SHOWN = 30
"""Rows of a result the model sees (it is told how many there are in all)."""
REPAIR_ROUNDS = 1
"""Semantic queries refused for their gaps that the model may still repair."""
GIVE_UP = (
    "Do not query again: tell the user in one or two sentences, with no numbers, "
    "what you could not match."
)


@dataclass
class Workspace:
    """What one question's tools share: the session, and the last result they produced."""

    session: Any
    execute: bool = True
    """False for ``--no-run``: queries are checked and compiled, not run."""
    connection: str | None = None
    result: Any = None
    sql: str | None = None
    sql_connection: str | None = None
    query: dict[str, Any] | None = None
    chart: Any = None
    evidence: list[str] = field(default_factory=list)
    """Every tool output, to check the numbers of the final answer against."""
    plan: Plan | None = None
    """The offline planner's reading of the question: what a semantic query must cover."""
    gaps: list[Gap] = field(default_factory=list)
    """What the last semantic query asked for missed or added; empty once one covers it."""
    refused: int = 0
    """Semantic queries not run for their gaps."""

    def give(self, text: str) -> str:
        self.evidence.append(text)
        return text

    def cover(self, query: dict[str, Any]) -> None:
        """Refuse a semantic query that misses or adds parts of the question, listing the
        gaps for the model to repair, once: after that no semantic query runs, and the
        answer asks the user instead of guessing."""
        if self.plan is None:
            return
        if self.refused > REPAIR_ROUNDS:
            raise ToolFailed("Not run: no more queries for this question. " + GIVE_UP)
        self.gaps = find_gaps(self.plan, query, self.session.model)
        if not self.gaps:
            return
        self.refused += 1
        listed = "\n".join(f"- {gap.sentence}" for gap in self.gaps)
        if self.refused > REPAIR_ROUNDS:
            raise ToolFailed(
                f"Not run: the query still does not match the question:\n{listed}\n{GIVE_UP}"
            )
        raise ToolFailed(
            f"Not run: the query does not match the question:\n{listed}\n"
            "Fix exactly these and query again, or, if the data cannot express them, "
            "say so instead of guessing."
        )


def rows_text(result: Any) -> str:
    """A result as the model reads it: a header line, up to ROWS_SHOWN rows of CSV."""
    return frame_text(result.df)


def frame_text(frame: Any) -> str:
    """A DataFrame as the model reads it (see `rows_text`)."""
    out = io.StringIO()
    frame.head(ROWS_SHOWN).to_csv(out, index=False, quoting=csv.QUOTE_MINIMAL)
    more = f" (first {ROWS_SHOWN} shown)" if len(frame) > ROWS_SHOWN else ""
    return f"{len(frame):,} rows{more}\n{out.getvalue()}"


def build_tools(work: Workspace) -> list[Tool]:
    session = work.session

    def list_sources(_: dict[str, Any]) -> str:
        lines = [
            f"{row.name} ({row.kind}){' current' if row.current else ''}"
            for row in session.connections_frame().itertuples()
        ]
        tables = [doc.key for doc in table_docs(session)]
        text = "Connections: " + (", ".join(lines) or "only the embedded DuckDB")
        text += f"\nTables ({len(tables)}): " + ", ".join(tables[:100])
        if session.model is not None:
            text += "\nSemantic model cubes: " + ", ".join(session.model.cubes)
        return work.give(text)

    def search_schema(args: dict[str, Any]) -> str:
        words = str(args.get("words", ""))
        docs = rank(words, member_docs(session.model), 15) + rank(words, table_docs(session), 8)
        return work.give("\n".join(doc.line for doc in docs) or "nothing matches")

    def describe_table(args: dict[str, Any]) -> str:
        table = str(args.get("table", ""))
        try:
            result, count, _ = session.preview(
                table, args.get("connection") or work.connection, rows=5
            )
        except AiserError as exc:
            raise ToolFailed(str(exc)) from None
        columns = ", ".join(
            f"{c} {t}"
            for c, t in zip(result.df.columns, result.to_arrow().schema.types, strict=True)
        )
        return work.give(
            f"{table}: {count:,} rows; columns: {columns}\n"
            f"sample:\n{rows_text(session.mask_for_model(result))}"
        )

    def run_semantic_query(args: dict[str, Any]) -> str:
        if session.model is None:
            raise ToolFailed("No semantic model is loaded: use run_sql")
        query = args.get("query")
        if isinstance(query, str):
            try:
                query = json.loads(query)
            except json.JSONDecodeError as exc:
                raise ToolFailed(f"query is not JSON: {exc}") from None
        if not isinstance(query, dict):
            raise ToolFailed("query must be a Cube REST query object")
        try:
            connection, sql = session.compile_query(query)
        except AiserError as exc:
            raise ToolFailed(str(exc)) from None
        work.cover(query)
        work.sql_connection, work.sql, work.query = connection, sql, query
        if not work.execute:
            return work.give("valid; not run (the user asked not to run queries)")
        try:
            work.result = session.query(query)
        except AiserError as exc:
            raise ToolFailed(str(exc)) from None
        return work.give(rows_text(session.mask_for_model(work.result)))

    def run_sql(args: dict[str, Any]) -> str:
        sql = str(args.get("sql", ""))
        try:
            connection = session.connection(args.get("connection") or work.connection).name
            if not work.execute:
                check_sql(sql, session.connection(connection).engine.dialect)
                work.sql, work.sql_connection, work.query = sql, connection, None
                return work.give("valid; not run (the user asked not to run queries)")
            result = session.sql(sql, connection, read_only=True)
        except AiserError as exc:
            raise ToolFailed(str(exc)) from None
        work.result, work.query, work.sql, work.sql_connection = result, None, sql, connection
        return work.give(rows_text(session.mask_for_model(result)))

    def draw_chart(args: dict[str, Any]) -> str:
        if work.result is None:
            raise ToolFailed("Run a query first: the chart draws the last result")
        try:
            work.chart = session.chart(
                work.result, kind=args.get("kind"), x=args.get("x"), y=args.get("y")
            )
        except (AiserError, ValueError, KeyError) as exc:
            raise ToolFailed(str(exc)) from None
        return work.give(f"chart drawn: {work.chart.reason}")

    def find_insights(args: dict[str, Any]) -> str:
        if work.result is None:
            raise ToolFailed("Run a query first: insights read the last result")
        from aiser_jupyter.analysis import insights_text

        try:
            found = session.insights(work.result, by=args.get("by") or None, limit=8)
        except AiserError as exc:
            raise ToolFailed(str(exc)) from None
        return work.give(insights_text(found, limit=8))

    def remember(args: dict[str, Any]) -> str:
        entry = session.memory.remember(str(args.get("fact", "")))
        return work.give(f"remembered #{entry.id}")

    text = {"type": "string"}
    return [
        Tool(
            "list_sources",
            "Connections, their tables, and the semantic model's cubes.",
            _schema(),
            list_sources,
        ),
        Tool(
            "search_schema",
            "Find tables, columns and semantic members related to some words.",
            _schema(words=text),
            search_schema,
        ),
        Tool(
            "describe_table",
            "Columns, types, row count and sample rows of a table.",
            _schema(table=text, connection=text, required=["table"]),
            describe_table,
        ),
        Tool(
            "run_semantic_query",
            "Answer through the semantic model (preferred when one is loaded): a Cube REST query "
            'object, e.g. {"measures": ["cube.measure"], "dimensions": ["cube.dimension"], '
            '"timeDimensions": [{"dimension": "cube.time", "granularity": "month", '
            '"dateRange": ["2024-01-01", "2024-12-31"]}], "filters": [{"member": '
            '"cube.dimension", "operator": "equals", "values": ["x"]}], '
            '"order": {"cube.measure": "desc"}, "limit": 10}.',
            _schema(query={"type": "object"}, required=["query"]),
            run_semantic_query,
        ),
        Tool(
            "run_sql",
            "Run one read-only SELECT on a connection (DuckDB SQL on the embedded one).",
            _schema(sql=text, connection=text, required=["sql"]),
            run_sql,
        ),
        Tool(
            "draw_chart",
            "Chart the last result (kind: line, bar, hbar, scatter, pie, kpi, heatmap; optional).",
            _schema(kind=text, x=text, y=text),
            draw_chart,
        ),
        Tool(
            "find_insights",
            "What changed, what is unusual and why in the last result: trend, seasons, "
            "anomalies with dates, forecast, drivers by dimension.",
            _schema(by=text),
            find_insights,
        ),
        Tool(
            "remember",
            "Keep a fact or preference the user stated, for later questions.",
            _schema(fact=text, required=["fact"]),
            remember,
        ),
    ]


def _schema(required: list[str] | None = None, **properties: Any) -> dict[str, Any]:
    return {"type": "object", "properties": properties, "required": required or []}
