"""Running one statement on one connection, recorded: the single place a query executes.

``Executor.run`` prepares the statement (binding parameters), runs it (read-only under the
row cap and time limit when asked), hides secrets in errors, and hands a HistoryEntry to
`record` whether it worked or not. The SQL path, the router and the semantic layer all run
through it, so the history, the audit log and the sidebar see every query.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from datetime import datetime
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError
from aiser_jupyter.history import HistoryEntry
from aiser_jupyter.result import Result
from aiser_jupyter.security.secrets import redact

if TYPE_CHECKING:
    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.connection import Connection

Prepare = Callable[[], tuple[str, Any]]
"""Returns the final SQL and its parameter values (called inside the recorded span)."""


class Executor:
    """Runs statements on connections and records each in the history.

    `settings` gives ``row_cap``, ``query_timeout`` and ``display_rows``; `record` receives
    a HistoryEntry per statement (the Session appends it to its history and tells views).
    """

    def __init__(self, settings: Settings, record: Callable[[HistoryEntry], None]):
        self.settings = settings
        self.record = record

    def run(
        self,
        conn: Connection,
        kind: str,
        shown: str,
        prepare: Prepare,
        limit: int | None,
        notes: list[str],
        read_only: bool = False,
    ) -> Result:
        """Prepare and execute a statement; either way it goes into the history, secrets hidden."""
        started = time.perf_counter()
        table, error = None, None
        try:
            final, values = prepare()
            if read_only:
                table = self._read_only(conn, final, values, limit, notes)
            else:
                table = conn.engine.execute(final, values, limit)
        except AiserError as exc:
            exc.args = (redact(str(exc)),)
            error = str(exc)
            raise
        finally:
            elapsed = time.perf_counter() - started
            self.record(
                HistoryEntry(
                    at=datetime.now(),
                    kind=kind,
                    connection=conn.name,
                    engine=conn.kind,
                    sql=redact(shown),
                    rows=None if table is None else table.num_rows,
                    elapsed=elapsed,
                    error=error,
                )
            )
        return Result(
            table,
            sql=redact(shown),
            connection=conn.name,
            elapsed=elapsed,
            notes=notes,
            display_rows=self.settings.display_rows,
        )

    def _read_only(
        self, conn: Connection, sql: str, values: Any, limit: int | None, notes: list[str]
    ) -> Any:
        from aiser_jupyter.security.guard import check_sql

        check_sql(sql, conn.engine.dialect)
        cap = self.settings.row_cap if limit is None else min(limit, self.settings.row_cap)
        table = conn.engine.execute_read_only(
            sql, values, limit=cap, timeout=self.settings.query_timeout
        )
        if table.num_rows >= cap and (limit is None or cap < limit):
            notes.append(f"stopped at the {cap:,}-row cap")
        return table
