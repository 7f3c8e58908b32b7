"""Errors a user sees. Each carries a short message meant to be read, not a traceback."""

from __future__ import annotations

import sys


class AiserError(Exception):
    """Base of every error aiser-jupyter raises on purpose; shown without a traceback."""

    def _render_traceback_(self) -> list[str]:
        """What IPython shows instead of a traceback: the error's name and its message."""
        # Secrets are known to security.secrets only, once it is loaded (registering one loads
        # it); looked up, not imported, so that errors stay at the bottom of the layers.
        secrets = sys.modules.get("aiser_jupyter.security.secrets")
        message = str(self) if secrets is None else secrets.redact(str(self))
        return [f"\x1b[0;31m{type(self).__name__}\x1b[0m: {message}"]


class ConnectionFailed(AiserError):
    """A target could not be reached, parsed or found."""


class UnknownConnection(AiserError):
    """A connection name that the Session does not hold."""


class QueryError(AiserError):
    """The database refused a query; the message is the database's own."""

    def __init__(self, message: str, *, sql: str | None = None, connection: str | None = None):
        super().__init__(message)
        self.sql = sql
        self.connection = connection


class QueryInterrupted(QueryError):
    """The user interrupted a running query; the database stopped it."""


class ParameterError(AiserError):
    """A `:name` parameter or a `{{ expression }}` could not be resolved."""


class QueryTimeout(QueryError):
    """A query ran past its time limit and was stopped; the connection still works."""


class UnsafeSQLError(QueryError):
    """The read-only guard refused a statement; the message says why."""
