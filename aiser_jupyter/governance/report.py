"""The audit report an auditor reads: who queried what, refusals and why, access to personal
data, policy changes and alert firings, over a period of the audit log.

`build_report` reads `AuditEntry` values only (the event kinds ``policy`` and ``alert`` are
written by the governance part and by alerts), so it works on any audit log. Personal data
is what the Cube model tags so (``meta: {pii: …}``, or ``personal``/``pii`` among
``meta.tags``); an entry touches it when its SQL reads such a column (sqlglot) or its Cube
query names such a member. `AuditReport.to_html` is one self-contained page: tables, and
charts drawn by the bundled ECharts (no network).
"""

from __future__ import annotations

import html
import json
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    import pandas as pd

    from aiser_jupyter.governance.audit import AuditEntry
    from aiser_jupyter.semantic.model import SemanticModel

STANDALONE = Path(__file__).resolve().parent.parent / "static" / "standalone.js"
SECTIONS = (
    ("queries", "Who queried what"),
    ("refused", "Refused queries and why"),
    ("personal", "Access to personal data"),
    ("policies", "Policy changes"),
    ("alerts", "Alert firings"),
)


@dataclass
class AuditReport:
    """One period of the audit log, as tables; shown as a table in a notebook."""

    since: str
    entries: int
    queries: pd.DataFrame
    """Per user and kind: queries, rows returned, refused, failed, first and last time."""
    refused: pd.DataFrame
    personal: pd.DataFrame
    """Entries that read a member tagged as personal data: when, who, which members."""
    policies: pd.DataFrame
    alerts: pd.DataFrame
    daily: pd.DataFrame
    """Per day: allowed, refused and failed entries (the page's chart)."""

    def frame(self) -> pd.DataFrame:
        """How many rows each section has: the report at a glance."""
        import pandas as pd

        return pd.DataFrame(
            [(title, len(getattr(self, name))) for name, title in SECTIONS],
            columns=["section", "rows"],
        )

    def _repr_html_(self) -> str:
        parts = [f"<h4>Audit report since {html.escape(self.since)} ({self.entries} entries)</h4>"]
        for name, title in SECTIONS:
            table = getattr(self, name)
            if len(table):
                parts.append(f"<h5>{title}</h5>{table.to_html(index=False, max_rows=20)}")
        return "".join(parts)

    def to_html(self) -> str:
        """A whole page, readable offline: the sections as tables and two charts."""
        library = STANDALONE.read_text(encoding="utf-8").replace("</script", "<\\/script")
        charts = {"daily": _daily_chart(self.daily), "users": _users_chart(self.queries)}
        draw = "".join(
            f'window.aiserCharts.render(document.getElementById("{name}"),{_json(option)});'
            for name, option in charts.items()
        )
        boxes = "".join(
            f'<div id="{name}" style="height:320px;margin:12px 0"></div>' for name in charts
        )
        sections = "".join(
            f"<h2>{title}</h2>"
            + (
                getattr(self, name).to_html(index=False, border=0, classes="audit")
                if len(getattr(self, name))
                else "<p>None in this period.</p>"
            )
            for name, title in SECTIONS
        )
        return (
            '<!doctype html>\n<html><head><meta charset="utf-8"><title>Audit report</title>'
            "<style>body{font-family:system-ui,sans-serif;margin:24px;color:#222}"
            "table.audit{border-collapse:collapse;font-size:13px}"
            "table.audit td,table.audit th{border-bottom:1px solid #ddd;padding:4px 8px;"
            "text-align:left;vertical-align:top}</style></head><body>"
            f"<h1>Audit report</h1><p>Since {html.escape(self.since)}: {self.entries} "
            f"entries.</p>{boxes}{sections}<script>{library}</script><script>{draw}</script>"
            "</body></html>\n"
        )

    def save(self, path: str | Path) -> Path:
        target = Path(path).expanduser()
        target.write_text(self.to_html(), encoding="utf-8")
        return target


def personal_members(model: SemanticModel | None) -> dict[str, set[str]]:
    """Members tagged as personal data → the column names their SQL reads."""
    found: dict[str, set[str]] = {}
    for cube in model.cubes.values() if model is not None else ():
        for member in cube.members.values():
            tags = {str(t).lower() for t in member.meta.get("tags", []) or []}
            if member.meta.get("pii") or tags & {"pii", "personal"}:
                columns = {member.name.lower()}
                if member.sql is not None:
                    columns |= _columns(member.sql.text)
                found[member.full_name] = columns
    return found


