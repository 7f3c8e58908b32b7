"""The privacy part: one person's data across memory, audit log and result cache.

``Privacy(settings, memory, audit, routing, who)`` is built by the Session from the parts
that hold personal data. A data subject is the security context's user, else the OS user.
`export` writes what is held about them as JSON, `erase` removes it: memory entries are
deleted (no copy left in the store), cached answers they asked for are dropped, and their
audit entries are crypto-shredded (the keys of their personal fields destroyed, so the
append-only hash chain still verifies). `purge` applies the retention settings, at session
start and every hour after.
"""

from __future__ import annotations

import json
import os
import threading
from collections.abc import Callable
from dataclasses import asdict
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.security.keys import describe

if TYPE_CHECKING:
    from aiser_jupyter.config import Settings
    from aiser_jupyter.engines.routing import Routing
    from aiser_jupyter.governance.audit import AuditLog
    from aiser_jupyter.memory import Memory

EXPORT_FORMAT = "aiser-subject-export/1"
PURGE_EVERY_S = 3600.0


class Privacy:
    """Export, erase and retention over the parts that hold personal data."""

    def __init__(
        self,
        settings: Settings,
        memory: Callable[[], Memory],
        audit: Callable[[], AuditLog | None],
        routing: Routing,
        who: Callable[[], str],
    ):
        self.settings = settings
        self.memory = memory
        self.audit = audit
        self.routing = routing
        self.who = who
        self._timer: threading.Timer | None = None

    def status(self) -> str:
        """Whether data at rest is encrypted (and with what key), and the retention."""
        lines = [describe()]
        for name in ("audit", "memory"):
            days = int(getattr(self.settings, f"{name}_retention_days", 0) or 0)
            lines.append(f"{name} retention: " + (f"{days} days" if days else "kept"))
        return "\n".join(lines)

    def held(self, subject: str | None = None) -> dict[str, Any]:
        """Everything held about `subject` (default: who asks now), as plain data."""
        subject = subject or self.who()
        audit = self.audit()
        cache = self.routing.result_cache
        answers = []
        for key in self.routing.cache_owners.keys(subject):
            table = cache.peek(key)
            if table is not None:
                answers.append({"key": key, "rows": table.to_pylist()})
        return {
            "format": EXPORT_FORMAT,
            "subject": subject,
            "exported_at": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "memory": [_plain(asdict(e)) for e in self.memory().of_subject(subject)],
            "audit": [asdict(e) for e in audit.entries(user=subject)] if audit else [],
            "cached_answers": answers,
        }

    def export(self, subject: str | None, path: str | os.PathLike[str]) -> dict[str, int]:
        """Write `held(subject)` as JSON to `path`; how many of each kind were written."""
        document = self.held(subject)
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=2, default=str, ensure_ascii=False))
        return {k: len(document[k]) for k in ("memory", "audit", "cached_answers")}

    def erase(self, subject: str | None = None) -> dict[str, int]:
        """Remove what is held about `subject`; how many of each kind."""
        subject = subject or self.who()
        memory = self.memory().erase_subject(subject)
        cache = self.routing.result_cache
        answers = sum(cache.drop(key) for key in self.routing.cache_owners.forget(subject))
        audit = self.audit()
        shredded = audit.erase(subject) if audit else 0
        return {"memory": memory, "audit": shredded, "cached_answers": answers}

    def purge(self) -> dict[str, int]:
        """Apply the retention settings now: memory entries older than
        ``memory_retention_days`` deleted, audit entries older than ``audit_retention_days``
        crypto-shredded. 0 keeps everything."""
        done = {"memory": 0, "audit": 0}
        memory_days = int(getattr(self.settings, "memory_retention_days", 0) or 0)
        audit_days = int(getattr(self.settings, "audit_retention_days", 0) or 0)
        now = datetime.now(timezone.utc)
        if memory_days > 0:
            done["memory"] = self.memory().purge(now - timedelta(days=memory_days))
        audit = self.audit()
        if audit_days > 0 and audit is not None:
            done["audit"] = audit.retire(now - timedelta(days=audit_days))
        return done

    def start_retention(self) -> None:
        """Purge now (when a retention is set) and every hour after, on a daemon timer."""
        if not any(
            int(getattr(self.settings, f"{n}_retention_days", 0) or 0) for n in ("audit", "memory")
        ):
            return
        self.purge()
        self._timer = threading.Timer(PURGE_EVERY_S, self.start_retention)
        self._timer.daemon = True
        self._timer.start()

    def close(self) -> None:
        if self._timer is not None:
            self._timer.cancel()
            self._timer = None
        self.routing.cache_owners.close()


def _plain(entry: dict[str, Any]) -> dict[str, Any]:
    entry.pop("score", None)
    return {k: v.isoformat() if isinstance(v, datetime) else v for k, v in entry.items()}
