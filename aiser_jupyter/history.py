"""The kernel's record of what ran: queries, semantic queries and questions."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime


@dataclass(frozen=True)
class HistoryEntry:
    """One query as it ran: secrets already redacted from its text and error."""

    at: datetime
    kind: str
    connection: str
    engine: str
    sql: str
    rows: int | None
    elapsed: float
    error: str | None = None
