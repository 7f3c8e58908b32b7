"""Data-quality checks, declared in the model or written in code: not null, unique, accepted
values, ranges, freshness and row-count change; each gives a pass/fail result that says why.

A check reads either a table's column (``Check("not_null", "orders", "status")``) or a
semantic member (``Check("not_null", member="orders.status")``), which is compiled through
the model, access policies included. In the model, a dimension's ``meta: {checks: [...]}``
lists its checks and a cube's ``meta: {checks: [{row_count: …}]}`` the cube's.
"""

from __future__ import annotations

import html
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from typing import TYPE_CHECKING, Any

from sqlglot import exp

from aiser_jupyter.config import home
from aiser_jupyter.errors import AiserError
from aiser_jupyter.governance.ages import parse_age

if TYPE_CHECKING:
    from aiser_jupyter.semantic.layer import SemanticLayer

KINDS = ("not_null", "unique", "accepted_values", "range", "freshness", "row_count")


class CheckError(AiserError):
    """A check that cannot run (unknown kind, missing option) or, from `raise_on_failure`,
    checks that failed."""


@dataclass(frozen=True)
class Check:
    """One check. Options: accepted_values ``values``; range ``min``/``max``; freshness
    ``max_age`` (``2d``); row_count ``min``/``max``/``max_change`` (a share, 0.2 = 20 %)."""

    kind: str
    table: str | None = None
    column: str | None = None
    member: str | None = None
    cube: str | None = None
    options: dict[str, Any] = field(default_factory=dict)

    def __post_init__(self) -> None:
        if self.kind not in KINDS:
            raise CheckError(f"unknown check {self.kind!r} (one of {', '.join(KINDS)})")
        if self.table is None and self.member is None and self.cube is None:
            raise CheckError(f"a {self.kind} check needs a table, a member or a cube")

    @property
    def target(self) -> str:
        if self.member or self.cube:
            return self.member or str(self.cube)
        return f"{self.table}.{self.column}" if self.column else str(self.table)


@dataclass
class CheckResult:
    check: Check
    passed: bool
    failing: int
    total: int
    detail: str
    sql: str


@dataclass
class CheckReport:
    results: list[CheckResult]

    @property
    def passed(self) -> bool:
        return all(r.passed for r in self.results)

    @property
    def failures(self) -> list[CheckResult]:
        return [r for r in self.results if not r.passed]

    def raise_on_failure(self) -> CheckReport:
        """The report itself when every check passed (e.g. before a dashboard refresh)."""
        if not self.passed:
            what = "; ".join(f"{r.check.kind} {r.check.target}: {r.detail}" for r in self.failures)
            raise CheckError(f"{len(self.failures)} data check(s) failed: {what}")
        return self

    def frame(self) -> Any:
        import pandas as pd

        return pd.DataFrame(
            [
                {
                    "check": r.check.kind,
                    "target": r.check.target,
                    "passed": r.passed,
                    "failing": r.failing,
                    "total": r.total,
                    "detail": r.detail,
                }
                for r in self.results
            ],
            columns=["check", "target", "passed", "failing", "total", "detail"],
        )

    def __repr__(self) -> str:
        lines = [f"{len(self.results) - len(self.failures)}/{len(self.results)} checks passed"]
        lines += [
            f"{'PASS' if r.passed else 'FAIL'} {r.check.kind} {r.check.target}: {r.detail}"
            for r in self.results
        ]
        return "\n".join(lines)

    def _repr_html_(self) -> str:
        rows = "".join(
            f"<tr><td style='color:{'green' if r.passed else 'crimson'}'>"
            f"{'✓ pass' if r.passed else '✗ fail'}</td><td>{html.escape(r.check.kind)}</td>"
            f"<td>{html.escape(r.check.target)}</td><td>{html.escape(r.detail)}</td></tr>"
            for r in self.results
        )
        head = html.escape(repr(self).splitlines()[0])
        return (
            f"<b>{head}</b><table><tr><th></th><th>check</th><th>target</th><th>detail</th></tr>"
            f"{rows}</table>"
        )


