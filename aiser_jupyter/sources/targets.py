"""What `connect` accepts, and how each kind of target becomes an engine or a table.

A target is a database URL, a file path or glob, a name from
``~/.aiser/connections.toml``, or an in-memory frame (pandas, polars, Arrow).
Files and frames become tables of the default DuckDB connection.
"""

from __future__ import annotations

import glob
import os
import re
from pathlib import Path
from typing import Any
from urllib.parse import quote, urlsplit

from aiser_jupyter.config import named_connection
from aiser_jupyter.engines.base import Engine
from aiser_jupyter.errors import ConnectionFailed
from aiser_jupyter.security.secrets import redact_url, register, register_url

FILE_READERS = {
    ".csv": "read_csv",
    ".tsv": "read_csv",
    ".txt": "read_csv",
    ".parquet": "read_parquet",
    ".json": "read_json",
    ".ndjson": "read_json",
    ".jsonl": "read_json",
}
EXCEL_SUFFIXES = (".xlsx", ".xls")


def is_frame(target: Any) -> bool:
    """pandas, polars or Arrow data, recognised without importing any of them."""
    module = type(target).__module__.split(".")[0]
    return module in {"pandas", "polars", "pyarrow"} or hasattr(target, "__arrow_c_stream__")


def is_url(target: str) -> bool:
    return "://" in target or target.startswith(("duckdb:", "sqlite:"))


def resolve_named(target: str) -> tuple[str, dict[str, Any]] | None:
    """A bare name found in connections.toml, as a URL with its password put in."""
    entry = named_connection(target)
    if entry is None:
        return None
    url = str(entry.pop("url", ""))
    if not url:
        raise ConnectionFailed(f"connections.toml entry [{target}] has no url")
    password = entry.pop("password", None)
    if password is None and "password_env" in entry:
        password = os.environ.get(str(entry.pop("password_env")))
    if password is not None:
        url = with_password(url, str(password))
    return url, entry


def with_password(url: str, password: str) -> str:
    """`url` with `password` put into its user info (quoted), the secret registered."""
    register(password)
    quoted = quote(password, safe="")
    register(quoted)
    parts = urlsplit(url)
    user = parts.username or ""
    host = parts.netloc.rpartition("@")[2]
    return parts._replace(netloc=f"{user}:{quoted}@{host}").geturl()


def open_url(url: str, **options: Any) -> Engine:
    """An engine for a database URL; environment variables (``${VAR}``) are expanded."""
    url = os.path.expandvars(url)
    register_url(url)
    if options.get("password"):
        url = with_password(url, str(options.pop("password")))
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError on a malformed port
    except ValueError as exc:
        raise ConnectionFailed(f"Malformed URL {redact_url(url)}: {exc}") from None
    scheme = parts.scheme.lower()
    if not re.fullmatch(r"[a-z][a-z0-9+.-]*", scheme):
        raise ConnectionFailed(f"Malformed URL {redact_url(url)}: no scheme")
    if scheme == "duckdb":
        from aiser_jupyter.engines.duckdb import DuckDBEngine

        return DuckDBEngine(duckdb_path(url), read_only=bool(options.get("read_only", False)))
    if scheme in {"postgresql", "postgres", "postgresql+adbc"}:
        from aiser_jupyter.engines.direct import PostgresEngine

        return PostgresEngine(url)
    from aiser_jupyter.engines.direct import SqlAlchemyEngine

    return SqlAlchemyEngine(url)


SERVER_SCHEMES = {"postgresql": ("postgresql", 5432), "mysql": ("mysql+pymysql", 3306)}


def split_named(target: str) -> tuple[str | None, str]:
    """``NAME=URL`` (a command-line ``--connection``) as (NAME, URL); otherwise (None, target)."""
    name, _, url = target.partition("=")
    return (name, url) if url and name.isidentifier() else (None, target)


def build_url(kind: str, **fields: Any) -> str:
    """A connection URL from form fields (the connection panel's): ``postgresql``/``mysql``
    from host, port, database, user, password; ``duckdb``/``sqlite`` from a path."""
    if kind in SERVER_SCHEMES:
        scheme, default_port = SERVER_SCHEMES[kind]
        host = str(fields.get("host") or "localhost")
        user = quote(str(fields.get("user") or ""), safe="")
        password = str(fields.get("password") or "")
        if password:
            register(password)
            user += ":" + quote(password, safe="")
        port = fields.get("port") or default_port
        database = quote(str(fields.get("database") or ""), safe="")
        return f"{scheme}://{user + '@' if user else ''}{host}:{port}/{database}"
    if kind == "duckdb":
        return f"duckdb:///{fields.get('path') or ':memory:'}"
    if kind == "sqlite":
        path = fields.get("path")
        if not path:
            raise ConnectionFailed("A SQLite connection needs a database file path")
        return f"sqlite:///{path}"
    raise ConnectionFailed(f"No URL form for {kind!r} connections: give the URL itself")


def duckdb_path(url: str) -> str:
    """``duckdb://``: in memory; ``duckdb:///rel.db``: relative; ``duckdb:////abs``: absolute."""
    path = url.split(":", 1)[1].removeprefix("//").removeprefix("/")
    return path or ":memory:"


def url_name(url: str) -> str:
    """A default connection name: the database's name, else the scheme."""
    parts = urlsplit(os.path.expandvars(url))
    stem = Path(parts.path).stem if parts.path.strip("/") else ""
    return identifier(stem or parts.scheme.split("+")[0] or "db")


def file_name(pattern: str) -> str:
    """A default table name for a file or glob: its stem, minus wildcards."""
    path = Path(pattern)
    stem = path.name.split(".")[0].strip("*?[]_-")
    return identifier(stem or path.parent.name or "data")


def identifier(text: str) -> str:
    cleaned = re.sub(r"\W+", "_", text).strip("_").lower() or "t"
    return f"t_{cleaned}" if cleaned[0].isdigit() else cleaned


def matching_files(pattern: str) -> list[str]:
    """Files a path or glob names; none is an error that says what was looked for."""
    expanded = os.path.expanduser(pattern)
    files = sorted(glob.glob(expanded, recursive=True))
    if not files:
        raise ConnectionFailed(f"No file matches {pattern!r} (looked in {os.getcwd()})")
    return files


def file_suffix(pattern: str) -> str:
    suffix = Path(pattern).suffix.lower()
    if suffix == ".gz":
        suffix = Path(pattern[:-3]).suffix.lower()
    if suffix not in FILE_READERS and suffix not in EXCEL_SUFFIXES:
        known = ", ".join(sorted({*FILE_READERS, *EXCEL_SUFFIXES}))
        raise ConnectionFailed(f"Don't know how to read {pattern!r}: expected one of {known}")
    return suffix


def file_relation_sql(files: list[str], suffix: str) -> str:
    """``SELECT * FROM read_xxx([...])``, built with sqlglot so paths are quoted right."""
    from sqlglot import exp

    paths = exp.Array(expressions=[exp.Literal.string(f) for f in files])
    reader = exp.Anonymous(this=FILE_READERS[suffix], expressions=[paths])
    return exp.select("*").from_(reader).sql(dialect="duckdb")
