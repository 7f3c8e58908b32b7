"""The agent's memory: kept across sessions and processes, shared safely, free of secrets,
and exportable and erasable in full. Each behaviour runs on a SQLite file and on a real
PostgreSQL database."""

from __future__ import annotations

import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import textwrap
import time
import uuid
from collections import Counter
from pathlib import Path

import pytest

from aiser_jupyter.memory import Memory, MemoryFailed
from aiser_jupyter.memory.redaction import scrub
from aiser_jupyter.security.secrets import register

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(params=["sqlite", "postgres"])
def location(request, tmp_path) -> str:
    """A fresh, empty store: a SQLite file, or a new database on the test PostgreSQL."""
    if request.param == "sqlite":
        return str(tmp_path / "memory.db")
    server = request.getfixturevalue("pg_server")
    name = f"memory_{uuid.uuid4().hex[:12]}"
    server.psql(f'CREATE DATABASE "{name}"', dbname="postgres")
    return f"{server.url.rsplit('/', 1)[0]}/{name}"


@pytest.fixture
def memory(location):
    with Memory.open(location) as opened:
        yield opened


def run_python(code: str, *args: str) -> subprocess.Popen:
    """Start a separate Python process running `code` with `args` as sys.argv[1:]."""
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    return subprocess.Popen(
        [sys.executable, "-c", textwrap.dedent(code), *args],
        cwd=REPO,
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )


def finish(process: subprocess.Popen) -> str:
    out, err = process.communicate(timeout=120)
    assert process.returncode == 0, err
    return out


# -- kept across sessions and processes ----------------------------------------------------


def test_entries_persist_across_sessions(location):
    with Memory.open(location) as first:
        written = [
            first.remember("Fiscal years start in April"),
            first.remember("Show money in EUR", kind="preference"),
            first.remember("active customer = ordered in the last 90 days"),
            first.remember("Refunds are negative order lines", kind="rule"),
            first.record_turn("sales.ipynb", "user", "revenue by region?"),
            first.record_episode(
                "revenue by region",
                "SELECT region, sum(amount) FROM orders GROUP BY 1",
                query={"measures": ["orders.revenue"], "dimensions": ["orders.region"]},
                conversation_id="sales.ipynb",
            ),
        ]
    with Memory.open(location) as second:
        assert second.entries() == written[::-1]
        assert second.entries()[0].query == {
            "dimensions": ["orders.region"],
            "measures": ["orders.revenue"],
        }
        assert [e.kind for e in second.entries("fact", "rule")] == ["rule", "fact"]
        frame = second.to_frame("glossary", "episode")
        assert frame[["id", "kind", "term", "sql"]].fillna("-").values.tolist() == [
            [written[5].id, "episode", "-", "SELECT region, sum(amount) FROM orders GROUP BY 1"],
            [written[2].id, "glossary", "active customer", "-"],
        ]


def test_another_process_reads_and_writes_the_same_store(location):
    with Memory.open(location) as here:
        mine = here.remember("Weeks start on Monday")
        child = run_python(
            """
            import json, sys
            from aiser_jupyter.memory import Memory
            with Memory.open(sys.argv[1]) as memory:
                print(json.dumps([e.text for e in memory.entries()]))
                memory.record_episode("orders per week", "SELECT 1", worked=False, error="no")
            """,
            location,
        )
        assert json.loads(finish(child)) == [mine.text]
        episode = here.entries()[0]  # the same open store sees the other process's write
        assert (episode.kind, episode.text, episode.worked, episode.error) == (
            "episode",
            "orders per week",
            False,
            "no",
        )


