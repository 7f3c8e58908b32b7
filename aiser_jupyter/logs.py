"""Other libraries' log lines stay out of the notebook unless the user asks for them.

sqlglot warns when it falls back to a Command ("'LOAD httpfs' contains unsupported
syntax"), litellm, uvicorn, httpx, pyspark and the MCP SDK log at INFO or WARNING; with
no handler configured, Python prints warnings to stderr, which a notebook shows under the
cell. ``quiet_libraries`` sets those loggers to the ``log_level`` setting
(``AISER_LOG_LEVEL``: ``off`` by default, else ``error``, ``warning``, ``info``,
``debug``). Standard library only: it runs when a Session starts.
"""

from __future__ import annotations

import logging

LIBRARIES = (
    "sqlglot",
    "litellm",
    "LiteLLM",
    "LiteLLM Router",
    "LiteLLM Proxy",
    "openai",
    "httpx",
    "httpcore",
    "uvicorn",
    "uvicorn.error",
    "uvicorn.access",
    "uvicorn.asgi",
    "py4j",
    "pyspark",
    "SQLQueryContextLogger",
    "DataFrameQueryContextLogger",
    "mcp",
    "fastapi",
    "sse_starlette",
)
"""Loggers of the libraries aiser-jupyter drives (uvicorn's named one by one: it sets their
levels itself)."""

OFF = logging.CRITICAL + 10


def level_of(setting: str | int | None) -> int:
    """The logging level a ``log_level`` setting names (``off``, empty: nothing at all)."""
    if isinstance(setting, int):
        return setting
    text = (setting or "off").strip().lower()
    if text in ("off", "none", "quiet", ""):
        return OFF
    level = logging.getLevelName(text.upper())
    if not isinstance(level, int):
        raise ValueError(f"Unknown log level {setting!r}: off, error, warning, info or debug")
    return level


def quiet_libraries(setting: str | int | None = "off") -> int:
    """Set the libraries' loggers to the level `setting` names; that level."""
    level = level_of(setting)
    for name in LIBRARIES:
        logging.getLogger(name).setLevel(level)
    return level
