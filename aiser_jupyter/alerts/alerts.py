"""The alerts part: alerts made, checked (now, on a schedule, when their tables change),
their firings written to the audit log and delivered, with retries, from an outbox.

``Alerts`` is built from the settings, the Live part (which runs the schedules and hears
the change bus) and callables that measure: `sql` and `query` run a source, `query_sql`
compiles a Cube query (to find the tables it reads), `model` gives the loaded semantic
model (to tell a member from SQL), `insights` finds anomalies, `audit` records a firing.
"""

from __future__ import annotations

import os
import threading
from collections.abc import Callable, Iterable, Mapping, Sequence
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.alerts.alert import Alert, CheckOutcome
from aiser_jupyter.alerts.condition import Condition, plain, relative_change
from aiser_jupyter.alerts.notify import NotifyError, send, target
from aiser_jupyter.alerts.store import AlertStore, Delivery, now
from aiser_jupyter.errors import AiserError
from aiser_jupyter.live.live import seconds
from aiser_jupyter.live.tables import tables_read
from aiser_jupyter.security.secrets import redact, register

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.config import Settings
    from aiser_jupyter.live.live import Live
    from aiser_jupyter.result import Result
    from aiser_jupyter.semantic.model import SemanticModel

MAX_BACKOFF_S = 300.0


class AlertError(AiserError):
    """An alert that cannot be made or checked (a bad name, source or file)."""


def tell_notebook(text: str) -> None:
    """The ``notebook`` target: a line in the notebook (stderr outside one)."""
    import sys

    print(text, file=sys.stderr, flush=True)


