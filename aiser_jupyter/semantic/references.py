"""Cube's ``{CUBE}``, ``{member}`` and ``{cube.member}`` references inside SQL snippets.

A snippet is split into text and references (Cube's template syntax, scanned by
hand), each reference becomes a placeholder identifier, sqlglot parses the
result, and the placeholders are swapped for real expressions: a cube's alias,
or a member's own (recursively resolved) expression. Bare column names are
qualified with the snippet's cube, so joins never make them ambiguous.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache

import sqlglot
from sqlglot import exp

PLACEHOLDER = "__aiser_ref_{}__"


@dataclass(frozen=True)
class Snippet:
    """A SQL snippet with its references replaced by numbered placeholders."""

    text: str
    refs: tuple[tuple[str, ...], ...]

    @classmethod
    def scan(cls, sql: str) -> Snippet:
        """Split Cube's template syntax; raise ValueError on what we cannot read."""
        if "{{" in sql or "{%" in sql:
            raise ValueError("Jinja templates in the model are not supported yet")
        pieces: list[str] = []
        refs: list[tuple[str, ...]] = []
        position = 0
        while (start := sql.find("{", position)) != -1:
            end = sql.find("}", start)
            if end == -1:
                raise ValueError(f"unclosed '{{' in {sql!r}")
            path = tuple(part.strip() for part in sql[start + 1 : end].split("."))
            if not all(part.isidentifier() for part in path):
                raise ValueError(f"cannot read the reference {sql[start : end + 1]!r}")
            if path[0] == "TABLE":  # Cube's older name for {CUBE}
                path = ("CUBE", *path[1:])
            # Cube also reads JavaScript's ${CUBE} spelling in YAML: the $ is not SQL
            text_end = start - 1 if start > position and sql[start - 1] == "$" else start
            pieces += [sql[position:text_end], PLACEHOLDER.format(len(refs))]
            refs.append(path)
            position = end + 1
        pieces.append(sql[position:])
        return cls("".join(pieces), tuple(refs))


Resolver = Callable[[tuple[str, ...]], exp.Expression]
"""Turns a reference path into what stands for it: a cube alias (an Identifier) or an expression."""


def render(snippet: Snippet, resolve: Resolver, cube_alias: str, dialect: str) -> exp.Expression:
    """The snippet as a sqlglot expression, references resolved, bare columns qualified."""
    tree = _parsed(snippet.text, dialect).copy()
    resolved = [resolve(path) for path in snippet.refs]

    def swap(node: exp.Expression) -> exp.Expression:
        if not isinstance(node, exp.Column):
            return node
        table = node.table
        if table.startswith("__aiser_ref_"):
            target = resolved[_index(table)]
            alias = target.name if isinstance(target, exp.Identifier) else table
            return exp.column(node.this.copy(), table=exp.to_identifier(alias, quoted=True))
        if node.name.startswith("__aiser_ref_") and not table:
            target = resolved[_index(node.name)]
            if isinstance(target, exp.Identifier):
                return exp.column(exp.Star(), table=exp.to_identifier(target.name, quoted=True))
            return exp.paren(target.copy()) if _needs_parens(target) else target.copy()
        if not table:
            return exp.column(node.this.copy(), table=exp.to_identifier(cube_alias, quoted=True))
        return node

    return tree.transform(swap, copy=False)


@lru_cache(maxsize=4096)
def _parsed(text: str, dialect: str) -> exp.Expression:
    """Snippets are parsed once per dialect; each use works on a copy."""
    return sqlglot.parse_one(text, read=dialect)


def _index(placeholder: str) -> int:
    return int(placeholder.removeprefix("__aiser_ref_").removesuffix("__"))


def _needs_parens(node: exp.Expression) -> bool:
    return isinstance(node, exp.Binary | exp.Not | exp.Case) and not isinstance(node, exp.Dot)
