"""``%aiser audit report``: who queried what, refusals, personal-data access, policy changes
and alert firings, as tables and as one offline HTML page; ``%aiser status``."""

from __future__ import annotations

import copy
import re

import pyarrow as pa
import pyarrow.parquet as pq
import pytest

from aiser_jupyter.errors import UnsafeSQLError
from aiser_jupyter.governance.report import AuditReport
from tests.conftest import run

MODEL = {
    "cubes": [
        {
            "name": "people",
            "sql_table": "people",
            "dimensions": [
                {"name": "email", "sql": "email", "type": "string", "meta": {"pii": "email"}},
                {"name": "city", "sql": "city", "type": "string"},
            ],
            "measures": [{"name": "total", "sql": "amount", "type": "sum"}],
        }
    ]
}


def test_audit_report_in_the_notebook_and_as_a_page(ip, tmp_path, capsys):
    path = tmp_path / "people.parquet"
    pq.write_table(
        pa.table({"email": ["a@x.org", "b@y.org"], "city": ["Oslo", "Rome"], "amount": [3, 4]}),
        path,
    )
    session = run(ip, "import aiser_jupyter as aiser; aiser.session()")
    session.connect(str(path), name="people")
    session.load_model(MODEL)
    session.governance.set_context(user="alice")
    session.query({"measures": ["people.total"], "dimensions": ["people.email"]})
    session.query({"measures": ["people.total"], "dimensions": ["people.city"]})
    with pytest.raises(UnsafeSQLError):
        session.sql("DROP TABLE people", read_only=True)
    session.governance.set_context(user="bob")
    session.query({"measures": ["people.total"]})
    guarded = copy.deepcopy(MODEL)
    guarded["cubes"][0]["access_policy"] = [{"role": "*", "member_level": {"excludes": ["email"]}}]
    session.load_model(guarded)  # a policy change
    session.governance.audit_log.submit(
        "alert", "revenue below 10", outcome="fired", reason="revenue 7 < 10"
    )
    page = tmp_path / "audit.html"

    report = run(ip, f"%aiser audit report --since 1d --html {page}")
    assert isinstance(report, AuditReport)
    entries = session.governance.audit_entries()
    by_user = {(r.user, r.kind): (r.queries, r.refused) for r in report.queries.itertuples()}
    for user in ("alice", "bob"):  # counted again from the raw entries
        mine = [e for e in entries if e.user == user and e.kind not in ("policy", "alert")]
        for kind in {e.kind for e in mine}:
            of_kind = [e for e in mine if e.kind == kind]
            refusals = sum(e.outcome == "refused" for e in of_kind)
            assert by_user[(user, kind)] == (len(of_kind), refusals)
    assert report.refused["user"].tolist() == ["alice"]
    assert "DROP" in report.refused["sql"].iloc[0] and report.refused["reason"].iloc[0]
    assert report.personal["user"].tolist() == ["alice"]
    assert report.personal["members"].tolist() == ["people.email"]
    assert len(report.policies) == 1 and report.policies["user"].tolist() == ["bob"]
    assert report.alerts["reason"].tolist() == ["revenue 7 < 10"]
    assert report.frame()["rows"].tolist() == [len(report.queries), 1, 1, 1, 1]

    text = page.read_text()
    assert "Wrote the audit report" in capsys.readouterr().out
    assert "window.aiserCharts.render" in text and "Queries per day" in text
    assert not re.search(r"<script[^>]+src=|<link[^>]+href=\"?https?:", text)  # no network
    for title in (
        "Who queried what",
        "Refused queries and why",
        "Access to personal data",
        "Policy changes",
        "Alert firings",
    ):
        assert f"<h2>{title}</h2>" in text
    assert "a@x.org" not in text  # the report names members, not the data


def test_status_says_whether_data_at_rest_is_encrypted(ip, capsys, monkeypatch):
    run(ip, "%aiser status")
    assert "data at rest: not encrypted" in capsys.readouterr().out
    monkeypatch.setenv("AISER_ENCRYPTION_KEY", "a passphrase")
    run(ip, "%aiser status")
    out = capsys.readouterr().out
    assert "data at rest: encrypted (AES-256)" in out and "AISER_ENCRYPTION_KEY" in out
