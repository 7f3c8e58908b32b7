"""The agent's memory: what the user told it, what it was asked, what answered.

Four kinds live in one store, each entry with one id, so that a user can list,
search, forget, export or erase all of it with the same commands:

- short-term: the turns of one notebook's conversation (``kind="turn"``), by recency;
- long-term: facts and preferences the user told it (``"fact"``, ``"preference"``);
- semantic: business rules and the glossary (``"rule"``, ``"glossary"``), for the
  planner and the prompt;
- episodic: past questions with the SQL that answered them and whether it worked
  (``"episode"``), retrieved by similarity as few-shot examples. The user's verdict on
  an answer (`feedback`) marks its episode: a confirmed one is reused for the same
  question, a rejected one is never an example again.

Every text is scrubbed of secrets before it is written (`redaction.scrub`).
"""

from __future__ import annotations

import json
import os
import re
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import TYPE_CHECKING, Any

from aiser_jupyter.memory.backends import (
    COLUMNS,
    Backend,
    MemoryFailed,
    PostgresBackend,
    SQLiteBackend,
)
from aiser_jupyter.memory.redaction import scrub, scrub_json
from aiser_jupyter.security.context import current, subject_of
from aiser_jupyter.security.secrets import redact_url

if TYPE_CHECKING:
    import pandas as pd

LONG_TERM = ("fact", "preference", "rule", "glossary")
TURN, EPISODE = "turn", "episode"
KINDS = (*LONG_TERM, TURN, EPISODE)
ROLES = ("user", "assistant", "system", "tool")
EXPORT_FORMAT = "aiser-memory/1"

# Words too common to tell two questions apart; dropping them keeps matching sharp and fast.
_STOPWORDS = frozenset(
    (  # noqa: SIM905 - a sentence of words reads better than a 40-line list
        "a an and are as at be by do does for from give how i in is it me my of on or our show"
        " that the their this to was we what when where which who why with"
    ).split()
)
_WORD = re.compile(r"[^\W_]+")
_MAX_TERMS = 32
# `term = definition`, the term a few words, and `=` not part of `>=`, `<=`, `!=` or `==`.
_GLOSSARY = re.compile(r"^\s*(?P<term>[^=<>!]{1,80}?)\s*(?<![<>!=])=(?!=)\s*(?P<definition>.+)$")
# `term means definition`, as people say it. ("X is Y" stays a fact: "revenue is net of
# refunds" states a rule, and reading it as a glossary entry would rewrite every "revenue".)
_MEANS = re.compile(r"^\s*(?P<term>.{1,80}?)\s+means\s+(?P<definition>.+)$", re.IGNORECASE)


@dataclass(frozen=True)
class Entry:
    """One remembered thing of any kind. For an episode, `text` is the question."""

    id: int
    kind: str
    text: str
    created_at: datetime
    term: str | None = None
    """The glossary term that `text` defines."""
    role: str | None = None
    """Who spoke a conversation turn: user, assistant, system or tool."""
    conversation_id: str | None = None
    """The notebook (its path or kernel id) a turn or an episode belongs to."""
    sql: str | None = None
    query: dict[str, Any] | None = None
    """The semantic query (Cube REST JSON) the episode's SQL was compiled from."""
    worked: bool | None = None
    error: str | None = None
    connection: str | None = None
    """The connection an episode's SQL ran on."""
    confirmed_at: datetime | None = None
    """When the user confirmed the episode's answer (`Memory.feedback`): it is reused then."""
    redacted: bool = False
    """True when something that looked like a secret was masked before storing."""
    score: float | None = None
    """Relevance when found by `search` or `similar_episodes`; higher is closer."""


@dataclass(frozen=True)
class Recall:
    """What the agent brings into a prompt for one question."""

    facts: list[Entry]
    """Facts, preferences and rules, newest first."""
    glossary: dict[str, str]
    episodes: list[Entry]
    """Past questions like this one whose SQL worked, closest first."""
    turns: list[Entry] = field(default_factory=list)
    """The end of this notebook's conversation, oldest first."""


def search_terms(text: str) -> list[str]:
    """The distinct words of `text` worth matching on: letters and digits only, so that
    quotes, ``-``, ``*``, ``:`` or ``NEAR`` typed by a user can never break a query."""
    words = (word.lower() for word in _WORD.findall(text))
    return list(dict.fromkeys(w for w in words if w not in _STOPWORDS))[:_MAX_TERMS]