WRITER = """
    import sys, time
    from pathlib import Path
    from aiser_jupyter.memory import Memory
    location, tag, go, count = sys.argv[1], sys.argv[2], Path(sys.argv[3]), int(sys.argv[4])
    Path(f"{go}.{tag}").touch()  # ready
    while not go.exists():
        time.sleep(0.001)
    with Memory.open(location) as memory:  # both open a store nobody has created yet
        Path(f"{go}.{tag}.open").touch()  # then both start writing together
        while len(list(go.parent.glob(f"{go.name}.*.open"))) < 2:
            time.sleep(0.001)
        started = time.time()
        for i in range(count):
            memory.remember(f"fact {tag} {i}")
            memory.record_episode(f"question {tag} {i}", f"SELECT {i}")
            memory.record_turn(f"{tag}.ipynb", "user", f"turn {i}")
    print(started, time.time())
    """


def test_two_processes_write_at_once(location, tmp_path):
    go, count = tmp_path / "go", 300
    writers = [run_python(WRITER, location, tag, str(go), str(count)) for tag in ("ann", "bob")]
    while not all(Path(f"{go}.{tag}").exists() for tag in ("ann", "bob")):
        assert all(writer.poll() is None for writer in writers), "a writer died"
        time.sleep(0.01)
    go.touch()
    spans = [[float(t) for t in finish(writer).split()] for writer in writers]
    assert max(start for start, _ in spans) < min(end for _, end in spans)  # they overlapped
    with Memory.open(location) as memory:
        entries = memory.entries()
        assert len({e.id for e in entries}) == len(entries) == 2 * 3 * count
        for tag in ("ann", "bob"):
            facts = {e.text for e in entries if e.kind == "fact" and f" {tag} " in e.text}
            assert facts == {f"fact {tag} {i}" for i in range(count)}
            turns = memory.conversation(f"{tag}.ipynb", last=count)
            assert [t.text for t in turns] == [f"turn {i}" for i in range(count)]


# -- the four kinds ----------------------------------------------------------------------


def test_glossary_terms_replace_their_definition(memory):
    first = memory.remember("active customer = ordered in the last 90 days")
    assert (first.kind, first.term, first.text) == (
        "glossary",
        "active customer",
        "ordered in the last 90 days",
    )
    again = memory.remember("active customer = ordered in the last 90 days")
    assert again == first
    newer = memory.remember("Active customer = ordered in the last 60 days")
    memory.remember("an order placed on a weekend", term="weekend order")
    assert memory.glossary() == {
        "Active customer": "ordered in the last 60 days",
        "weekend order": "an order placed on a weekend",
    }
    assert first.id not in [e.id for e in memory.entries()]
    assert newer.id > first.id
    spoken = memory.remember('"AOV" MEANS average order value')
    assert (spoken.kind, spoken.term, spoken.text) == ("glossary", "AOV", "average order value")
    assert memory.remember("revenue is net of refunds").kind == "fact"  # a rule, not a term


def test_feedback_marks_an_episode_confirmed_or_rejected(memory):
    episode = memory.record_episode("Revenue by region?", "SELECT 1", connection="duckdb")
    memory.record_episode("revenue by country", "SELECT 2")
    assert episode.confirmed_at is None and memory.confirmed("revenue by region") is None
    confirmed = memory.feedback(episode.id, good=True)
    assert confirmed.worked and confirmed.confirmed_at is not None
    found = memory.confirmed("  REVENUE by   region ")
    assert (found.id, found.sql, found.connection) == (episode.id, "SELECT 1", "duckdb")
    assert memory.confirmed("revenue by country") is None

    rejected = memory.feedback(episode.id, good=False)
    assert (rejected.worked, rejected.confirmed_at) == (False, None)
    assert memory.confirmed("revenue by region") is None
    assert [e.text for e in memory.similar_episodes("revenue by region", k=5)] == [
        "revenue by country"
    ]
    with pytest.raises(MemoryFailed, match="No episode #"):
        memory.feedback(memory.remember("a fact").id, good=True)