class Alerts:
    """The alerts of a Session (or of ``aiser alerts run``)."""

    def __init__(
        self,
        settings: Settings,
        live: Live,
        *,
        sql: Callable[[str], Result],
        query: Callable[..., Result],
        query_sql: Callable[[Mapping[str, Any]], str],
        model: Callable[[], SemanticModel | None],
        insights: Callable[[Any], Any],
        audit: Callable[..., Any] | None = None,
        tell: Callable[[str], Any] = tell_notebook,
    ):
        self.settings = settings
        self._live = live
        self._sql, self._query, self._query_sql = sql, query, query_sql
        self._model, self._insights = model, insights
        self._audit, self._tell = audit, tell
        self._alerts: dict[str, Alert] = {}
        self._store: AlertStore | None = None
        self._lock = threading.RLock()
        self._retry: threading.Timer | None = None
        self._sending = threading.Lock()
        register(getattr(settings, "smtp_password", ""))

    @property
    def store(self) -> AlertStore:
        """The state database (``alerts`` setting, default ``$AISER_HOME/alerts.db``),
        opened on first use."""
        if self._store is None:
            from aiser_jupyter.config import home

            self._store = AlertStore(getattr(self.settings, "alerts", "") or home() / "alerts.db")
        return self._store

    # -- making --------------------------------------------------------------------

    def alert(
        self,
        name: str,
        source: Any,
        condition: str,
        every: Any = None,
        notify: str | Sequence[str] = (),
        *,
        quiet: Any = None,
        on_change: bool = True,
    ) -> Alert:
        """Make (or replace) the alert `name`: `source` is SQL, a semantic member
        (``"orders.revenue"``) or a Cube query dict; `condition` a small expression over
        value, previous and change (``"value > 100"``, ``"change < -0.2"``) or
        ``"anomaly"``; checked each `every` ("5m") and, with `on_change`, when a table it
        reads changes; `notify`: ``webhook:URL``, ``email:ADDRESS``, ``notebook``;
        `quiet` ("1h"): no second firing that soon after one."""
        if not name or not str(name).replace("_", "").replace("-", "").isalnum():
            raise AlertError(f"an alert's name is letters, digits, - and _, not {name!r}")
        parsed = Condition(condition)
        targets = [target(t) for t in ([notify] if isinstance(notify, str) else notify)]
        made = Alert(name, source, parsed, targets, seconds(every), seconds(quiet), self._check)
        made.tables = self._tables(source) if on_change else frozenset()
        with self._lock:
            self._alerts[name] = made
        self._live.stop(f"alert:{name}")
        if made.tables or made.every:
            self._live.watch(f"alert:{name}", made.tables, made.check, every=made.every)
        return made

    def _is_member(self, text: str) -> bool:
        """Whether `text` names a member of the loaded model (else it is SQL)."""
        model = self._model()
        if model is None or not isinstance(text, str) or " " in text.strip():
            return False
        try:
            model.member(text.strip())
        except AiserError:
            return False
        return True

    def _tables(self, source: Any) -> frozenset[str]:
        if isinstance(source, Mapping):
            return tables_read(self._query_sql(source))
        if isinstance(source, str) and self._is_member(source):
            return tables_read(self._query_sql({"measures": [source]}))
        if isinstance(source, str):
            return tables_read(source)
        raise AlertError(
            f"an alert's source is SQL, a semantic member or a Cube query, not a "
            f"{type(source).__name__}"
        )

    def load(self, path: str | os.PathLike[str]) -> list[Alert]:
        """Make the alerts a YAML file lists (``alerts: [{name, source, condition, every,
        notify, quiet}]``); ``${NAME}`` in it reads the environment, so tokens and
        passwords stay out of the file."""
        import yaml

        text = os.path.expandvars(Path(path).read_text(encoding="utf-8"))
        data = yaml.safe_load(text) or {}
        entries = data.get("alerts") if isinstance(data, Mapping) else None
        if not isinstance(entries, list):
            raise AlertError(f"{path}: expected 'alerts:' with a list of alerts")
        made = []
        for entry in entries:
            known = {"name", "source", "condition", "every", "notify", "quiet", "on_change"}
            if not isinstance(entry, Mapping) or not {"name", "source", "condition"} <= set(entry):
                raise AlertError(f"{path}: each alert needs name, source and condition")
            unknown = set(entry) - known
            if unknown:
                raise AlertError(f"{path}: alert {entry['name']!r}: unknown {sorted(unknown)}")
            made.append(self.alert(**entry))
        return made

    def get(self, name: str) -> Alert:
        if name not in self._alerts:
            raise AlertError(f"no alert named {name!r}; alerts: {', '.join(self._alerts) or '-'}")
        return self._alerts[name]

    def remove(self, name: str) -> None:
        """Stop and forget the alert `name` (its state and undelivered notifications too)."""
        self.get(name)
        self._live.stop(f"alert:{name}")
        with self._lock:
            self._alerts.pop(name)
        self.store.forget(name)

    # -- checking ------------------------------------------------------------------

    def check(self, names: Iterable[str] | None = None) -> list[CheckOutcome]:
        """Check the alerts (all, or those named) now."""
        chosen = list(self._alerts) if names is None else list(names)
        return [self.get(name).check() for name in chosen]

    def _measure(self, alert: Alert) -> tuple[Any, list[str]]:
        """The value a check compares (and, for an anomaly alert, what insights found)."""
        source = alert.source
        if isinstance(source, Mapping):  # the raw tables: a rollup lags behind the rows
            result = self._query(source, rollups=False)
        elif self._is_member(source):
            result = self._query({"measures": [source]}, rollups=False)
        else:
            result = self._sql(source)
        if alert.condition.anomaly:
            found = [str(i) for i in self._insights(result) if i.kind == "anomaly"]
            return len(found), found
        table = result.to_arrow()
        if table.num_rows == 0 or table.num_columns == 0:
            return None, []
        return plain(table.column(0)[0].as_py()), []

    def _check(self, alert: Alert) -> CheckOutcome:
        with self._lock:
            state = self.store.state(alert.name)
            try:
                value, details = self._measure(alert)
                change = relative_change(value, state.last_value)
                holds = alert.condition.holds(value=value, previous=state.last_value, change=change)
            except AiserError as exc:
                return CheckOutcome(alert.name, "failed", error=redact(str(exc)))
            status = "fired" if holds and not state.active else "holds" if holds else "clear"
            if status == "fired" and alert.quiet and state.last_fired:
                since = datetime.now(timezone.utc) - datetime.fromisoformat(state.last_fired)
                if since.total_seconds() < alert.quiet:
                    status = "quiet"
            outcome = CheckOutcome(alert.name, status, value, state.last_value, change)
            firing = None
            if status == "fired":
                firing = {
                    "alert": alert.name,
                    "condition": alert.condition.text,
                    "value": value,
                    "previous": state.last_value,
                    "change": change,
                    "source": redact(str(alert.source))[:500],
                    "fired_at": now(),
                    "details": details,
                }
            self.store.checked(alert.name, value, holds, firing, alert.notify)
        if firing is not None:
            self._audited(alert, firing)
            self._deliver(outcome, alert.name)
        return outcome

    def _audited(self, alert: Alert, firing: dict[str, Any]) -> None:
        if self._audit is None:
            return
        source = alert.source if isinstance(alert.source, str) else str(alert.source)
        reason = f"alert {alert.name}: {alert.condition.text} (value {firing['value']!r})"
        try:
            self._audit("alert", source, outcome="fired", reason=reason)
        except AiserError as exc:
            self._tell(f"alert {alert.name}: not audited: {exc}")

    # -- delivering ----------------------------------------------------------------

    def retry(self, now: bool = False) -> int:
        """Deliver what waits in the outbox and is due (with `now`, all of it, due or not);
        how many were delivered."""
        return len(self._deliver(None, None, everything=now).delivered)

    def _deliver(
        self, outcome: CheckOutcome | None, name: str | None, everything: bool = False
    ) -> CheckOutcome:
        outcome = outcome or CheckOutcome("", "retry")
        with self._sending:  # one sender at a time: a retry and a check never send twice
            for delivery in self.store.due(name, all_pending=everything):
                self._send(delivery, outcome)
        return outcome

    def _send(self, delivery: Delivery, outcome: CheckOutcome) -> None:
        alert = self._alerts.get(delivery.alert)
        if alert is None or delivery.target >= len(alert.targets):
            return  # an alert of another process (or removed): left in the outbox
        try:
            send(alert.targets[delivery.target], delivery.payload, self.settings, self._tell)
        except NotifyError as exc:
            error = redact(str(exc))
            wait = min(2.0 ** (delivery.attempts + 1), MAX_BACKOFF_S)
            at = datetime.now(timezone.utc) + timedelta(seconds=wait)
            self.store.failed(delivery.id, error, at.isoformat(timespec="microseconds"))
            outcome.failed.append(error)
            self._arm_retry(wait)
        else:
            self.store.delivered(delivery.id)
            outcome.delivered.append(delivery.shown)

    def _arm_retry(self, wait: float) -> None:
        with self._lock:
            if self._retry is not None and self._retry.is_alive():
                return
            self._retry = threading.Timer(wait, self.retry)
            self._retry.daemon = True
            self._retry.start()

    # -- reading -------------------------------------------------------------------

    def frame(self) -> pd.DataFrame:
        """One row per alert: its source, condition, schedule, targets and state."""
        import pandas as pd

        rows = []
        for alert in list(self._alerts.values()):
            state = self.store.state(alert.name)
            rows.append(
                {
                    "name": alert.name,
                    "source": redact(str(alert.source))[:80],
                    "condition": alert.condition.text,
                    "every_s": alert.every,
                    "on_change": ", ".join(sorted(alert.tables)),
                    "notify": ", ".join(alert.notify),
                    "value": state.last_value,
                    "active": state.active,
                    "fired": state.fired,
                    "last_fired": state.last_fired,
                    "undelivered": len(self.store.due(alert.name, all_pending=True)),
                }
            )
        return pd.DataFrame(rows)

    def deliveries(self, name: str | None = None) -> pd.DataFrame:
        """Every notification of every firing: where, when, attempts, sent or last error."""
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "alert": d.alert,
                    "target": d.shown,
                    "fired_at": d.payload.get("fired_at"),
                    "value": d.payload.get("value"),
                    "attempts": d.attempts,
                    "sent_at": d.sent_at,
                    "last_error": d.last_error,
                }
                for d in self.store.deliveries(name)
            ],
            columns=["alert", "target", "fired_at", "value", "attempts", "sent_at", "last_error"],
        )

    def close(self) -> None:
        for name in list(self._alerts):
            self._live.stop(f"alert:{name}")
        if self._retry is not None:
            self._retry.cancel()
        if self._store is not None:
            self._store.close()
            self._store = None
