"""The read-only guard: SQL that an agent or a shared notebook hands us runs only if it reads.

The text is parsed with sqlglot and allowed only as one statement whose root is a query
(SELECT, WITH, VALUES, a set operation) or DESCRIBE, SUMMARIZE, PIVOT/UNPIVOT. Every node
inside is checked too: statements nested in CTEs (PostgreSQL runs ``WITH x AS (DELETE …)``),
SELECT INTO, row locks, table functions outside a short allow-list, tables named by file
path or URL, and functions that read files, reveal the environment or change state.
Statement kinds are allowed by name and anything else is refused, so what sqlglot cannot
type (it falls back to ``exp.Command``) fails closed.

This is the first wall. Engines run checked text read-only as the second (a read-only
transaction in PostgreSQL, a DuckDB with external access off), so that a gap here does
not become a write.
"""

from __future__ import annotations

from typing import NoReturn

import sqlglot
from sqlglot import exp

from aiser_jupyter.errors import UnsafeSQLError

ALLOWED = "SELECT, WITH, VALUES, DESCRIBE, SUMMARIZE or PIVOT"

QUERIES = (exp.Select, exp.SetOperation, exp.Subquery, exp.Values)
"""What a statement, a CTE or a subquery may be."""

ROOT_STATEMENTS = (exp.Describe, exp.Summarize, exp.Pivot)
"""Statements that only read, allowed as a whole statement over a table or a query."""

BODIES = (*QUERIES, exp.Pivot)
"""What a CTE or a subquery may hold: DuckDB's PIVOT statement reads like a query."""


def _nodes(*pairs: tuple[str, str]) -> dict[type, str]:
    """sqlglot classes by name (skipping any this sqlglot lacks), with why each is refused."""
    return {getattr(exp, name): why for name, why in pairs if hasattr(exp, name)}


REFUSED_NODES = _nodes(
    ("Insert", "INSERT writes data"),
    ("Update", "UPDATE writes data"),
    ("Delete", "DELETE writes data"),
    ("Merge", "MERGE writes data"),
    ("TruncateTable", "TRUNCATE deletes data"),
    ("Copy", "COPY reads or writes files"),
    ("LoadData", "LOAD DATA reads files"),
    ("Export", "EXPORT writes files"),
    ("Create", "CREATE changes the database"),
    ("Drop", "DROP changes the database"),
    ("Alter", "ALTER changes the database"),
    ("Comment", "COMMENT changes the catalog"),
    ("Grant", "GRANT changes permissions"),
    ("Revoke", "REVOKE changes permissions"),
    ("Analyze", "ANALYZE updates statistics"),
    ("Cache", "CACHE changes cached data"),
    ("Uncache", "UNCACHE changes cached data"),
    ("Refresh", "REFRESH changes cached data"),
    ("Into", "SELECT INTO creates a table"),
    ("Lock", "FOR UPDATE/FOR SHARE locks rows"),
    ("Set", "SET changes settings"),
    ("Pragma", "PRAGMA reads or changes engine settings"),
    ("Attach", "ATTACH opens another database"),
    ("Detach", "DETACH closes a database"),
    ("Install", "INSTALL downloads an extension"),
    ("Use", "USE changes the default database"),
    ("Transaction", "transaction control is not a query"),
    ("Commit", "transaction control is not a query"),
    ("Rollback", "transaction control is not a query"),
    ("Declare", "DECLARE is not a query"),
    ("Kill", "KILL ends sessions"),
    ("Show", "SHOW is not supported here; query information_schema.tables or .columns"),
    ("NextValueFor", "NEXT VALUE FOR advances a sequence"),
)

COMMANDS = {
    "EXPLAIN": "EXPLAIN is not supported here (EXPLAIN ANALYZE runs the statement)",
    "LOAD": "LOAD loads an extension",
    "CALL": "CALL runs a procedure",
    "DO": "DO runs procedural code",
    "SET": "SET changes settings",
    "RESET": "RESET changes settings",
    "VACUUM": "VACUUM rewrites storage",
    "CHECKPOINT": "CHECKPOINT writes the database",
}
"""Reasons for statements sqlglot parses only as a Command, or as a bare word."""