def test_facts_rules_and_what_is_not_a_definition(memory):
    fact = memory.remember("Orders of 100 EUR or more ship free")
    assert memory.remember("Orders of 100 EUR or more ship free") == fact
    comparison = memory.remember("amount >= 100 is a big order")
    assert (comparison.kind, comparison.term) == ("fact", None)
    rule = memory.remember("revenue = amount - refunds", kind="rule")
    assert (rule.kind, rule.text, rule.term) == ("rule", "revenue = amount - refunds", None)
    with pytest.raises(MemoryFailed, match="term = definition"):
        memory.remember("no definition here", kind="glossary")
    with pytest.raises(MemoryFailed, match="Only glossary"):
        memory.remember("amount net of tax", kind="rule", term="net amount")
    with pytest.raises(MemoryFailed, match="kinds are"):
        memory.remember("x", kind="secret")
    with pytest.raises(MemoryFailed, match="empty"):
        memory.remember("   ")
    assert [e.id for e in memory.entries()] == [rule.id, comparison.id, fact.id]


def test_conversation_keeps_the_last_turns_of_one_notebook(memory):
    for i in range(5):
        memory.record_turn("a.ipynb", "user", f"a question {i}")
        memory.record_turn("b.ipynb", "user", f"b question {i}")
        memory.record_turn("a.ipynb", "assistant", f"a answer {i}")
    last = memory.conversation("a.ipynb", last=3)
    assert [(t.role, t.text) for t in last] == [
        ("assistant", "a answer 3"),
        ("user", "a question 4"),
        ("assistant", "a answer 4"),
    ]
    assert len(memory.conversation("b.ipynb")) == 5
    assert memory.conversation("c.ipynb") == []
    with pytest.raises(MemoryFailed, match="role"):
        memory.record_turn("a.ipynb", "robot", "hi")


EPISODES = [
    ("monthly revenue by region", True),
    ("revenue by product category", True),
    ("number of active customers per month", True),
    ("average order value by region", False),
    ("top customers by lifetime revenue", True),
    ("signups per week", True),
    ("refund rate by channel", True),
    ("orders per warehouse", True),
]


def test_similar_episodes_rank_past_questions(memory):
    ids = {}
    for question, worked in EPISODES:
        entry = memory.record_episode(
            question,
            f"SELECT /* {question} */ 1",
            worked=worked,
            error=None if worked else "Binder Error: column aov not found",
        )
        ids[question] = entry.id
    found = memory.similar_episodes("What was the revenue by region?", k=2)
    assert found[0].text == "monthly revenue by region"
    assert len(found) == 2
    assert found[0].score > found[1].score > 0
    assert all(e.worked for e in memory.similar_episodes("order value by region", k=5))
    failed = memory.similar_episodes("order value by region", k=1, only_worked=False)[0]
    assert (failed.id, failed.worked) == (ids["average order value by region"], False)
    assert failed.error == "Binder Error: column aov not found"
    stemmed = memory.similar_episodes("revenues for the regions", k=1)[0]
    assert stemmed.text == "monthly revenue by region"
    assert memory.similar_episodes("weather in Paris") == []


NASTY = [
    '"',
    'revenue"',
    "revenue - region",
    "NEAR(revenue region)",
    "region:north revenue",
    "{text} : revenue",
    "*",
    "revenue*",
    "AND OR NOT revenue",
    "((revenue",
    "'; DROP TABLE aiser_memory; --",
    "^revenue",
    "$1 ? ? revenue",
    "",
    "   ",
    "💰 revenue",
]


def test_user_text_never_breaks_the_search(memory):
    memory.record_episode("monthly revenue by region", "SELECT 1")
    memory.remember("revenue excludes tax")
    for text in NASTY:
        expected = ["monthly revenue by region"] if "revenue" in text else []
        assert [e.text for e in memory.similar_episodes(text)] == expected, text
        assert len(memory.search(text)) == (2 if "revenue" in text else 0), text
    assert len(memory.entries()) == 2


def test_search_covers_facts_glossary_and_episodes_not_turns(memory):
    fact = memory.remember("Orders from test accounts are excluded")
    term = memory.remember("big order = an order of 1000 EUR or more")
    episode = memory.record_episode("sales by week", "SELECT week, sum(amount) FROM orders")
    memory.record_turn("nb.ipynb", "user", "how many orders yesterday?")
    memory.remember("Weeks start on Monday", kind="preference")
    assert {e.id for e in memory.search("orders")} == {fact.id, term.id, episode.id}
    assert [e.id for e in memory.search("orders", k=1)] == [term.id]  # the term itself matches