def declared_checks(model: Any, cube: str | None = None) -> list[Check]:
    """The checks a model declares: ``meta.checks`` of dimensions and of cubes."""
    found = []
    for item in model.cubes.values():
        if cube is not None and item.name != cube:
            continue
        for spec in item.meta.get("checks") or []:
            found.append(_from_spec(spec, cube=item.name))
        for member in item.members.values():
            for spec in member.meta.get("checks") or []:
                found.append(_from_spec(spec, member=member.full_name))
    return found


def _from_spec(spec: Any, **target: Any) -> Check:
    """``not_null`` or ``{accepted_values: [a, b]}`` / ``{range: {min: 0}}`` / ``{freshness: 2d}``
    / ``{row_count: {max_change: 0.2}}`` as a Check."""
    if isinstance(spec, str):
        return Check(spec, **target)
    if not isinstance(spec, dict) or len(spec) != 1:
        raise CheckError(f"a check is a name or a one-key mapping, got {spec!r}")
    ((kind, value),) = spec.items()
    if kind == "accepted_values":
        options = {"values": list(value)}
    elif kind == "freshness" and not isinstance(value, dict):
        options = {"max_age": value}
    else:
        options = dict(value or {})
    return Check(kind, options=options, **target)


def run_checks(semantic: SemanticLayer, checks: list[Check]) -> CheckReport:
    return CheckReport([run_check(semantic, check) for check in checks])


def _relation(
    semantic: SemanticLayer, check: Check
) -> tuple[Any, exp.Expression, exp.Expression | None]:
    """The connection, the rows a check reads (a subquery) and the value column in them."""
    if check.table is not None:
        conn = semantic.connection(check.options.get("connection"))
        source = exp.to_table(check.table, quoted=True)
        value = exp.column(check.column, quoted=True) if check.column else None
        return conn, source, value
    member = check.member
    if member is None:  # a cube: its rows, through its primary key or first dimension
        cube = semantic.model.cubes[check.cube]
        key = cube.primary_key or next(iter(cube.by_kind("dimension")), None)
        if key is None:
            raise CheckError(f"cube {check.cube!r} has no dimension to count rows by")
        member = key.full_name
    query = {"dimensions": [member], "ungrouped": True, "limit": None}
    name, sql = semantic.compile_query(query)
    conn = semantic.connection(name)
    import sqlglot

    select = sqlglot.parse_one(sql, read=conn.engine.dialect)
    select.set("order", None)
    source = select.subquery("t")
    return conn, source, exp.column(member, "t", quoted=True) if check.member else None


def run_check(semantic: SemanticLayer, check: Check) -> CheckResult:
    conn, source, value = _relation(semantic, check)
    if value is None and check.kind != "row_count":
        raise CheckError(f"a {check.kind} check needs a column or a member")
    kind, options = check.kind, check.options
    total = exp.Count(this=exp.Star())
    if kind == "row_count":
        select = exp.select(total).from_(source)
    elif kind == "freshness":
        select = exp.select(total, exp.Max(this=value)).from_(source)
    else:
        select = exp.select(total, _failing(kind, value, options)).from_(source)
    sql = select.sql(dialect=conn.engine.dialect)
    table = conn.engine.execute(sql)
    row = [table.column(i)[0].as_py() for i in range(table.num_columns)]
    count = int(row[0])
    if kind == "row_count":
        passed, detail = _row_count(check, count)
        return CheckResult(check, passed, 0 if passed else 1, count, detail, sql)
    if kind == "freshness":
        passed, detail = _freshness(check, row[1])
        return CheckResult(check, passed, 0 if passed else 1, count, detail, sql)
    failing = int(row[1] or 0)
    what = {
        "not_null": "null",
        "unique": "duplicate",
        "accepted_values": "not accepted",
        "range": "out of range",
    }[kind]
    detail = f"{failing:,} of {count:,} rows {what}" if failing else f"all {count:,} rows fine"
    return CheckResult(check, failing == 0, failing, count, detail, sql)


