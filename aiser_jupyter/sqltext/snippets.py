"""Saved queries that later queries use as tables, composed as CTEs (``--save`` / ``--with``)."""

from __future__ import annotations

from aiser_jupyter.errors import ParameterError, QueryError


class Snippets:
    """Named SQL texts; a query naming one as a table gets it prepended as a CTE."""

    def __init__(self) -> None:
        self._sql: dict[str, str] = {}

    def __contains__(self, name: str) -> bool:
        return name in self._sql

    def __iter__(self):
        return iter(self._sql)

    def __len__(self) -> int:
        return len(self._sql)

    def get(self, name: str) -> str:
        return self._sql[name]

    def items(self):
        return self._sql.items()

    def save(self, name: str, sql: str, dialect: str) -> None:
        """Keep `sql` as `name`, after checking that it parses as one query."""
        import sqlglot
        from sqlglot import exp

        try:
            statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        except sqlglot.errors.SqlglotError as exc:
            raise QueryError(f"Snippet {name!r} does not parse: {exc}") from None
        if len(statements) != 1 or not isinstance(statements[0], exp.Query):
            raise QueryError(f"Snippet {name!r} must be a single query (SELECT …)")
        self._sql[name] = sql.strip().rstrip(";")

    def remove(self, name: str) -> None:
        self._sql.pop(name, None)

    def compose(self, sql: str, dialect: str) -> str:
        """`sql` with every snippet it uses (directly or through other snippets) as a CTE."""
        if not self._sql:
            return sql
        import sqlglot
        from sqlglot import exp

        try:
            statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
        except sqlglot.errors.SqlglotError:
            return sql  # let the database report the syntax error at its position
        changed = False
        for statement in statements:
            query = statement if isinstance(statement, exp.Query) else statement.find(exp.Query)
            if query is None:
                continue
            needed = self._needed(query, dialect)
            if needed:
                ctes = [
                    exp.CTE(
                        this=sqlglot.parse_one(self._sql[n], read=dialect),
                        alias=exp.TableAlias(this=exp.to_identifier(n)),
                    )
                    for n in needed
                ]
                existing = query.args.get("with_")
                if existing is not None:
                    ctes += existing.expressions
                query.set("with_", exp.With(expressions=ctes))
                changed = True
        if not changed:
            return sql
        for statement in statements:
            # sqlglot writes ``:name`` in the dialect's own style (DuckDB: ``$name``), which
            # `bind` would not see: kept as typed, so it binds as in a cell without snippets.
            for placeholder in list(statement.find_all(exp.Placeholder)):
                if isinstance(placeholder.this, str) and placeholder.this.isidentifier():
                    placeholder.replace(exp.Var(this=f":{placeholder.this}"))
        return ";\n".join(s.sql(dialect=dialect) for s in statements)

    def _needed(self, query, dialect: str) -> list[str]:
        """The snippets `query` uses, dependencies first."""
        import sqlglot

        ordered: list[str] = []

        def visit(node, visiting: tuple[str, ...]) -> None:
            for name in _table_names(node):
                if name not in self._sql or name in ordered:
                    continue
                if name in visiting:
                    cycle = " → ".join((*visiting, name))
                    raise ParameterError(f"Snippets refer to each other in a cycle: {cycle}")
                visit(sqlglot.parse_one(self._sql[name], read=dialect), (*visiting, name))
                ordered.append(name)

        visit(query, ())
        return ordered


def _table_names(node) -> set[str]:
    """Unqualified table names `node` reads, minus those its own CTEs define."""
    from sqlglot import exp

    defined = {cte.alias_or_name for cte in node.find_all(exp.CTE)}
    return {
        table.name
        for table in node.find_all(exp.Table)
        if not table.args.get("db") and table.name not in defined
    }
