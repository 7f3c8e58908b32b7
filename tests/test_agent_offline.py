"""%%ask with no model: the offline planner end to end, its answers, its SQL cell, memory.

Numbers are checked against hand-written SQL over the raw sample tables.
"""

from __future__ import annotations

import json

import pytest
from conftest import run, run_failing

import aiser_jupyter as aiser
from aiser_jupyter.agent.narrate import format_value, narrate, ungrounded
from aiser_jupyter.errors import AiserError


def raw(session, sql: str) -> list[tuple]:
    return session.connection().engine.con.execute(sql).fetchall()


def test_an_offline_answer_states_the_numbers_of_the_data(retail):
    answer = retail.ask("revenue by region in 2024")
    expected = raw(
        retail,
        """SELECT c.region, sum(o.revenue) FROM orders o JOIN customers c USING (customer_id)
           WHERE o.order_date >= DATE '2024-01-01' AND o.order_date < DATE '2025-01-01'
           GROUP BY 1 ORDER BY 2 DESC""",
    )
    top_region, top_value = expected[0]
    assert answer.offline and answer.model is None
    assert answer.text.startswith(
        f"{top_region} leads on Revenue with {format_value(top_value, 'currency')}"
    )
    total = sum(value for _, value in expected)
    assert f"{top_value / total * 100:.1f}% of {format_value(total, 'currency')}" in answer.text
    assert any("answered offline" in note for note in answer.notes)
    (region,) = answer.query["dimensions"]
    assert region.endswith(".region")
    assert answer.chart is not None and answer.chart.spec.x == region
    got = dict(zip(answer.df[region], answer.df["orders.revenue"], strict=True))
    assert got == pytest.approx(dict(expected))


def test_the_answers_sql_runs_as_a_cell_and_gives_the_same_rows(ip, retail):
    answer = retail.ask("how many orders per status")
    assert answer.cell.startswith("%%sql duckdb\n-- how many orders per status\n")
    frame = run(ip, answer.cell)
    expected = raw(retail, "SELECT status, count(*) FROM orders GROUP BY 1")
    assert sorted(map(tuple, frame.itertuples(index=False))) == sorted(expected)


def test_a_follow_up_refines_the_last_answer(retail):
    retail.ask("revenue in 2024")
    answer = retail.ask("now by quarter")
    expected = raw(
        retail,
        """SELECT date_trunc('quarter', order_date) AS q, sum(revenue) FROM orders
           WHERE order_date >= DATE '2024-01-01' AND order_date < DATE '2025-01-01'
           GROUP BY 1 ORDER BY 1""",
    )
    assert answer.df["orders.revenue"].tolist() == pytest.approx([v for _, v in expected])
    first, last = (
        format_value(expected[0][1], "currency"),
        format_value(expected[-1][1], "currency"),
    )
    assert answer.text.startswith(f"Revenue went from {first} (2024 Q1) to {last} (2024 Q4)")
    fresh = retail.ask("now by quarter", new=True)  # no previous answer: no measure to keep
    assert fresh.status == "clarify" and fresh.result is None
    assert "revenue by quarter" in fresh.suggestions


def test_no_run_plans_and_shows_sql_but_runs_nothing(retail):
    retail.agent.workbench.value_index()  # reading dimension values is not the question's query
    before = len(retail.history)
    answer = retail.ask("revenue by region", run=False)
    assert [entry.kind for entry in retail.history[before:]] == ["ask"]  # and no query
    assert answer.result is None and "Not run" in answer.text
    assert "SUM" in answer.sql.upper() and answer.query["measures"] == ["orders.revenue"]


def test_with_no_model_loaded_it_drafts_one_from_the_tables():
    session = aiser.session()
    session.sources.load_sample()
    answer = session.ask("how many orders")
    assert session.model is not None and "orders" in session.model.cubes
    assert any(step.name == "automodel" for step in answer.steps)
    (count,) = raw(session, "SELECT count(*) FROM orders")[0]
    assert answer.df.iloc[0, 0] == count
    assert f"{count:,}" in answer.text


def test_ask_magic_shows_the_answer_and_writes_its_sql_into_the_next_cell(ip, retail):
    answer = run(ip, "%%ask -o kept\ntop 3 regions by revenue")
    assert answer is ip.user_ns["kept"]
    assert ip.rl_next_input == answer.cell
    html = answer._repr_html_()
    assert answer.text in html or answer.text.replace("'", "&#x27;") in html
    assert "How I got this" in html and "aiser-chart" in html
    line = run(ip, "%ask --offline --no-cell how many orders")
    assert line.question == "how many orders" and line.offline