def _failing(kind: str, value: exp.Expression, options: dict[str, Any]) -> exp.Expression:
    """How many rows fail: a SQL expression over the rows."""
    if kind == "unique":
        return exp.Sub(
            this=exp.Count(this=value.copy()),
            expression=exp.Count(this=exp.Distinct(expressions=[value.copy()])),
        )
    if kind == "not_null":
        test: exp.Expression = exp.Is(this=value.copy(), expression=exp.null())
    elif kind == "accepted_values":
        if "values" not in options:
            raise CheckError("an accepted_values check needs 'values'")
        allowed = [exp.convert(v) for v in options["values"]]
        test = exp.and_(
            exp.Not(this=exp.Is(this=value.copy(), expression=exp.null())),
            exp.Not(this=exp.In(this=value.copy(), expressions=allowed)),
        )
    else:
        bounds = []
        if options.get("min") is not None:
            bounds.append(exp.LT(this=value.copy(), expression=exp.convert(options["min"])))
        if options.get("max") is not None:
            bounds.append(exp.GT(this=value.copy(), expression=exp.convert(options["max"])))
        if not bounds:
            raise CheckError("a range check needs 'min' or 'max'")
        test = exp.or_(*bounds)
    return exp.Sum(this=exp.If(this=test, true=exp.Literal.number(1), false=exp.Literal.number(0)))


def _freshness(check: Check, newest: Any) -> tuple[bool, str]:
    limit = check.options.get("max_age")
    age_limit = parse_age(str(limit)) if limit is not None else None
    if age_limit is None:
        raise CheckError(f"a freshness check needs 'max_age' such as 2h or 7d, got {limit!r}")
    if newest is None:
        return False, "no rows with a time"
    if isinstance(newest, date) and not isinstance(newest, datetime):
        newest = datetime(newest.year, newest.month, newest.day)
    if newest.tzinfo is None:
        newest = newest.replace(tzinfo=timezone.utc)
    age = datetime.now(timezone.utc) - newest
    hours = age.total_seconds() / 3600
    verdict = f"newest {newest.isoformat(timespec='seconds')}, {hours:,.1f} h old"
    return age <= age_limit, f"{verdict} (limit {limit})"


def _row_count(check: Check, count: int) -> tuple[bool, str]:
    low, high, change = (check.options.get(k) for k in ("min", "max", "max_change"))
    problems = []
    if low is not None and count < low:
        problems.append(f"fewer than {low:,}")
    if high is not None and count > high:
        problems.append(f"more than {high:,}")
    note = ""
    if change is not None:
        previous = _remember_count(check.target, count)
        if previous is None:
            note = "; first count recorded"
        else:
            moved = abs(count - previous) / previous if previous else float(count > 0)
            note = f"; was {previous:,} ({moved:+.0%} change)"
            if moved > float(change):
                problems.append(f"changed more than {float(change):.0%}")
    detail = f"{count:,} rows{note}"
    return not problems, detail + (f": {', '.join(problems)}" if problems else "")


def _remember_count(target: str, count: int) -> int | None:
    """The count recorded last time for `target` (``$AISER_HOME/quality.db``); records this one."""
    path = home() / "quality.db"
    path.parent.mkdir(parents=True, exist_ok=True)
    from aiser_jupyter.security.atrest import connect_sqlite

    with connect_sqlite(path, timeout=30) as db:
        db.execute("CREATE TABLE IF NOT EXISTS row_counts (target TEXT, at TEXT, count INTEGER)")
        last = db.execute(
            "SELECT count FROM row_counts WHERE target = ? ORDER BY rowid DESC LIMIT 1", (target,)
        ).fetchone()
        db.execute(
            "INSERT INTO row_counts VALUES (?, ?, ?)",
            (target, datetime.now(timezone.utc).isoformat(), count),
        )
    return None if last is None else int(last[0])
