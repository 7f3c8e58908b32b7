"""Feedback on answers, reuse of confirmed ones, remembered terms, and how an answer that was
not given shows: over the sample retail data, with the offline planner or a scripted model
on loopback (tools/fake_llm.py), every expected number from hand-written SQL."""

from __future__ import annotations

import re
from datetime import date

import pytest
from conftest import run, run_failing

import aiser_jupyter.sessions as sessions
from aiser_jupyter.agent.answer import Answer
from aiser_jupyter.memory import Memory
from aiser_jupyter.widgets.answer import AnswerView
from tools.fake_llm import Call, FakeLLM

REVENUE_BY_REGION = {"measures": ["orders.revenue"], "dimensions": ["customers.region"]}
BY_REGION = (
    "SELECT c.region, sum(o.revenue) FROM orders o JOIN customers c USING (customer_id) GROUP BY 1"
)


def raw(session, sql: str) -> dict:
    return dict(session.connection().engine.con.execute(sql).fetchall())


def rows(answer: Answer) -> dict:
    return dict(answer.df.itertuples(index=False))


def episodes(session) -> list:
    return session.agent.memory.entries("episode")


@pytest.fixture
def llm(retail, monkeypatch):
    """The scripted model, configured for the retail session."""
    monkeypatch.setenv("AISER_API_KEY", "sk-test-feedback")
    with FakeLLM() as server:
        retail.settings.model = "openai/test-model"
        retail.settings.api_base = server.api_base
        retail.settings.model_timeout = 5
        yield server


def system_prompt(body: dict) -> str:
    return body["messages"][0]["content"]


# -- feedback and reuse ---------------------------------------------------------------


def test_feedback_is_kept_and_a_new_session_on_the_same_memory_reuses_it(retail):
    answer = retail.ask("revenue by region", offline=True)
    assert answer.status == "answered" and answer.rateable and answer.verdict is None
    retail.agent.feedback(True)
    assert answer.verdict is True
    location = retail.agent.memory.location
    retail.close()
    sessions._session = None  # a new kernel: same AISER_HOME, same memory file

    with Memory.open(location) as memory:
        kept = memory.confirmed("Revenue by region!")
        assert (kept.id, kept.worked, kept.confirmed_at.date()) == (
            answer.episode_id,
            True,
            date.today(),
        )
    session = sessions.get_session()
    session.sources.load_sample()
    session.load_model("examples/model/retail.yml")
    again = session.ask("revenue by region")
    assert again.episode_id == answer.episode_id
    assert rows(again) == pytest.approx(raw(session, BY_REGION))


def test_a_confirmed_answer_reruns_its_query_on_todays_data(retail):
    first = retail.ask("Revenue by region", offline=True)
    first.feedback(True)
    before = raw(retail, BY_REGION)
    assert rows(first) == pytest.approx(before)
    retail.sql("UPDATE orders SET revenue = revenue * 3 WHERE customer_id % 2 = 0")
    after = raw(retail, BY_REGION)
    assert after != pytest.approx(before)

    kept = len(episodes(retail))
    again = retail.ask("  revenue BY   region? ")
    assert rows(again) == pytest.approx(after)  # the query ran again: not the old numbers
    assert f"reused an answer you confirmed on {date.today().isoformat()}" in (
        " ".join(again.notes).lower()
    )
    assert (again.query, again.episode_id) == (first.query, first.episode_id)
    assert [s.name for s in again.steps] == ["reuse"] and again.plan is None
    assert len(episodes(retail)) == kept  # no second episode of the same answer
    top = max(after, key=after.get)
    assert f"{top} leads" in again.text and f"${after[top]:,.2f}" in again.text


def test_a_confirmed_model_answer_is_reused_without_asking_the_model(retail, llm):
    llm.script(Call("run_semantic_query", {"query": REVENUE_BY_REGION}), "Done.")
    first = retail.ask("Revenue by region?")
    assert not first.offline and first.query == REVENUE_BY_REGION
    first.feedback(True)
    asked = len(llm.requests)

    again = retail.ask("revenue by region")
    assert len(llm.requests) == asked  # no model call: the confirmed query ran again
    assert again.query == REVENUE_BY_REGION and again.connection == first.connection
    assert rows(again) == pytest.approx(raw(retail, BY_REGION))
    assert any(note.startswith("Reused an answer you confirmed") for note in again.notes)


def test_a_rejected_answer_is_never_reused_nor_a_few_shot_example(retail, llm):
    shot = "Q: revenue by region\nQuery:"
    llm.script(Call("run_semantic_query", {"query": REVENUE_BY_REGION}), "Done.")
    first = retail.ask("revenue by region")
    llm.script(Call("run_semantic_query", {"query": REVENUE_BY_REGION}), "Done.")
    retail.ask("sales by region", new=True)
    assert shot in system_prompt(llm.requests[-2])  # before the verdict it is an example

    first.feedback(True)
    first.feedback(False)  # changed its mind: confirmed, then rejected
    asked = len(llm.requests)
    llm.script(Call("run_semantic_query", {"query": REVENUE_BY_REGION}), "Done.")
    again = retail.ask("Revenue by region", new=True)
    assert len(llm.requests) == asked + 2  # answered afresh, by the model
    assert not any("Reused" in note for note in again.notes)
    assert shot not in system_prompt(llm.requests[asked])
    assert "Q: sales by region\nQuery:" in system_prompt(llm.requests[asked])