def test_an_empty_question_is_a_clear_error(ip):
    error = run_failing(ip, "%%ask\n   ")
    assert "Ask a question" in str(error)


def test_answers_are_remembered_and_the_glossary_is_used(ip, retail):
    run(ip, '%aiser remember "big spenders = enterprise"')
    answer = retail.ask("revenue of big spenders")
    assert any("glossary" in item for item in answer.plan.understood)
    expected = raw(
        retail,
        "SELECT sum(revenue) FROM orders JOIN customers USING (customer_id) "
        "WHERE segment = 'enterprise'",
    )
    assert answer.df["orders.revenue"][0] == pytest.approx(expected[0][0])
    episodes = retail.agent.memory.similar_episodes("revenue of big spenders")
    assert episodes and episodes[0].sql == answer.sql
    listed = run(ip, "%aiser memory list")
    assert {"glossary", "episode", "turn"} <= set(listed["kind"])


def test_memory_commands_search_forget_export_and_clear(ip, retail, tmp_path):
    run(ip, '%aiser remember "fiscal years start in April"')
    found = run(ip, "%aiser memory search fiscal")
    (entry_id,) = found["id"].tolist()
    run(ip, f"%aiser memory forget {entry_id}")
    assert run(ip, "%aiser memory search fiscal").empty
    retail.ask("how many orders")
    path = tmp_path / "memory.json"
    run(ip, f"%aiser memory export {path}")
    exported = json.loads(path.read_text(encoding="utf-8"))
    assert any("how many orders" in json.dumps(row) for row in exported["entries"])
    run(ip, "%aiser memory clear")
    assert run(ip, "%aiser memory list").empty


def test_read_only_sql_refuses_writes_and_keeps_the_table(ip, retail):
    error = run_failing(ip, "%%sql --read-only\nDROP TABLE orders")
    assert "Refused" in str(error)
    assert raw(retail, "SELECT count(*) FROM orders")[0][0] > 0
    frame = run(ip, "%%sql --read-only\nSELECT count(*) AS n FROM orders")
    assert frame["n"][0] == raw(retail, "SELECT count(*) FROM orders")[0][0]


# -- the numbers check ------------------------------------------------------------------


def test_numbers_not_in_the_data_are_found():
    evidence = ["region,revenue\nWest,3023213.07\nSouth,960887.38"]
    assert ungrounded("West leads with $3,023,213.07, about $3.0M; South $960,887", evidence) == []
    assert ungrounded("West leads with $4.2M and South 1,250,000", evidence) == [
        "$4.2M",
        "1,250,000",
    ]
    assert ungrounded("Revenue grew 12% over 3 years", evidence) == []  # derived / small


def test_narrate_handles_empty_and_single_values():
    import pandas as pd

    assert narrate(pd.DataFrame({"x": []})) == "No rows matched."
    assert narrate(pd.DataFrame({"n": [1234567]})) == "n: 1,234,567."


def test_offline_under_a_tenant_sees_only_that_tenants_rows_and_values():
    """The planner's value index is read as the requester: hidden members are left out (no
    error), another tenant's values never become words the planner knows or suggests."""
    from governance_model import NORTH, SOUTH, governed_session, rows

    session = governed_session()
    session.governance.set_context(NORTH)
    answer = session.ask("revenue by status", offline=True, new=True)
    assert answer.status == "answered"
    want = rows(
        session,
        "SELECT status, sum(revenue) FROM orders JOIN customers USING (customer_id) "
        "WHERE region = 'North' GROUP BY 1",
    )
    got = sorted((r["orders.status"], r["orders.revenue"]) for r in answer.df.to_dict("records"))
    assert [s for s, _ in got] == [s for s, _ in want]
    assert [v for _, v in got] == pytest.approx([v for _, v in want])
    assert session.agent.workbench.value_index().values["orders.region"] == ["North"]
    assert (
        "customers.segment" not in session.agent.workbench.value_index().values
    )  # hidden from this user
    south = session.ask("revenue in the South", offline=True, new=True)
    assert south.status == "clarify" and south.result is None
    session.governance.set_context(SOUTH)
    assert session.agent.workbench.value_index().values["orders.region"] == ["South"]


