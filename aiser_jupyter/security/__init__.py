"""Keeping secrets out of sight, the read-only SQL guard, and (later) policies and audit."""

from __future__ import annotations

from typing import Any

__all__ = ["check_sql"]


def __getattr__(name: str) -> Any:
    """`check_sql` on first use: the guard imports sqlglot, and `secrets` must stay light."""
    if name == "check_sql":
        from aiser_jupyter.security.guard import check_sql

        return check_sql
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