def test_recall_gathers_what_a_prompt_needs(memory):
    memory.remember("Fiscal years start in April")
    memory.remember("Show money in EUR", kind="preference")
    memory.remember("active customer = ordered in the last 90 days")
    memory.record_episode("revenue by region", "SELECT region, sum(amount) FROM orders")
    memory.record_episode("revenue by country", "SELECT broken", worked=False)
    memory.record_turn("nb.ipynb", "user", "hello")
    recall = memory.recall("revenue per region this year", "nb.ipynb")
    assert [f.text for f in recall.facts] == ["Show money in EUR", "Fiscal years start in April"]
    assert recall.glossary == {"active customer": "ordered in the last 90 days"}
    assert [e.text for e in recall.episodes] == ["revenue by region"]
    assert [t.text for t in recall.turns] == ["hello"]
    assert memory.recall("revenue").turns == []


# -- secrets, export, erasure ------------------------------------------------------------


def fill_with_secrets(memory: Memory) -> list[str]:
    """Store secrets of every shape in every kind; return the secrets."""
    register("registered-s3cret-value")
    secrets = [
        "registered-s3cret-value",
        "pa55w0rd-in-url",
        "hunter2hunter2",
        "sk-proj-Abcdefghijklmnop1234567890",
        "AKIAIOSFODNN7EXAMPLE",
        "eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
        "tok-in-query-param",
        "json-held-token-value",
    ]
    memory.remember("the warehouse login is registered-s3cret-value")
    memory.remember("use postgresql://ann:pa55w0rd-in-url@db.internal:5432/shop", kind="rule")
    memory.record_turn(
        "nb.ipynb", "user", "my password=hunter2hunter2 and key sk-proj-Abcdefghijklmnop1234567890"
    )
    memory.record_episode(
        "spend from AWS with AKIAIOSFODNN7EXAMPLE",
        "SELECT * FROM read_csv('https://x.example/a.csv?token=tok-in-query-param')",
        query={"filters": [{"member": "api", "values": ["api_key: json-held-token-value"]}]},
        worked=False,
        error="401 for Authorization: Bearer eyJhbGciOiJIUzI1NiJ9.eyJzdWIiOiIxMjM0In0.c2lnbmF0dXJl",
    )
    return secrets


def test_secrets_are_masked_before_they_are_stored(memory, tmp_path):
    secrets = fill_with_secrets(memory)
    plain = memory.remember("active customer = ordered in the last 90 days")
    stored = memory.entries()
    assert [e.redacted for e in stored] == [False, True, True, True, True]
    assert plain.redacted is False
    everything = repr(stored) + json.dumps([e.query for e in stored])
    for secret in secrets:
        assert secret not in everything
    episode = memory.entries("episode")[0]
    assert episode.sql == "SELECT * FROM read_csv('https://x.example/a.csv?token=***')"
    assert episode.query == {"filters": [{"member": "api", "values": ["api_key: ***"]}]}
    assert episode.error == "401 for Authorization: Bearer ***"
    assert memory.entries("rule")[0].text == "use postgresql://ann:***@db.internal:5432/shop"
    memory.export(tmp_path / "export.json")
    exported = (tmp_path / "export.json").read_text()
    assert not [s for s in secrets if s in exported]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("active customer = ordered in the last 90 days", None),
        ("token count = number of tokens in a prompt", None),
        ("revenue >= 100 and token_count > 3", None),
        ("a task-abcdefghijklmnopqrstuv note", None),
        ("SELECT api_token::text FROM t", None),
        ("basic understanding of churn", None),
        ("https://example.com/a?b=1&sslmode=require", None),
        ("password: 'p4ss-word'", "password: '***'"),
        ('{"client_secret": "abcd1234"}', '{"client_secret": "***"}'),
        ("AWS_SECRET_ACCESS_KEY=wJalrXUtnFEMI/K7MDENG", "AWS_SECRET_ACCESS_KEY=***"),
        ("https://h/x?api_key=k123456&b=1", "https://h/x?api_key=***&b=1"),
        ("Authorization: Basic YW5uOnMzY3JldA==", "Authorization: Basic ***"),
        ("ghp_abcdefghijklmnopqrstuvwxyz0123456789 ok", "*** ok"),
        ("-----BEGIN PRIVATE KEY-----\nMIIEv\n-----END PRIVATE KEY-----", "***"),
    ],
)
def test_what_counts_as_a_secret(text, expected):
    assert scrub(text) == ((text, False) if expected is None else (expected, True))