def test_today_can_be_anchored_for_historical_data(retail, monkeypatch):
    """ "last quarter" of a data set that ends in 2024 holds nothing today: the answer says
    where the data ends; AISER_TODAY (a date, or "data") or a cube's meta.today anchors it."""
    question = "revenue by region last quarter"
    declined = retail.ask(question, new=True)
    assert declined.status == "clarify" and declined.result is None
    assert "2024-12-31" in declined.text
    assert declined.suggestions[0] == "revenue by region in Q4 2024"
    q4 = raw(
        retail,
        """SELECT c.region, sum(revenue) FROM orders JOIN customers c USING (customer_id)
           WHERE order_date >= DATE '2024-10-01' AND order_date < DATE '2025-01-01'
           GROUP BY 1 ORDER BY 2 DESC""",
    )
    for anchor in ("2025-01-15", "data"):
        retail.settings.today = anchor
        anchored = retail.ask(question, new=True)
        want = (
            q4
            if anchor != "data"
            else raw(
                retail,
                """SELECT c.region, sum(revenue) FROM orders JOIN customers c USING (customer_id)
               WHERE order_date >= DATE '2024-07-01' AND order_date < DATE '2024-10-01'
               GROUP BY 1 ORDER BY 2 DESC""",
            )
        )
        got = list(zip(anchored.df["orders.region"], anchored.df["orders.revenue"], strict=True))
        assert [r for r, _ in got] == [r for r, _ in want]
        assert [v for _, v in got] == pytest.approx([v for _, v in want])
    retail.settings.today = ""
    model = retail.model
    model.cubes["orders"].meta["today"] = "2025-01-15"  # the model's own default
    try:
        assert retail.ask(question, new=True).status == "answered"
    finally:
        del model.cubes["orders"].meta["today"]
    retail.settings.today = "someday"
    with pytest.raises(AiserError, match="AISER_TODAY"):
        retail.ask(question, new=True)
    retail.settings.today = ""


def test_shares_ratios_and_changes_are_derived_from_existing_measures(retail):
    """Each derived number against hand-written SQL; the SQL written back gives it too."""
    share = retail.ask("what share of revenue comes from enterprise customers", new=True)
    ((want,),) = raw(
        retail,
        """SELECT sum(revenue) FILTER (WHERE c.segment = 'enterprise') / sum(revenue)
           FROM orders JOIN customers c USING (customer_id)""",
    )
    assert share.status == "answered" and share.df["share"].tolist() == pytest.approx([want])
    assert share.text.startswith(f"enterprise accounts for {want:.1%} of Revenue")
    assert any(n.startswith("Understood: derived: share") for n in share.notes)
    assert retail.sql(share.sql).df["share"].tolist() == pytest.approx([want])

    ratio = retail.ask("revenue per customer by region", new=True)
    want = dict(
        raw(
            retail,
            """SELECT c.region, sum(revenue) / (SELECT count(*) FROM customers k
                                                  WHERE k.region = c.region)
               FROM orders JOIN customers c USING (customer_id) GROUP BY 1""",
        )
    )
    got = dict(zip(ratio.df["orders.region"], ratio.df["ratio"], strict=True))
    assert got == pytest.approx(want)

    change = retail.ask("revenue 2024 vs 2023", new=True)
    (before, after) = [
        v
        for _, v in raw(
            retail, "SELECT year(order_date), sum(revenue) FROM orders GROUP BY 1 ORDER BY 1"
        )
    ]
    assert change.df["orders.revenue"].tolist() == pytest.approx([before, after])
    assert change.df["change_pct"].tolist()[1] == pytest.approx(after / before - 1)
    assert f"up {after / before - 1:.1%} from {format_value(before, 'currency')}" in change.text

    ranged = retail.ask("revenue by year 2023 to 2024", new=True)  # one range: no change
    assert "change" not in ranged.df.columns and len(ranged.df) == 2

    signup = retail.ask("revenue by year of signup", new=True)
    assert signup.query["timeDimensions"][0]["dimension"] == "customers.signup_date"
    want = raw(
        retail,
        """SELECT year(c.signup_date), sum(revenue) FROM orders JOIN customers c
           USING (customer_id) GROUP BY 1 ORDER BY 1""",
    )
    assert signup.df["orders.revenue"].tolist() == pytest.approx([v for _, v in want])
