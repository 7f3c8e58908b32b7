"""A cell of several statements: each run in order on the same connection, one Result back.

The statements come from ``sqltext.statements.split`` (sqlglot's tokenizer, each as typed),
and each runs through the single-statement path, so binding, snippets, the guard, the router
and the history treat it exactly as a cell of its own (one history entry per statement).
The Result shown is the last query's (else the last rows a write gave back, else the last
statement's), its notes saying how many statements ran. A failing statement stops the cell:
the error names it ("statement 2 of 3") and says that the ones before it ran; no transaction
wraps the cell, so what they did stays as the database left it, unless the cell began a
transaction of its own: that one is rolled back.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError, QueryError

if TYPE_CHECKING:
    from aiser_jupyter.engines.connection import Connection
    from aiser_jupyter.result import Result


@dataclass(frozen=True)
class SqlRun:
    """What every statement of one cell runs with."""

    conn: Connection
    dialect: str
    """What the SQL is written in: `written_in`, else the connection's dialect."""
    written_in: str | None
    """The dialect the caller named, if any (it sends the statement to the router)."""
    lookup: Mapping[str, Any]
    """Where ``:name`` finds its value."""
    params: Mapping[str, Any] | Sequence[Any] | None
    notes: list[str]
    """Notes every statement's Result starts with (each gets its own copy)."""
    limit: int | None
    read_only: bool


def run_statements(
    statements: list[str],
    run_one: Callable[[str], Result],
    *,
    dialect: str,
    read_only: bool = False,
) -> Result:
    """Run `statements` in order with `run_one`; the Result to show, or the first error,
    worded with the statement's place. With `read_only`, every statement passes the guard
    before any runs. A statement failing inside a transaction the cell began rolls that
    transaction back (a ``ROLLBACK`` run like any statement), so the connection is not left
    in a failed transaction."""
    total = len(statements)
    if read_only:
        from aiser_jupyter.security.guard import check_sql

        for number, statement in enumerate(statements, 1):
            try:
                check_sql(statement, dialect)
            except AiserError as exc:
                _reword(exc, f"Statement {number} of {total} was refused", "No statement ran.")
                raise
    results: list[Result] = []
    for number, statement in enumerate(statements, 1):
        try:
            results.append(run_one(statement))
        except AiserError as exc:
            begun = _open_transaction(statements[: number - 1], dialect)
            if begun is not None and _rolled_back(run_one):
                before = (
                    f"The transaction begun in statement {begun} was rolled back: "
                    "nothing it did stays"
                )
            elif number == 1:
                before = "No statement ran before it"
            else:
                before = _ran_before(number)
            after = total - number
            later = f"; the {_count(after, 'statement')} after it did not run" if after else ""
            _reword(exc, f"Statement {number} of {total} failed", f"{before}{later}.")
            if isinstance(exc, QueryError) and exc.sql is None:
                exc.sql = statement
            raise
    return _shown(results, statements, dialect)


def _reword(exc: AiserError, where: str, after: str) -> None:
    exc.args = (f"{where}: {exc}\n{after}",)


def _open_transaction(statements: list[str], dialect: str) -> int | None:
    """The number of the statement that began a transaction still open after `statements`."""
    import sqlglot
    from sqlglot import exp

    begun = None
    for number, statement in enumerate(statements, 1):
        try:
            tree = sqlglot.parse_one(statement, read=dialect)
        except sqlglot.errors.SqlglotError:
            continue
        if isinstance(tree, exp.Transaction):
            begun = number
        elif isinstance(tree, (exp.Commit, exp.Rollback)):
            begun = None
    return begun


def _rolled_back(run_one: Callable[[str], Result]) -> bool:
    try:
        run_one("ROLLBACK")
    except AiserError:
        return False
    return True


def _ran_before(number: int) -> str:
    done = "Statement 1" if number == 2 else f"Statements 1 to {number - 1}"
    return (
        f"{done} ran before it and {'was' if number == 2 else 'were'} not undone "
        "(each statement commits on its own)"
    )


def _shown(results: list[Result], statements: list[str], dialect: str) -> Result:
    """The Result to show, its notes saying what ran: the last query's rows; else the last
    rows a write gave back (RETURNING, DuckDB's counts); else the last statement's."""
    from aiser_jupyter.sqltext.statements import written_tables

    with_rows = [i for i, r in enumerate(results) if r.table is not None]
    queries = [i for i in with_rows if not written_tables(statements[i], dialect)]
    index = (queries or with_rows or [len(results) - 1])[-1]
    shown = results[index]
    total = len(results)
    summary = f"{total} statements ran"
    if not queries:
        summary += ": " + ", ".join(_verb(s, dialect) for s in statements)
    if index != total - 1:
        summary += f"; rows of statement {index + 1}"
    shown.notes.append(summary)
    shown.elapsed = sum(r.elapsed for r in results)
    return shown


def _verb(statement: str, dialect: str) -> str:
    """The statement's first keyword (INSERT, CREATE…), as sqlglot's tokenizer reads it."""
    import sqlglot

    try:
        tokens = sqlglot.tokenize(statement, read=dialect)
    except sqlglot.errors.SqlglotError:
        tokens = []
    return tokens[0].text.upper() if tokens else "?"


def _count(number: int, word: str) -> str:
    return f"{number} {word}" if number == 1 else f"{number} {word}s"
