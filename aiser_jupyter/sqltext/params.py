"""``:name`` parameters, bound as real query parameters and never spliced into the text.

sqlglot's tokenizer finds them, so a ``:x`` inside a string, a comment or a
``::cast`` is left alone; the query text is otherwise kept exactly as typed, so
the database's error positions still point at what the user wrote.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from aiser_jupyter.errors import ParameterError

_VALUE_TOKENS = frozenset({"VAR", "NUMBER", "STRING", "IDENTIFIER", "R_BRACKET", "R_PAREN"})
_NAME_TOKENS = frozenset({"VAR", "IDENTIFIER"})


def parameter_names(sql: str, dialect: str) -> list[tuple[int, int, str]]:
    """Each ``:name`` as (start, end) offsets in `sql` and the name."""
    if ":" not in sql:
        return []
    import sqlglot

    try:
        tokens = sqlglot.tokenize(sql, read=dialect)
    except sqlglot.errors.SqlglotError:
        return []
    found = []
    for i, token in enumerate(tokens[:-1]):
        if token.token_type.name != "COLON":
            continue
        name = tokens[i + 1]
        if name.token_type.name not in _NAME_TOKENS and not name.text.isidentifier():
            continue
        if name.start != token.end + 1:
            continue
        previous = tokens[i - 1] if i else None
        if (
            previous
            and previous.end + 1 == token.start
            and previous.token_type.name in _VALUE_TOKENS
        ):
            continue  # a slice such as arr[a:b]
        found.append((token.start, name.end + 1, name.text))
    return found


def bind(
    sql: str, dialect: str, namespace: Mapping[str, Any], paramstyle: str
) -> tuple[str, list[Any] | dict[str, Any] | None]:
    """Rewrite ``:name`` for the engine's paramstyle and collect the values from `namespace`."""
    found = parameter_names(sql, dialect)
    if not found:
        return sql, None
    missing = sorted({name for _, _, name in found if name not in namespace})
    if missing:
        listed = ", ".join(f":{name}" for name in missing)
        raise ParameterError(f"{listed} not defined: set the variable or pass params=")
    if paramstyle == "named":
        return sql, {name: namespace[name] for _, _, name in found}
    order: dict[str, int] = {}
    pieces, position = [], 0
    for start, end, name in found:
        index = order.setdefault(name, len(order) + 1)
        pieces += [sql[position:start], f"${index}"]
        position = end
    pieces.append(sql[position:])
    return "".join(pieces), [namespace[name] for name in order]
