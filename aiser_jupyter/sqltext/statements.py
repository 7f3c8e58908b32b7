"""The statements of a cell, and the tables a statement writes, both read with sqlglot.

`split` cuts a cell at the semicolons sqlglot's tokenizer finds, so a ``;`` inside a string,
a quoted name, a comment or a dollar-quoted body is left alone, and each statement keeps
its text exactly as typed (dialect-specific SQL that sqlglot could not regenerate still
reaches the database as written, and error positions point at what the user wrote).

`written_tables` says which tables a statement changes (INSERT, UPDATE, DELETE, MERGE,
COPY … FROM, CREATE, DROP, ALTER, TRUNCATE, SELECT INTO, and data-modifying CTEs), so the
Session can tell its listeners ``data:<table>``.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from sqlglot import exp

WRITE_TOKENS = frozenset(
    {"INSERT", "UPDATE", "DELETE", "MERGE", "COPY", "CREATE", "DROP", "ALTER", "TRUNCATE"}
    | {"REPLACE", "INTO"}
)
"""Token kinds without which a statement writes nothing: the cheap check before a parse."""

WRITE_WORDS = tuple(word.lower() for word in WRITE_TOKENS)
"""A text holding none of these words anywhere writes nothing, so it is not even tokenized
(the tokenizer costs ~8% of a small DuckDB query); whether a statement writes, and what,
is always sqlglot's answer."""

RELATIONS = frozenset({"TABLE", "VIEW"})
"""What CREATE and DROP make or remove that queries read rows from."""


def split(sql: str, dialect: str) -> list[str]:
    """The statements of `sql`, each as typed (comments kept, no trailing ``;``); pieces
    holding only comments or blanks are dropped. Text sqlglot cannot tokenize is one
    statement, for the database to report."""
    if ";" not in sql:
        return [sql] if sql.strip() else []
    import sqlglot

    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return [sql]
    pieces, start, has_tokens = [], 0, False
    for token in tokens:
        if token.token_type.name != "SEMICOLON":
            has_tokens = True
            continue
        if has_tokens:
            pieces.append(sql[start : token.start].strip())
        start, has_tokens = token.end + 1, False
    if has_tokens:
        pieces.append(sql[start:].strip())
    return pieces


def written_tables(sql: str, dialect: str) -> list[str]:
    """The tables one statement writes, lowercase as the query names them (``live.orders``);
    empty for a query, and for text sqlglot cannot parse or type."""
    lowered = sql.lower()
    if not any(word in lowered for word in WRITE_WORDS):
        return []
    import sqlglot

    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return []
    if not any(token.token_type.name in WRITE_TOKENS for token in tokens):
        return []
    try:
        tree = sqlglot.parse_one(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return []
    return list(dict.fromkeys(_name(t) for t in _targets(tree)))


def _targets(tree: exp.Expression) -> list[exp.Table]:
    """Every table a node of `tree` writes (data-modifying CTEs included)."""
    from sqlglot import exp

    kinds = (
        exp.Insert,
        exp.Update,
        exp.Delete,
        exp.Merge,
        exp.Create,
        exp.Drop,
        exp.Alter,
        exp.Into,
    )
    found: list[exp.Table] = []
    for node in tree.find_all(*kinds, exp.Copy, exp.TruncateTable):
        if isinstance(node, (exp.Create, exp.Drop)) and node.kind not in RELATIONS:
            continue  # a schema, an index, a function…
        if isinstance(node, (exp.TruncateTable, exp.Drop)) and not node.this:
            listed = node.expressions or node.args.get("tables") or []
            found += [t for t in listed if isinstance(t, exp.Table)]
            continue
        if isinstance(node, exp.Copy) and not node.args.get("kind"):
            continue  # COPY … TO writes a file, not a table
        target = node.this
        if isinstance(target, exp.Schema):  # INSERT INTO t (a, b) / CREATE TABLE t (a int)
            target = target.this
        if isinstance(target, exp.Table) and target.name:
            found.append(target)
    return found


def _name(table: exp.Table) -> str:
    return ".".join(part.name for part in table.parts).lower()