def build_report(
    entries: Sequence[AuditEntry], model: SemanticModel | None, since: str
) -> AuditReport:
    """The report of `entries` (those of the period, in the order written)."""
    import pandas as pd

    members = personal_members(model)
    rows = [_row(e) for e in entries]
    frame = pd.DataFrame(
        rows, columns=["at", "day", "user", "kind", "sql", "rows", "outcome", "reason"]
    )
    queries_only = frame[~frame["kind"].isin(["policy", "alert"])]
    grouped = queries_only.groupby(["user", "kind"], dropna=False)
    queries = grouped.agg(
        queries=("outcome", "size"),
        rows=("rows", "sum"),
        refused=("outcome", lambda s: int((s == "refused").sum())),
        failed=("outcome", lambda s: int((s == "failed").sum())),
        first=("at", "min"),
        last=("at", "max"),
    ).reset_index()
    refused = queries_only[queries_only["outcome"] == "refused"][
        ["at", "user", "kind", "sql", "reason"]
    ]
    touched = [
        {"at": e.at, "user": e.user or "", "members": ", ".join(hits), "sql": e.sql}
        for e in entries
        if e.kind not in ("policy", "alert") and (hits := _personal_hits(e.sql, members))
    ]
    personal = pd.DataFrame(touched, columns=["at", "user", "members", "sql"])
    policies = frame[frame["kind"] == "policy"][["at", "user", "sql", "reason"]]
    alerts = frame[frame["kind"] == "alert"][["at", "sql", "outcome", "reason"]]
    daily = (
        pd.crosstab(queries_only["day"], queries_only["outcome"])
        .reindex(columns=["allowed", "refused", "failed"], fill_value=0)
        .reset_index()
    )
    return AuditReport(
        since,
        len(entries),
        queries,
        refused.reset_index(drop=True),
        personal,
        policies.reset_index(drop=True),
        alerts.reset_index(drop=True),
        daily,
    )


def _row(entry: AuditEntry) -> dict[str, Any]:
    return {
        "at": entry.at,
        "day": entry.at[:10],
        "user": entry.user or "",
        "kind": entry.kind,
        "sql": entry.sql,
        "rows": entry.rows or 0,
        "outcome": entry.outcome,
        "reason": entry.reason,
    }


def _columns(sql: str) -> set[str]:
    """Column names (and output names) `sql` reads, by sqlglot; none when it does not parse."""
    import sqlglot
    from sqlglot import exp

    try:
        statements = sqlglot.parse(sql, error_level=sqlglot.ErrorLevel.IGNORE)
    except sqlglot.errors.SqlglotError:
        return set()
    names: set[str] = set()
    for statement in statements:
        if statement is None:
            continue
        names |= {c.name.lower() for c in statement.find_all(exp.Column)}
        names |= {a.alias.lower() for a in statement.find_all(exp.Alias)}
    return names


def _personal_hits(text: str | None, members: dict[str, set[str]]) -> list[str]:
    """The personal members an entry's Cube query names or its SQL reads."""
    if not text or not members:
        return []
    try:
        named = {s.lower() for s in _strings(json.loads(text))}
    except (ValueError, TypeError):
        named = _columns(text)
    return sorted(m for m, columns in members.items() if m.lower() in named or columns & named)


def _strings(value: Any) -> list[str]:
    if isinstance(value, str):
        return [value]
    if isinstance(value, dict):
        return [s for v in value.values() for s in _strings(v)]
    if isinstance(value, list):
        return [s for v in value for s in _strings(v)]
    return []


def _daily_chart(daily: pd.DataFrame) -> dict[str, Any]:
    series = [
        {"name": outcome, "type": "bar", "stack": "all", "data": daily[outcome].tolist()}
        for outcome in ("allowed", "refused", "failed")
        if outcome in daily
    ]
    return {
        "title": {"text": "Queries per day"},
        "tooltip": {"trigger": "axis"},
        "legend": {"top": 24},
        "xAxis": {"type": "category", "data": daily["day"].tolist() if len(daily) else []},
        "yAxis": {"type": "value"},
        "series": series,
    }


def _users_chart(queries: pd.DataFrame) -> dict[str, Any]:
    per_user = queries.groupby("user")["queries"].sum() if len(queries) else None
    users = [] if per_user is None else [str(u) for u in per_user.index]
    counts = [] if per_user is None else [int(v) for v in per_user.tolist()]
    return {
        "title": {"text": "Queries per user"},
        "tooltip": {},
        "xAxis": {"type": "category", "data": users},
        "yAxis": {"type": "value"},
        "series": [{"type": "bar", "name": "queries", "data": counts}],
    }


def _json(value: Any) -> str:
    return json.dumps(value, default=str).replace("</", "<\\/")