def test_feedback_magic_marks_the_last_answer(ip, retail):
    error = run_failing(ip, "%aiser feedback good")
    assert "No answer yet" in str(error)
    answer = run(ip, "%%ask --offline --no-cell\nhow many orders")
    run(ip, "%aiser feedback good")
    assert answer.verdict is True
    assert retail.agent.memory.confirmed("How many orders?").id == answer.episode_id
    run(ip, "%aiser feedback bad")
    assert answer.verdict is False and retail.agent.memory.confirmed("how many orders") is None
    error = run_failing(ip, "%aiser feedback maybe")
    assert "invalid choice" in str(error)


def test_an_answer_not_answered_takes_no_feedback(retail):
    declined = Answer("revenue by planet", "Planet is not in the data.", status="unanswerable")
    with pytest.raises(Exception, match=r"not answered \(unanswerable\)"):
        declined.feedback(True)


# -- remembered terms -----------------------------------------------------------------


def test_a_remembered_term_is_used_by_the_very_next_question(ip, retail):
    run(ip, '%aiser remember "AOV means average order value"')
    answer = run(ip, "%%ask --no-cell\nAOV by segment")
    assert answer.query["measures"] == ["orders.average_order_value"]
    assert answer.query["dimensions"] == ["customers.segment"]
    expected = raw(
        retail,
        "SELECT c.segment, sum(o.revenue) / count(*) FROM orders o"
        " JOIN customers c USING (customer_id) GROUP BY 1",
    )
    assert rows(answer) == pytest.approx(expected)
    assert any("'AOV' means 'average order value'" in note for note in answer.notes)


def test_a_remembered_term_reaches_the_models_prompt(ip, retail, llm):
    run(ip, '%aiser remember "AOV means average order value"')
    llm.script("Done.")
    retail.ask("AOV by segment")
    assert "- AOV = average order value" in system_prompt(llm.requests[0])


# -- how an answer shows --------------------------------------------------------------


def declined(retail) -> Answer:
    """An answer not given, though a result came with it: none of it may show."""
    return Answer(
        "revenue by planet",
        "The data holds no planets: I cannot split revenue by planet.",
        status="clarify",
        suggestions=["revenue by region", "revenue by segment"],
        notes=["Not understood: planet"],
        result=retail.query(REVENUE_BY_REGION),
        chart=retail.chart(retail.query(REVENUE_BY_REGION)),
    )


def test_a_declined_answer_shows_its_text_and_suggestions_and_no_number(retail):
    answer = declined(retail)
    page = answer._repr_html_()
    (headline,) = re.findall(r'<p class="aiser-headline"[^>]*>(.*?)</p>', page)
    assert headline == "The data holds no planets: I cannot split revenue by planet."
    assert not re.search(r"\d", headline)
    assert "<pre" in page and "%%ask\nrevenue by region</pre>" in page
    assert "%%ask\nrevenue by segment</pre>" in page
    assert "aiser-chart" not in page and "<tbody>" not in page.split("<details>")[0]
    assert "👍" not in page  # thumbs only live, and only on answered questions
    assert repr(answer).startswith("<Answer clarify (")
    assert repr(answer).endswith("\n  try: revenue by region\n  try: revenue by segment")


def test_the_sidebar_is_sent_the_status_text_and_suggestions_of_the_last_answer(retail):
    from aiser_jupyter.sidebar import answer_payload

    assert answer_payload(retail) is None
    retail.agent.last_answer = declined(retail)
    assert answer_payload(retail) == {
        "question": "revenue by planet",
        "status": "clarify",
        "text": "The data holds no planets: I cannot split revenue by planet.",
        "suggestions": ["revenue by region", "revenue by segment"],
        "rateable": False,
        "verdict": None,
    }


def test_a_suggestion_button_asks_it_through_the_session(ip, retail, monkeypatch):
    monkeypatch.setattr(retail.settings, "widgets", "on")
    answer = declined(retail)
    bundle = ip.display_formatter.format(answer)[0]
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/plain"] == repr(answer)
    assert "%%ask\nrevenue by region" in bundle["text/html"]  # for viewers without widgets

    view = AnswerView(answer, retail)
    assert [b.description for b in view.suggestions] == answer.suggestions
    assert view.thumbs == []
    view.suggestions[1].click()
    asked = retail.last_answer
    assert asked.question == "revenue by segment" and retail.history[-1].kind == "ask"
    expected = raw(
        retail,
        "SELECT c.segment, sum(o.revenue) FROM orders o JOIN customers c USING (customer_id)"
        " GROUP BY 1",
    )
    assert rows(asked) == pytest.approx(expected)
    (shown,) = view.output.outputs
    assert shown["data"]["text/plain"] == repr(asked)
    assert "application/vnd.jupyter.widget-view+json" in shown["data"]


def test_thumbs_on_an_answered_answer_record_the_verdict(ip, retail, monkeypatch):
    monkeypatch.setattr(retail.settings, "widgets", "on")
    answer = retail.ask("revenue by segment", offline=True)
    view = AnswerView(answer, retail)
    assert [b.description for b in view.thumbs] == ["👍 Right", "👎 Wrong"]
    assert view.suggestions == []
    view.thumbs[0].click()
    assert answer.verdict is True and all(b.disabled for b in view.thumbs)
    assert retail.agent.memory.confirmed("revenue by segment").id == answer.episode_id
    assert view.said.value.startswith("Thanks")
    assert AnswerView(answer, retail).thumbs[1].disabled  # drawn again: the verdict stays
