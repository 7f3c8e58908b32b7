"""The tables a query reads, as the change bus names them (``changed("data:<table>")``)."""

from __future__ import annotations

from collections.abc import Iterable


def tables_read(sql: str, dialect: str | None = None) -> frozenset[str]:
    """Lowercase names (``schema.table`` or ``table``) of the tables `sql` reads: every
    table of every statement, less the names its CTEs define. Table functions
    (``read_csv(...)``) are not tables: they have no change events."""
    import sqlglot
    from sqlglot import exp

    found: set[str] = set()
    for tree in sqlglot.parse(sql, read=dialect):
        if tree is None:
            continue
        ctes = {cte.alias_or_name.lower() for cte in tree.find_all(exp.CTE)}
        for table in tree.find_all(exp.Table):
            if not table.name or isinstance(table.this, exp.Func):
                continue
            name = ".".join(part.lower() for part in (table.db, table.name) if part)
            if table.db or name not in ctes:
                found.add(name)
    return frozenset(found)


def touches(changed: str, tables: Iterable[str]) -> bool:
    """Whether a change of table `changed` concerns a query reading `tables`: the same
    table, where a name without a schema matches the same name in any schema (a query that
    says ``orders`` hears ``live.orders`` and the reverse: a spare re-run is cheaper than a
    missed one)."""
    schema, _, name = changed.lower().rpartition(".")
    for table in tables:
        other_schema, _, other = table.rpartition(".")
        if other == name and (not schema or not other_schema or schema == other_schema):
            return True
    return False