TABLE_FUNCTIONS = frozenset(
    {
        "unnest",
        "explode",
        "range",
        "generate_series",
        "exploding_generate_series",
        "generate_subscripts",
        "regexp_matches",
        "regexp_split_to_table",
        "string_to_table",
        "json_each",
        "json_each_text",
        "jsonb_each",
        "jsonb_each_text",
        "json_array_elements",
        "json_array_elements_text",
        "jsonb_array_elements",
        "jsonb_array_elements_text",
        "json_object_keys",
        "jsonb_object_keys",
        "json_to_record",
        "jsonb_to_record",
        "json_to_recordset",
        "jsonb_to_recordset",
        "jsonb_path_query",
    }
)
"""Functions allowed in FROM: they compute rows from their arguments and touch nothing else."""

RUNS_SQL = "runs SQL from a string, which the guard cannot check"
DENIED_FUNCTIONS = {
    "getenv": "reads the environment",
    "current_setting": "reads engine or server settings",
    "set_config": "changes settings",
    "nextval": "advances a sequence",
    "setval": "changes a sequence",
    "currval": "reads session state",
    "lastval": "reads session state",
    "setseed": "changes the random state",
    "pg_sleep": "only waits",
    "pg_sleep_for": "only waits",
    "pg_sleep_until": "only waits",
    "query": RUNS_SQL,
    "query_table": RUNS_SQL,
    "glob": "lists files",
    "sniff_csv": "reads a file",
    "which_secret": "reveals secrets",
    "checkpoint": "writes the database",
    "force_checkpoint": "writes the database",
    "pg_stat_file": "reads server files",
    "pg_export_snapshot": "exports transaction state",
    "pg_notify": "sends a notification to other sessions",
}
DENIED_PREFIXES = (
    ("read_", "reads files"),
    ("parquet_", "reads files"),
    ("iceberg_", "reads files"),
    ("delta_", "reads files"),
    ("sqlite_", "opens another database"),
    ("postgres_", "opens another database"),
    ("mysql_", "opens another database"),
    ("dblink", "opens a connection to another database"),
    ("duckdb_", "reveals engine state and settings"),
    ("pragma_", "reveals engine state and settings"),
    ("pg_read_", "reads server files"),
    ("pg_ls_", "lists server files"),
    ("pg_file", "touches server files"),
    ("lo_", "reads or writes server files (large objects)"),
    ("pg_advisory", "takes locks"),
    ("pg_try_advisory", "takes locks"),
    ("txid_", "reads transaction state"),
    ("pg_current_xact", "reads transaction state"),
    ("pg_terminate", "ends other sessions"),
    ("pg_cancel", "cancels other sessions"),
    ("pg_reload", "administers the server"),
    ("pg_rotate", "administers the server"),
    ("pg_switch", "administers the server"),
    ("pg_promote", "administers the server"),
    ("pg_create_", "administers the server"),
    ("pg_drop_", "administers the server"),
    ("pg_replication_", "administers the server"),
    ("pg_logical_", "administers the server"),
)
DENIED_SUFFIXES = (
    ("_scan", "reads files or another database"),
    ("_attach", "opens another database"),
    ("_execute", RUNS_SQL),
    ("_query", RUNS_SQL),
)
DENIED_FRAGMENTS = (
    ("_to_xml", RUNS_SQL),
    ("_reset", "resets server state"),
)
DENIED_TABLES = {
    "pg_settings": "reveals server settings",
    "pg_stat_activity": "reveals other sessions' queries",
    "pg_file_settings": "reveals server files",
    "pg_hba_file_rules": "reveals server files",
    "pg_ident_file_mappings": "reveals server files",
}
DENIED_TABLE_PREFIXES = (
    ("duckdb_", "reveals engine state and settings"),
    ("pragma_", "reveals engine state and settings"),
)
PATH_CHARACTERS = frozenset("./\\:*?~")
"""A table name with one of these is a file path, glob or URL to DuckDB (``FROM 'x.csv'``)."""
FILE_EXTENSIONS = frozenset(
    {"csv", "tsv", "txt", "json", "jsonl", "ndjson", "parquet", "arrow", "feather", "avro"}
    | {"xlsx", "xls", "gz", "zst", "bz2", "xz", "db", "duckdb", "sqlite"}
)
"""DuckDB reads ``FROM data.csv`` (schema ``data``, table ``csv``) as the file data.csv."""


def check_sql(sql: str, dialect: str = "duckdb") -> exp.Expression:
    """The parsed statement if `sql` is one read-only query, else `UnsafeSQLError` saying why."""
    try:
        statements = [s for s in sqlglot.parse(sql, read=dialect) if s is not None]
    except sqlglot.errors.SqlglotError as exc:
        _refuse(f"could not parse the SQL ({_parse_error(exc)})", sql)
    if not statements:
        _refuse("there is no statement", sql)
    if len(statements) > 1:
        _refuse(f"{len(statements)} statements; one at a time", sql)
    tree = statements[0]
    reason = _root_refusal(tree, sql, dialect)
    if reason is None:
        inner = (_refusal(node) for node in tree.walk() if node is not tree)
        reason = next(filter(None, inner), None)
    if reason is not None:
        _refuse(reason, sql)
    return tree


