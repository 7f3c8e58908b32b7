"""The governance part: who is asking, the audit log, lineage, profiles, checks.

``Governance(settings, semantic, history, on_change)`` owns the Session's security context
and its audit log. The audit log listens to the history's change events (`on_change`), so
every query that runs (``%%sql``, ``%%query``, the agent's) is recorded with the requester,
and refusals (policies, the read-only guard) with their reason. Lineage, profiles and
checks read the model and the connections through `semantic` (a ``SemanticLayer``).
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Callable, Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.errors import AiserError, UnsafeSQLError
from aiser_jupyter.security.context import AccessDenied, SecurityContext, as_context, current

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.config import Settings
    from aiser_jupyter.governance.audit import AuditEntry, AuditLog
    from aiser_jupyter.governance.checks import Check, CheckReport
    from aiser_jupyter.governance.lineage import Lineage
    from aiser_jupyter.governance.quality import Profile
    from aiser_jupyter.governance.report import AuditReport
    from aiser_jupyter.history import HistoryEntry
    from aiser_jupyter.result import Result
    from aiser_jupyter.semantic.layer import SemanticLayer

REFUSALS = (UnsafeSQLError, AccessDenied)
"""Errors that mean "not allowed" rather than "went wrong"."""


class Governance:
    """Security context, audit, lineage and data quality of one Session."""

    def __init__(
        self,
        settings: Settings,
        semantic: SemanticLayer,
        history: Sequence[HistoryEntry],
        on_change: Callable[[Callable[[str], object]], Callable[[], None]],
    ):
        self.settings = settings
        self.semantic = semantic
        self.history = history
        self.on_change = on_change
        self.security_context: SecurityContext | None = None
        """Who this Session's queries run as (``set_context``); None: the notebook's owner."""
        self._audit_log: AuditLog | None = None
        self._audit_stop: Callable[[], None] | None = None
        self._policies_seen: str | None = None

    # -- who is asking ---------------------------------------------------------------

    def set_context(
        self,
        context: SecurityContext | Mapping[str, Any] | None = None,
        /,
        *,
        user: str | None = None,
        groups: Sequence[str] = (),
        tenant: str | None = None,
        **attributes: Any,
    ) -> SecurityContext | None:
        """Run this Session's queries as a requester (a SecurityContext, JWT-style claims, or
        the fields themselves); the model's access policies decide what they see, and
        personal data shows masked. ``set_context()`` with nothing returns to the owner."""
        if context is None and (user or groups or tenant or attributes):
            context = SecurityContext(user, tuple(groups), tenant, attributes)
        self.security_context = as_context(context)
        self.start_audit()
        return self.security_context

    def check_raw_access(self) -> None:
        """Refuse SQL on raw tables for a requester whom the model's policies restrict (raw
        SQL would read past them), unless their context allows it (attribute ``raw_sql``)."""
        who = current() or self.security_context
        model = self.semantic.model
        if who is None or model is None or not model.policies:
            return
        if not who.attributes.get("raw_sql"):
            raise AccessDenied(
                f"{who.describe()} may query through the semantic model only: "
                "SQL on raw tables would bypass its access policies"
            )

    def mask_for_model(self, result: Result, *, allow_pii: bool = False) -> Result:
        """`result` with personal data masked, for a prompt to a language model."""
        from aiser_jupyter.semantic.masking import mask_for_model

        return mask_for_model(self.semantic, result, allow_pii=allow_pii)

    # -- audit ---------------------------------------------------------------------------

    def start_audit(self, target: str | Path | None = None) -> AuditLog:
        """Record every query of this Session from now on, in `target` (a SQLite file or a
        PostgreSQL URL; default the ``audit`` setting, else ``$AISER_HOME/audit.db``)."""
        if self._audit_log is None:
            from aiser_jupyter.config import home
            from aiser_jupyter.governance.audit import AuditLog

            where = target or getattr(self.settings, "audit", "") or home() / "audit.db"
            self._audit_log = AuditLog(where)
            self._audit_stop = self.on_change(self._audit_history)
        return self._audit_log

    def stop_audit(self) -> None:
        """Stop recording and close the audit log (``Session.close`` does this)."""
        if self._audit_stop is not None:
            self._audit_stop()
            self._audit_stop = None
        if self._audit_log is not None:
            self._audit_log.close()
            self._audit_log = None

    @property
    def audit_log(self) -> AuditLog:
        return self.start_audit()

    def _audit_history(self, what: str) -> None:
        """A history event: the query that just ran (or failed, or was refused) goes in; a
        model event: its access policies, when they changed."""
        if what == "model":
            self._audit_policies()
            return
        if what != "history" or not self.history:
            return
        entry = self.history[-1]
        error = sys.exc_info()[1] if entry.error is not None else None
        outcome = (
            "allowed"
            if entry.error is None
            else ("refused" if isinstance(error, REFUSALS) else "failed")
        )
        try:
            self.audit_log.submit(
                entry.kind,
                entry.sql,
                context=current() or self.security_context,
                connection=entry.connection,
                engine=entry.engine,
                rows=entry.rows,
                duration=entry.elapsed,
                outcome=outcome,
                reason=entry.error,
            )
        except AiserError as exc:  # raising would unhook the listener: say so, keep listening
            warnings.warn(f"not audited: {exc}", RuntimeWarning, stacklevel=2)

    def _audit_policies(self) -> None:
        """The model's access policies into the audit log (kind ``policy``) when a model
        loaded later in this Session changes them (the first model's are the baseline)."""
        model = self.semantic.model
        written = {
            name: cube.access_policy
            for name, cube in (model.cubes.items() if model is not None else ())
            if cube.access_policy
        }
        text = json.dumps(written, sort_keys=True, default=str)
        if self._policies_seen is None:
            self._policies_seen = text
        elif text != self._policies_seen:
            self._policies_seen = text
            self.audit_log.submit(
                "policy",
                text,
                context=current() or self.security_context,
                reason=f"access policies of {len(written)} cubes",
            )

    def audit_report(self, since: datetime | timedelta | str = "30d") -> AuditReport:
        """Who queried what, refusals and why, access to personal data, policy changes and
        alert firings since `since` (a time, an ISO text or an age); ``.to_html()``,
        ``.save(path)`` for an auditor."""
        from aiser_jupyter.governance.audit import _since
        from aiser_jupyter.governance.report import build_report

        entries = self.audit_log.entries(since)
        return build_report(entries, self.semantic.model, _since(since)[:19])

    def refused(self, kind: str, query: Any, error: Exception) -> None:
        """A query refused before it ran (a policy said no, or it was malformed)."""
        if self._audit_log is None:
            return
        text = query if isinstance(query, str) else json.dumps(query, default=str)
        self._audit_log.submit(
            kind,
            text,
            context=current() or self.security_context,
            outcome="refused" if isinstance(error, REFUSALS) else "failed",
            reason=str(error),
        )

    def audit(
        self,
        since: datetime | timedelta | str | None = None,
        *,
        user: str | None = None,
        limit: int | None = None,
    ) -> pd.DataFrame:
        """The audit log as a table; `since` a time, an ISO text or an age (``2h``, ``7d``)."""
        return self.audit_log.frame(since, user=user, limit=limit)

    def audit_entries(
        self, since: datetime | timedelta | str | None = None, *, user: str | None = None
    ) -> list[AuditEntry]:
        return self.audit_log.entries(since, user=user)

    def export_audit(
        self, path: str | Path, since: datetime | timedelta | str | None = None
    ) -> int:
        """Write the audit log as JSON lines to `path`; how many entries were written."""
        return self.audit_log.export(path, since)

    # -- lineage and quality -------------------------------------------------------------

    def lineage(self, target: Any, column: str | None = None) -> Lineage:
        """The source tables and columns of a semantic member (``"orders.revenue"``) or of a
        Result's columns (`column` alone, if given), as data, a text tree and a graph."""
        from aiser_jupyter.governance.lineage import lineage_of

        return lineage_of(self.semantic, target, column)

    def profile(
        self, table: str, connection: str | None = None, schema: str | None = None
    ) -> Profile:
        """Types, nulls, distinct counts, ranges, frequent values, histograms and suspected keys
        of a table's columns, computed by its database."""
        from aiser_jupyter.governance.quality import profile_table

        self.check_raw_access()
        return profile_table(self.semantic, table, connection, schema)

    def check(
        self, checks: Check | Sequence[Check] | None = None, *, cube: str | None = None
    ) -> CheckReport:
        """Run data checks: the ones given, else those the model declares (of `cube` only, if
        given). ``.passed``, ``.failures``, ``.raise_on_failure()`` on the report."""
        from aiser_jupyter.governance.checks import Check, CheckError, declared_checks, run_checks

        if checks is None:
            if self.semantic.model is None:
                raise CheckError("No checks given, and no semantic model loaded to declare any")
            chosen = declared_checks(self.semantic.model, cube)
        else:
            chosen = [checks] if isinstance(checks, Check) else list(checks)
        if any(c.table is not None for c in chosen):
            self.check_raw_access()
        return run_checks(self.semantic, chosen)
