"""Settings, read once from the environment and ``~/.aiser/``; changed later on `Session.settings`.

The home folder (``AISER_HOME``, default ``~/.aiser``) holds ``config.toml`` for
settings and ``connections.toml`` for named connections, so that credentials
live outside notebooks.
"""

from __future__ import annotations

import dataclasses
import os
import sys
from dataclasses import dataclass, fields
from pathlib import Path
from typing import Any

if sys.version_info >= (3, 11):
    import tomllib
else:  # pragma: no cover - exercised on Python 3.10 only
    import tomli as tomllib

from aiser_jupyter.errors import ConnectionFailed


def home() -> Path:
    return Path(os.environ.get("AISER_HOME", "~/.aiser")).expanduser()


def read_toml(path: Path) -> dict[str, Any]:
    """Parse a TOML file; a broken file is an error that names the file and the line."""
    if not path.is_file():
        return {}
    try:
        return tomllib.loads(path.read_text(encoding="utf-8"))
    except tomllib.TOMLDecodeError as exc:
        raise ConnectionFailed(f"{path}: {exc}") from None


@dataclass
class Settings:
    """What a user may tune; each field can be set by ``AISER_<FIELD>`` or ``config.toml``."""

    display_rows: int = 10
    """Rows shown when a result is displayed (the whole result stays in `Result.df`)."""
    default_connection: str = "duckdb"
    """The connection a query uses when none is named and none was made current."""
    duckdb_database: str = ":memory:"
    """Where the default DuckDB connection keeps its data."""
    preaggregation_cache: str = ":memory:"
    """Where rollups are materialised (a DuckDB file keeps them across kernels; one kernel
    at a time can open it)."""
    preaggregation_shared: str = ""
    """A folder of rollups shared by every process that names it (``aiser serve`` processes,
    machines on a shared file system): each built once, as Parquet, under a file lock."""
    memory: str = dataclasses.field(default_factory=lambda: str(home() / "memory.db"))
    """Where the agent's memory lives: a SQLite file (WAL mode) or a ``postgresql://`` URL."""
    model: str = ""
    """The model ``%%ask`` uses, as litellm names it (``openai/gpt-4o-mini``,
    ``ollama/llama3.1``…); empty: answer with the offline planner."""
    api_base: str = ""
    """An OpenAI-compatible endpoint for the model (a local server, a proxy)."""
    model_timeout: int = 30
    """Seconds one model call may take before the agent answers offline instead."""
    agent_max_steps: int = 8
    """Model calls one question may use."""
    agent_token_budget: int = 20_000
    """Prompt and answer tokens one question may use."""
    row_cap: int = 10_000
    """Rows an agent's or a read-only query returns at most."""
    query_timeout: int = 60
    today: str = ""
    """The day "last quarter" or "this year" counts from in ``%%ask``: a date (YYYY-MM-DD),
    or ``data`` for the last day of the data (historical data sets); empty: the real today,
    unless the model sets ``meta: {today: ...}`` on a cube."""
    """Seconds an agent's or a read-only query may run."""
    audit: str = ""
    """Where every query is recorded (a SQLite file or a ``postgresql://`` URL); empty:
    ``$AISER_HOME/audit.db``; ``off``: not recorded."""
    cache: str = "on"
    """``on``: repeated queries over unchanged files, lakes and APIs come from the result
    cache; ``off``."""
    cache_ttl: int = 0
    """Seconds a database result may be reused (databases cannot say cheaply whether they
    changed); 0 reuses none."""
    cache_memory_mb: int = 512
    cache_disk_mb: int = 4096
    """Bounds of the cache in memory and under ``$AISER_HOME/cache``; LRU beyond them."""
    audit_retention_days: int = 0
    """Days an audit entry's personal fields stay readable; older ones are crypto-shredded
    (the entry stays, its hash chain verifies) at session start and hourly. 0: kept."""
    memory_retention_days: int = 0
    """Days the agent's memory keeps an entry; older ones are erased at session start and
    hourly. 0: kept."""
    log_level: str = "off"
    """What other libraries (sqlglot, litellm, uvicorn, httpx, pyspark, the MCP SDK) may log
    to the notebook: ``off``, ``error``, ``warning``, ``info`` or ``debug``."""
    widgets: str = "auto"
    """``auto``: charts and big results show as live widgets where a widget front end is
    attached (JupyterLab, Notebook 7, Voila), as static HTML elsewhere; ``on``; ``off``."""
    alerts: str = ""
    """Where alert state (last values, firings, the outbox of notifications) is kept: a
    SQLite file; empty: ``$AISER_HOME/alerts.db``."""
    smtp_host: str = ""
    smtp_port: int = 25
    smtp_user: str = ""
    smtp_password: str = ""
    smtp_from: str = ""
    smtp_starttls: str = "off"
    """The SMTP server ``email:`` alert targets go through (``on``: STARTTLS first; a user
    logs in with the password, which never shows in outputs, errors or state)."""

    @classmethod
    def load(cls) -> Settings:
        values: dict[str, Any] = dict(read_toml(home() / "config.toml").get("settings", {}))
        for field in fields(cls):
            env = os.environ.get(f"AISER_{field.name.upper()}")
            if env is not None:
                values[field.name] = env
        known = {f.name: f for f in fields(cls)}
        kwargs = {}
        for key, value in values.items():
            if key in known:
                kwargs[key] = int(value) if known[key].type == "int" else str(value)
        return cls(**kwargs)


def named_connection(name: str) -> dict[str, Any] | None:
    """The entry `name` of ``connections.toml`` (``[name] url = … password = …``), if any."""
    entry = read_toml(home() / "connections.toml").get(name)
    return dict(entry) if isinstance(entry, dict) else None