def test_export_holds_every_row(memory, tmp_path):
    memory.remember("Fiscal years start in April")
    memory.remember("active customer = ordered in the last 90 days")
    memory.record_turn("nb.ipynb", "assistant", "Here is revenue by region.")
    memory.record_episode(
        "revenue by region",
        "SELECT 1",
        query={"measures": ["orders.revenue"]},
        worked=False,
        error="boom",
        conversation_id="nb.ipynb",
    )
    target = tmp_path / "out" / "memory.json"
    assert memory.export(target) == 4
    document = json.loads(target.read_text(encoding="utf-8"))
    assert document["format"] == "aiser-memory/1"
    assert document["entries"] == [
        {
            "id": e.id,
            "kind": e.kind,
            "text": e.text,
            "created_at": e.created_at.isoformat(),
            "term": e.term,
            "role": e.role,
            "conversation_id": e.conversation_id,
            "sql": e.sql,
            "query": e.query,
            "worked": e.worked,
            "error": e.error,
            "redacted": e.redacted,
            "connection": e.connection,
            "confirmed_at": None,
        }
        for e in reversed(memory.entries())
    ]
    episode = document["entries"][-1]
    assert (episode["query"], episode["worked"], episode["error"]) == (
        {"measures": ["orders.revenue"]},
        False,
        "boom",
    )


def test_forget_and_clear_erase(memory):
    kept = memory.remember("Fiscal years start in April")
    gone = memory.record_episode("revenue by region", "SELECT 1")
    assert memory.forget(gone.id) is True
    assert memory.forget(gone.id) is False
    assert memory.entries() == [kept]
    assert memory.similar_episodes("revenue by region") == []
    assert memory.search("revenue") == []
    memory.record_turn("nb.ipynb", "user", "hello")
    assert memory.clear() == 2
    assert memory.entries() == []
    assert memory.search("fiscal april") == []
    assert memory.conversation("nb.ipynb") == []
    later = memory.remember("Fiscal years start in April")
    assert later.id > gone.id  # an id a user saw before never names a different entry


# -- SQLite specifics: WAL, schema version, location, BM25, bytes on disk -----------------


def test_sqlite_store_is_wal_with_a_schema_version(tmp_path):
    path = tmp_path / "memory.db"
    Memory.open(path).close()
    Memory.open(f"sqlite:///{path}").close()
    raw = sqlite3.connect(path)
    assert raw.execute("PRAGMA journal_mode").fetchone() == ("wal",)
    assert raw.execute("SELECT version FROM aiser_memory_schema").fetchall() == [(1,), (2,), (3,)]
    with raw:
        raw.execute("INSERT INTO aiser_memory_schema VALUES (4)")
    raw.close()
    with pytest.raises(MemoryFailed, match="newer"):
        Memory.open(path)


def test_a_version_1_store_is_upgraded_in_place_and_keeps_its_entries(tmp_path):
    from aiser_jupyter.memory.backends import SQLITE_MIGRATIONS

    path = tmp_path / "memory.db"
    with sqlite3.connect(path) as raw:  # as the first release wrote it
        raw.execute("CREATE TABLE aiser_memory_schema (version INTEGER NOT NULL)")
        for statement in SQLITE_MIGRATIONS[0]:
            raw.execute(statement)
        raw.execute("INSERT INTO aiser_memory_schema VALUES (1)")
        raw.execute(
            "INSERT INTO aiser_memory (kind, text, sql, worked, created_at)"
            " VALUES ('episode', 'revenue by region', 'SELECT 1', 1, '2024-05-01T09:30:00+00:00')"
        )
    raw.close()
    with Memory.open(path) as memory:
        (old,) = memory.similar_episodes("revenue by region")
        assert (old.sql, old.connection, old.confirmed_at) == ("SELECT 1", None, None)
        assert memory.feedback(old.id, good=True).confirmed_at is not None


