"""A query over several sources, run in DuckDB: each table that lives elsewhere is read by its
own engine with only the columns the query uses and the filters that only it decides (written
in that engine's dialect), arrives as Arrow, and is joined in DuckDB.

Column use comes from sqlglot's ``qualify`` (which also expands ``*``). A filter is pushed
down when it is a conjunct of a WHERE (or of an inner/left join's ON for the joined table)
that reads that table alone, holds no subquery, parameter or volatile function, and the table
is not on the side of an outer join that is filled with NULLs. A pushed filter also stays in
the DuckDB query, so pushing can only remove rows that the query would have dropped anyway.
When the columns cannot be worked out (an unknown column, a reused alias), whole tables are
read instead, and the plan says so.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from aiser_jupyter.engines.transpile import to_dialect

if TYPE_CHECKING:
    import pyarrow as pa
    from sqlglot import exp

    from aiser_jupyter.engines.catalog import Source
    from aiser_jupyter.engines.connection import Connection

_names = itertools.count(1)
PULLED = "__aiser_pull_{}"
VOLATILE = {"Rand", "Random", "CurrentDate", "CurrentTimestamp", "CurrentTime", "Uuid"}


@dataclass
class Pull:
    """A table read from its own engine for the federated query."""

    source: Source
    name: str
    """The name it has in DuckDB while the query runs."""
    sql: str
    """What its engine receives."""
    dialect: str
    filters: int
    columns: int | None
    """Columns read, None for all of them."""


def plan_federation(
    tree: exp.Expression, sources: dict[int, tuple[Source, str | None]]
) -> tuple[exp.Expression, list[Pull], list[str]]:
    """The query to run and the reads it needs. `sources` maps id(table node of `tree`) to
    its source and, for a table to be read apart, that engine's dialect (None for a table the
    running engine has). Returns the query (tables renamed), the pulls, and notes."""
    from sqlglot import exp

    order = list(tree.find_all(exp.Table))
    executed, analysed = tree.copy(), tree.copy()
    to_run, to_read = list(executed.find_all(exp.Table)), list(analysed.find_all(exp.Table))
    schema: dict[str, dict[str, str]] = {}
    pulls: list[Pull] = []
    for index, node in enumerate(order):
        if id(node) not in sources:
            continue
        source, dialect = sources[id(node)]
        name = PULLED.format(next(_names))
        schema[name] = dict(source.columns)
        _rename(to_read[index], name)
        if dialect is not None:
            _rename(to_run[index], name)
            pulls.append(Pull(source, name, "", dialect, 0, None))
    notes: list[str] = []
    found = _analyse(analysed, schema, notes)
    for pull in pulls:
        columns, filters = found.get(pull.name, (None, []))
        pull.columns = None if columns is None else len(columns)
        pull.filters = len(filters)
        pull.sql = _read_sql(pull.source, columns, filters, pull.dialect)
    return executed, pulls, notes


def _rename(node: exp.Table, name: str) -> None:
    """Put table `name` where `node` stands, under the name the query calls it by."""
    from sqlglot import exp

    alias = node.args.get("alias") or exp.TableAlias(this=node.this.copy())
    node.replace(exp.Table(this=exp.to_identifier(name, quoted=True), alias=alias))


def _analyse(
    tree: exp.Expression, schema: dict[str, dict[str, str]], notes: list[str]
) -> dict[str, tuple[list[str] | None, list[exp.Expression]]]:
    """Per table of `schema`: the columns the query reads of it and the filters it can take."""
    import sqlglot
    from sqlglot import exp
    from sqlglot.optimizer.qualify import qualify

    ctes = {cte.alias_or_name for cte in tree.find_all(exp.CTE)}
    tables = [t for t in tree.find_all(exp.Table) if t.db or t.name not in ctes]
    aliases = [t.alias_or_name for t in tables]
    if len(aliases) != len(set(aliases)):
        notes.append("a table alias is used twice, so whole tables were read")
        return {}
    unknown = [t.name for t in tables if t.name not in schema or not schema[t.name]]
    if unknown:
        notes.append(f"the columns of {unknown[0]} are unknown here, so whole tables were read")
        return {}
    try:
        qualified = qualify(
            tree, schema=schema, dialect="duckdb", quote_identifiers=False, expand_stars=True
        )
    except sqlglot.errors.SqlglotError as exc:
        first = str(exc).splitlines()[0]
        notes.append(f"the columns could not be worked out ({first}), so whole tables were read")
        return {}
    alias_of = {t.alias_or_name: t.name for t in qualified.find_all(exp.Table)}
    found: dict[str, tuple[list[str] | None, list[exp.Expression]]] = {
        name: ([], []) for name in schema
    }
    for column in qualified.find_all(exp.Column):
        name = alias_of.get(column.table)
        if name in found and column.name not in found[name][0]:
            found[name][0].append(column.name)
    for select in qualified.find_all(exp.Select):
        for alias, predicate in _pushable(select):
            name = alias_of.get(alias)
            if name in found:
                found[name][1].append(predicate)
    return found


def _pushable(select: exp.Select) -> list[tuple[str, exp.Expression]]:
    """(alias, predicate) for each conjunct of `select` that one of its tables can apply alone."""
    from sqlglot import exp

    joins = select.args.get("joins") or []
    outer = any(j.side in ("RIGHT", "FULL") for j in joins)
    safe: set[str] = set()
    from_ = select.args.get("from_")
    if from_ is not None and isinstance(from_.this, exp.Table) and not outer:
        safe.add(from_.this.alias_or_name)
    candidates: list[tuple[set[str], exp.Expression]] = []
    for join in joins:
        if not isinstance(join.this, exp.Table):
            continue
        alias = join.this.alias_or_name
        if not join.side and not outer:
            safe.add(alias)
        if join.side in ("", "LEFT") and join.args.get("on") is not None:
            candidates += [({alias}, c) for c in _conjuncts(join.args["on"])]
    where = select.args.get("where")
    if where is not None:
        candidates += [(safe, c) for c in _conjuncts(where.this)]
    pushable = []
    for allowed, predicate in candidates:
        tables = exp.column_table_names(predicate)
        if len(tables) == 1 and tables <= allowed and _portable(predicate):
            pushable.append((next(iter(tables)), predicate))
    return pushable


def _conjuncts(condition: exp.Expression) -> list[exp.Expression]:
    from sqlglot import exp

    return list(condition.flatten()) if isinstance(condition, exp.And) else [condition]


def _portable(predicate: exp.Expression) -> bool:
    """No subquery, parameter, aggregate, window or volatile function: means the same there."""
    from sqlglot import exp

    for node in predicate.walk():
        if isinstance(node, (exp.Query, exp.Placeholder, exp.AggFunc, exp.Window, exp.Parameter)):
            return False
        if type(node).__name__ in VOLATILE:
            return False
    return True


def _read_sql(
    source: Source, columns: list[str] | None, filters: list[exp.Expression], dialect: str
) -> str:
    """``SELECT <columns> FROM <table> WHERE <filters>`` for the source's engine."""
    from sqlglot import exp

    table = exp.table_(source.name, db=source.schema, quoted=True)
    if columns is None:
        select = exp.select("*")
    elif columns:
        select = exp.select(*(exp.column(c, quoted=True) for c in columns))
    else:
        select = exp.select(exp.alias_(exp.true(), "aiser_row"))
    query = select.from_(table)
    for predicate in filters:
        bare = predicate.copy()
        for column in bare.find_all(exp.Column):
            column.set("table", None)
        query = query.where(bare, copy=False)
    return to_dialect(query, dialect)


def run_federated(
    pulls: list[Pull],
    sql: str,
    params: Any,
    limit: int | None,
    host: Connection,
    connections: dict[str, Connection],
) -> pa.Table | None:
    """Each pull read as Arrow by its engine and put under its name in DuckDB, then the
    query; the names are taken away again whatever happens."""
    con = host.engine.con  # type: ignore[attr-defined]
    registered = []
    try:
        for pull in pulls:
            rows = connections[pull.source.connection].engine.execute(pull.sql)
            con.register(pull.name, rows)
            registered.append(pull.name)
        return host.engine.execute(sql, params, limit)
    finally:
        for name in registered:
            con.unregister(name)