def _parse_error(exc: sqlglot.errors.SqlglotError) -> str:
    """sqlglot's description and position, without the token dump that follows it."""
    errors = getattr(exc, "errors", None)
    if errors:
        first = errors[0]
        description = str(first["description"]).partition(" but got <Token")[0]
        return f"{description}, line {first['line']}, column {first['col']}"
    return str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__


def _refuse(reason: str, sql: str) -> NoReturn:
    message = f"Refused: {reason}. Only one read-only query may run ({ALLOWED})."
    raise UnsafeSQLError(message, sql=sql)


def _root_refusal(tree: exp.Expression, sql: str, dialect: str) -> str | None:
    """Why the statement itself is not allowed, or None."""
    if isinstance(tree, QUERIES):
        return _refusal(tree)
    if isinstance(tree, ROOT_STATEMENTS):
        target = tree.this
        if not isinstance(target, (exp.Table, *QUERIES)):
            return f"{tree.key.upper()} of something other than a table or a query"
        return None
    if type(tree) in REFUSED_NODES:
        return REFUSED_NODES[type(tree)]
    keyword = _first_keyword(sql, dialect)
    return COMMANDS.get(keyword, f"{keyword} is not a read-only query")


def _first_keyword(sql: str, dialect: str) -> str:
    tokens = sqlglot.tokenize(sql, read=dialect)
    return tokens[0].text.upper() if tokens else "the statement"


def _refusal(node: exp.Expression) -> str | None:
    """Why this node may not appear in a read-only query, or None."""
    for kind, why in REFUSED_NODES.items():
        if isinstance(node, kind):
            return why
    if isinstance(node, exp.Command):
        keyword = str(node.this).upper()
        return COMMANDS.get(keyword, f"{keyword} is not a read-only query")
    if isinstance(node, (exp.Describe, exp.Summarize)):
        return f"{node.key.upper()} inside a query"
    if isinstance(node, (exp.CTE, exp.Subquery)) and not isinstance(node.this, BODIES):
        if isinstance(node, exp.Subquery) and isinstance(node.this, exp.Table):
            return None  # FROM (t), checked as a table
        return _refusal(node.this) or f"a {node.this.key.upper()} inside a query"
    if isinstance(node, exp.Func):
        return _function_refusal(node)
    if isinstance(node, exp.Table):
        return _table_refusal(node)
    return None


def function_name(node: exp.Func) -> str:
    """A function's name as written (unknown functions) or sqlglot's canonical name, lowercase."""
    return (node.name if node.key.startswith("anonymous") else node.sql_name()).lower()


def _function_refusal(node: exp.Func) -> str | None:
    name = function_name(node)
    why = DENIED_FUNCTIONS.get(name)
    why = why or next((w for p, w in DENIED_PREFIXES if name.startswith(p)), None)
    why = why or next((w for s, w in DENIED_SUFFIXES if name.endswith(s)), None)
    why = why or next((w for f, w in DENIED_FRAGMENTS if f in name), None)
    if why:
        return f"{name}() {why}"
    in_from = isinstance(node.parent, (exp.Table, exp.From, exp.Join, exp.Lateral))
    if in_from and name not in TABLE_FUNCTIONS:
        return f"the table function {name}() is not one known to touch nothing but its arguments"
    return None


def _table_refusal(node: exp.Table) -> str | None:
    if isinstance(node.this, exp.Literal):
        return f"FROM '{node.this.name}' reads a file or URL"
    if isinstance(node.this, exp.Func) or (node.this is None and node.args.get("rows_from")):
        return None  # a table function, a ROWS FROM list: checked as functions
    if not isinstance(node.this, exp.Identifier):
        return "a table named by an expression the guard cannot check"
    parts = [part.name for part in node.parts if isinstance(part, exp.Identifier)]
    if any(PATH_CHARACTERS & set(part) for part in parts) or (
        len(parts) > 1 and parts[-1].lower() in FILE_EXTENSIONS
    ):
        return f"FROM '{'.'.join(parts)}' reads a file or URL"
    name = node.name.lower()
    why = DENIED_TABLES.get(name)
    why = why or next((w for p, w in DENIED_TABLE_PREFIXES if name.startswith(p)), None)
    return f"the table {name} {why}" if why else None