def test_default_location_comes_from_settings(tmp_path, monkeypatch):
    with Memory.open() as memory:
        assert memory.location == str(tmp_path / "aiser-home" / "memory.db")
        memory.remember("kept at home")
    assert (tmp_path / "aiser-home" / "memory.db").is_file()
    monkeypatch.setenv("AISER_MEMORY", str(tmp_path / "elsewhere" / "m.db"))
    with Memory.open() as memory:
        assert memory.entries() == []
    assert (tmp_path / "elsewhere" / "m.db").is_file()
    with Memory.open(":memory:") as memory:
        assert memory.remember("ephemeral").id == 1


def fts5_bm25(corpus: list[str], sql: str, query_terms: list[str]) -> dict[int, float]:
    """FTS5's documented BM25 (k1 = 1.2, b = 0.75), computed here for a corpus of episodes
    whose SQL is `sql`: idf over all rows, document length over all columns of a row."""
    tokens = [re.findall(r"[^\W_]+", question.lower()) for question in corpus]
    sql_length = len(re.findall(r"[^\W_]+", sql))
    lengths = [len(words) + sql_length for words in tokens]
    average = sum(lengths) / len(lengths)
    scores = {}
    for row, words in enumerate(tokens):
        counts, score = Counter(words), 0.0
        for term in query_terms:
            hits = sum(term in other for other in tokens)
            idf = max(math.log((len(tokens) - hits + 0.5) / (hits + 0.5)), 1e-6)
            f = counts[term]
            score += idf * f * 2.2 / (f + 1.2 * (0.25 + 0.75 * lengths[row] / average))
        if score:
            scores[row] = score
    return scores


def test_similarity_is_fts5_bm25(tmp_path):
    corpus = [
        "revenue by region",
        "revenue by region and channel for 2024",
        "orders by region",
        "revenue revenue trend",
        "customer churn",
        "refund rate by channel in 2024",
        "signups per week",
        "margin per product",
    ]
    with Memory.open(tmp_path / "m.db") as memory:
        ids = [memory.record_episode(question, "SELECT 1").id for question in corpus]
        found = memory.similar_episodes("What is the revenue by region in 2024?", k=10)
    expected = fts5_bm25(corpus, "SELECT 1", ["revenue", "region", "2024"])
    ranked = sorted(expected, key=lambda row: (-expected[row], -ids[row]))
    assert [e.id for e in found] == [ids[row] for row in ranked]
    assert [e.score for e in found] == pytest.approx([expected[row] for row in ranked], rel=1e-9)


def test_erased_text_leaves_no_copy_on_disk(tmp_path):
    path = tmp_path / "memory.db"

    def on_disk() -> bytes:
        return b"".join(p.read_bytes() for p in tmp_path.glob("memory.db*"))

    with Memory.open(path) as memory:
        gone = memory.remember("zebracorn-4711 is the codename of the launch")
        memory.remember("quokkamode-0815 marks test accounts")
        memory.record_episode("narwhalish-2222 per day", "SELECT 'narwhalish-2222'")
        for i in range(200):  # enough writes that the index has several segments
            memory.record_episode(f"filler question {i}", f"SELECT {i}")
        assert b"zebracorn-4711" in on_disk()
        memory.forget(gone.id)
        assert b"zebracorn-4711" not in on_disk()
        assert b"quokkamode-0815" in on_disk()
        memory.clear()
        for marker in (b"quokkamode", b"narwhalish", b"filler question"):
            assert marker not in on_disk()