def parse_glossary(text: str) -> tuple[str, str] | None:
    """``"active customer = ordered in the last 90 days"`` (or ``"AOV means average order
    value"``) to its term and definition."""
    found = _GLOSSARY.match(text) or _MEANS.match(text)
    if found is None or len(found["term"].split()) > 6:
        return None
    return found["term"].strip(" '\"`"), found["definition"].strip()


def same_question(text: str) -> str:
    """A question as `Memory.confirmed` compares it: case, spacing and punctuation dropped."""
    return " ".join(_WORD.findall(text.lower()))


def is_postgres_url(location: str) -> bool:
    return location.split("://", 1)[0].startswith("postgres") and "://" in location


class Memory:
    """One memory store (SQLite file or PostgreSQL database), shared by every notebook."""

    def __init__(self, backend: Backend, location: str):
        self._db = backend
        self.location = location
        self.owner: Callable[[], str] = lambda: subject_of(current())
        """Whose entries new ones are (the requester, else the OS user); the agent sets it."""

    @classmethod
    def open(cls, location: str | os.PathLike[str] | None = None) -> Memory:
        """Open (creating or upgrading) the store at a path, ``sqlite:///path`` or a
        ``postgresql://`` URL; by default the ``memory`` setting (``~/.aiser/memory.db``)."""
        if location is None:
            from aiser_jupyter.config import Settings

            location = Settings.load().memory
        text = os.fspath(location)
        if is_postgres_url(text):
            return cls(PostgresBackend(text), redact_url(text))
        path = text.removeprefix("sqlite:///")
        path = path if path == ":memory:" else str(Path(path).expanduser())
        return cls(SQLiteBackend(path), path)

    def close(self) -> None:
        self._db.close()

    def __enter__(self) -> Memory:
        return self

    def __exit__(self, *exc: object) -> None:
        self.close()

    def __repr__(self) -> str:
        return f"Memory({self.location!r})"

    # -- long-term and semantic ----------------------------------------------------

    def remember(self, text: str, kind: str | None = None, term: str | None = None) -> Entry:
        """Keep a fact, preference, rule or glossary entry; with no kind, ``term = definition``
        is a glossary entry and anything else a fact. A term's new definition replaces the
        old one; remembering the same text twice keeps one entry."""
        clean, redacted = scrub(text.strip())
        if term is not None:
            if kind not in (None, "glossary"):
                raise MemoryFailed(f"Only glossary entries have a term, not a {kind!r}.")
            term, term_redacted = scrub(term.strip())
            redacted |= term_redacted
            kind = "glossary"
        elif kind in (None, "glossary") and (pair := parse_glossary(clean)) is not None:
            term, clean = pair
            kind = "glossary"
        elif kind == "glossary":
            raise MemoryFailed('A glossary entry reads "term = definition" or "term means it".')
        kind = kind or "fact"
        if kind not in LONG_TERM:
            raise MemoryFailed(f"Cannot remember a {kind!r}: the kinds are {', '.join(LONG_TERM)}.")
        if not clean or (kind == "glossary" and not term):
            raise MemoryFailed("Nothing to remember: the text is empty.")
        same = ("lower(term) = lower(?)", term) if kind == "glossary" else ("text = ?", clean)
        with self._db.transaction():
            rows = self._db.fetch(
                f"SELECT {COLUMNS} FROM aiser_memory WHERE kind = ? AND {same[0]}", (kind, same[1])
            )
            for row in map(_entry, rows):
                if row.text == clean and row.term == term:
                    return row
            for row in rows:  # older definitions of the same term
                self._db.fetch("DELETE FROM aiser_memory WHERE id = ?", (row[0],))
            return self._insert(kind, clean, redacted, term=term)

    def glossary(self) -> dict[str, str]:
        """Each glossary term with its definition, in term order: the planner's vocabulary."""
        rows = self._db.fetch(
            "SELECT term, text FROM aiser_memory WHERE kind = 'glossary' ORDER BY lower(term)"
        )
        return dict(rows)

    # -- short-term ------------------------------------------------------------------

    def record_turn(self, conversation_id: str, role: str, text: str) -> Entry:
        """Add one message to a notebook's conversation."""
        if role not in ROLES:
            raise MemoryFailed(f"A turn's role is one of {', '.join(ROLES)}, not {role!r}.")
        clean, redacted = scrub(text)
        with self._db.transaction():
            return self._insert(TURN, clean, redacted, role=role, conversation_id=conversation_id)

    def conversation(self, conversation_id: str, last: int = 20) -> list[Entry]:
        """The last `last` turns of a conversation, oldest first, as a prompt wants them."""
        rows = self._db.fetch(
            f"SELECT {COLUMNS} FROM aiser_memory WHERE kind = 'turn' AND conversation_id = ?"
            " ORDER BY id DESC LIMIT ?",
            (conversation_id, last),
        )
        return [_entry(row) for row in reversed(rows)]

    # -- episodic --------------------------------------------------------------------

    def record_episode(
        self,
        question: str,
        sql: str,
        *,
        query: dict[str, Any] | None = None,
        worked: bool = True,
        error: str | None = None,
        conversation_id: str | None = None,
        connection: str | None = None,
    ) -> Entry:
        """Keep a question with the SQL (and semantic query) that answered it, and the outcome."""
        clean, redacted = scrub(question.strip())
        clean_sql, sql_redacted = scrub(sql)
        clean_query, query_redacted = scrub_json(query)
        clean_error, error_redacted = scrub(error) if error is not None else (None, False)
        with self._db.transaction():
            return self._insert(
                EPISODE,
                clean,
                redacted or sql_redacted or query_redacted or error_redacted,
                sql=clean_sql,
                query=None if query is None else json.dumps(clean_query, sort_keys=True),
                worked=int(worked),
                error=clean_error,
                conversation_id=conversation_id,
                connection=connection,
            )

    def feedback(self, episode_id: int, good: bool) -> Entry:
        """The user's verdict on the answer an episode kept: confirmed, it is reused for the
        same question (`confirmed`); rejected, it is never reused nor a few-shot example."""
        with self._db.transaction():
            rows = self._db.fetch(
                "UPDATE aiser_memory SET worked = ?, confirmed_at = ? WHERE id = ? AND kind = ?"
                f" RETURNING {COLUMNS}",
                (int(good), _now() if good else None, int(episode_id), EPISODE),
            )
        if not rows:
            raise MemoryFailed(f"No episode #{episode_id} in memory (forgotten?).")
        return _entry(rows[0])

    def confirmed(self, question: str) -> Entry | None:
        """The newest episode the user confirmed for this question (compared by
        `same_question`), or None."""
        wanted = same_question(question)
        rows = self._db.fetch(
            f"SELECT {COLUMNS} FROM aiser_memory WHERE kind = ? AND worked = 1"
            " AND confirmed_at IS NOT NULL ORDER BY confirmed_at DESC, id DESC",
            (EPISODE,),
        )
        return next((e for e in map(_entry, rows) if same_question(e.text) == wanted), None)

    def similar_episodes(self, question: str, k: int = 3, only_worked: bool = True) -> list[Entry]:
        """Past questions closest to `question` by BM25 over their words (stemmed), best
        first: the agent's few-shot examples. Any text is safe to pass."""
        terms = search_terms(question)
        if not terms or k <= 0:
            return []
        rows = self._db.match(terms, (EPISODE,), True, only_worked, k)
        return [_entry(row[:-1], score=float(row[-1])) for row in rows]

    # -- all kinds -------------------------------------------------------------------

    def recall(self, question: str, conversation_id: str | None = None, k: int = 3) -> Recall:
        """Everything the agent should know before answering `question`, in one call."""
        facts = self.entries("fact", "preference", "rule")
        turns = self.conversation(conversation_id) if conversation_id is not None else []
        return Recall(facts, self.glossary(), self.similar_episodes(question, k), turns)

    def entries(self, *kinds: str) -> list[Entry]:
        """Every entry (of these kinds, if any are named), newest first."""
        where = f"WHERE kind IN ({', '.join('?' * len(kinds))})" if kinds else ""
        rows = self._db.fetch(f"SELECT {COLUMNS} FROM aiser_memory {where} ORDER BY id DESC", kinds)
        return [_entry(row) for row in rows]

    def search(self, text: str, k: int = 20) -> list[Entry]:
        """Facts, rules, glossary entries and episodes matching any word of `text` (in their
        text, term or SQL), best first. Conversation turns are listed, not searched."""
        terms = search_terms(text)
        if not terms or k <= 0:
            return []
        rows = self._db.match(terms, (*LONG_TERM, EPISODE), False, False, k)
        return [_entry(row[:-1], score=float(row[-1])) for row in rows]

    def forget(self, entry_id: int) -> bool:
        """Erase one entry, leaving no copy in the store; False if there was none."""
        return self._db.forget(int(entry_id))

    def clear(self) -> int:
        """Erase everything (the right to erasure); how many entries there were."""
        return self._db.clear()

    def export(self, path: str | os.PathLike[str]) -> int:
        """Write every entry of every kind to a JSON file (the right of access); how many."""
        rows = self._db.fetch(f"SELECT {COLUMNS} FROM aiser_memory ORDER BY id")
        entries = [
            {
                **asdict(entry),
                "created_at": entry.created_at.isoformat(),
                "confirmed_at": entry.confirmed_at and entry.confirmed_at.isoformat(),
            }
            for entry in map(_entry, rows)
        ]
        for entry in entries:
            del entry["score"]
        document = {
            "format": EXPORT_FORMAT,
            "store": self.location,
            "exported_at": _now(),
            "entries": entries,
        }
        target = Path(path).expanduser()
        target.parent.mkdir(parents=True, exist_ok=True)
        target.write_text(json.dumps(document, indent=2, ensure_ascii=False), encoding="utf-8")
        return len(entries)

    # -- data subjects (GDPR) and retention ----------------------------------------------

    def of_subject(self, subject: str) -> list[Entry]:
        """Every entry of `subject`, oldest first (entries from before owners were kept
        belong to the OS user)."""
        return [_entry(row) for row in self._db.fetch(*self._subject_rows(subject))]

    def erase_subject(self, subject: str) -> int:
        """Erase every entry of `subject`, leaving no copy in the store; how many."""
        return sum(self._db.forget(e.id) for e in self.of_subject(subject))

    def purge(self, before: datetime) -> int:
        """Erase the entries made before `before` (retention); how many."""
        rows = self._db.fetch("SELECT id FROM aiser_memory WHERE created_at < ?", (_utc(before),))
        return sum(self._db.forget(int(row[0])) for row in rows)

    def _subject_rows(self, subject: str) -> tuple[str, tuple[Any, ...]]:
        import getpass

        unowned = " OR subject IS NULL" if subject == getpass.getuser() else ""
        return (
            f"SELECT {COLUMNS} FROM aiser_memory WHERE subject = ?{unowned} ORDER BY id",
            (subject,),
        )

    def to_frame(self, *kinds: str) -> pd.DataFrame:
        """`entries` as a table to display: id, kind, term, text, role, sql, worked, created."""
        import pandas as pd

        columns = ["id", "kind", "term", "text", "role", "sql", "worked", "redacted", "created_at"]
        rows = [{name: getattr(e, name) for name in columns} for e in self.entries(*kinds)]
        return pd.DataFrame(rows, columns=columns)

    def _insert(self, kind: str, text: str, redacted: bool, **values: Any) -> Entry:
        names = ["kind", "text", "redacted", "created_at", "subject", *values]
        marks = ", ".join("?" * len(names))
        row = self._db.fetch(
            f"INSERT INTO aiser_memory ({', '.join(names)}) VALUES ({marks}) RETURNING {COLUMNS}",
            (kind, text, int(redacted), _now(), self.owner(), *values.values()),
        )[0]
        return _entry(row)


def _utc(moment: datetime) -> str:
    if moment.tzinfo is None:
        moment = moment.astimezone()
    return moment.astimezone(timezone.utc).isoformat(timespec="microseconds")


def _now() -> str:
    return datetime.now(timezone.utc).isoformat(timespec="microseconds")


def _entry(row: tuple[Any, ...], score: float | None = None) -> Entry:
    entry_id, kind, text, term, role, conversation_id, sql, query, worked, error = row[:10]
    return Entry(
        id=int(entry_id),
        kind=kind,
        text=text,
        created_at=datetime.fromisoformat(row[11]),
        term=term,
        role=role,
        conversation_id=conversation_id,
        sql=sql,
        query=json.loads(query) if query is not None else None,
        worked=None if worked is None else bool(worked),
        error=error,
        redacted=bool(row[10]),
        connection=row[12],
        confirmed_at=None if row[13] is None else datetime.fromisoformat(row[13]),
        score=score,
    )
