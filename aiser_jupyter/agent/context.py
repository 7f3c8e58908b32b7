"""The slice of the schema a question needs, so a prompt stays small on a big database.

Every table, column and semantic member becomes a short document; the question's
words rank them (BM25 over names, titles, descriptions and synonyms) and only the
best few go into the prompt. The model can ask for more with the schema tools.
"""

from __future__ import annotations

import math
import re
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

WORD = re.compile(r"[a-z0-9]+")


def words(text: str) -> list[str]:
    """Lowercase words with a plural 's' dropped, so "orders" finds "order_id"."""
    found = []
    for word in WORD.findall(text.lower().replace("_", " ")):
        found.append(word[:-1] if len(word) > 3 and word.endswith("s") else word)
    return found


@dataclass(frozen=True)
class Doc:
    kind: str  # "table" | "member"
    key: str  # connection.table, or cube.member
    line: str  # what the prompt shows
    text: str  # what the question is matched against


def rank(question: str, docs: Iterable[Doc], k: int) -> list[Doc]:
    """The `k` documents that best match `question` (BM25), ties in the given order."""
    docs = list(docs)
    if not docs:
        return []
    bags = [Counter(words(doc.text)) for doc in docs]
    average = sum(sum(bag.values()) for bag in bags) / len(bags) or 1
    seen = Counter(word for bag in bags for word in bag)
    query = set(words(question))

    def score(bag: Counter[str]) -> float:
        length = sum(bag.values())
        total = 0.0
        for word in query & set(bag):
            idf = math.log(1 + (len(bags) - seen[word] + 0.5) / (seen[word] + 0.5))
            tf = bag[word]
            total += idf * tf * 2.2 / (tf + 1.2 * (0.25 + 0.75 * length / average))
        return total

    scored = sorted(
        ((score(bag), -i, doc) for i, (bag, doc) in enumerate(zip(bags, docs, strict=True))),
        key=lambda item: (item[0], item[1]),
        reverse=True,
    )
    return [doc for value, _, doc in scored[:k] if value > 0] or docs[:k]


def table_docs(session: Any) -> list[Doc]:
    """One document per table of every connection: its columns and their types."""
    docs = []
    names = list(session.connections) or [session.default_duckdb().name]
    for name in names:
        try:
            rows = session.connection(name).columns().to_pylist()
        except Exception:  # an unreachable connection is left out, not fatal
            continue
        tables: dict[str, list[str]] = {}
        for row in rows:
            label = (
                row["table"]
                if row["schema"] in ("", "main", "public")
                else (f"{row['schema']}.{row['table']}")
            )
            tables.setdefault(label, []).append(f"{row['column']} {row['type']}")
        for table, columns in tables.items():
            line = f"{name}: {table}({', '.join(columns)})"
            docs.append(Doc("table", f"{name}.{table}", line, f"{table} {' '.join(columns)}"))
    return docs


def member_docs(model: Any) -> list[Doc]:
    """One document per public measure, dimension and segment of the semantic model."""
    if model is None:
        return []
    docs = []
    for cube in model.cubes.values():
        if not cube.public:
            continue
        for member in cube.members.values():
            if not member.public:
                continue
            synonyms = " ".join(member.meta.get("synonyms", []) or [])
            about = f"{member.kind}, {member.type}"
            if member.format:
                about += f", {member.format}"
            line = f"{member.full_name} ({about}): {member.title}"
            if member.description:
                line += f" — {member.description}"
            text = f"{cube.name} {cube.title} {member.name} {member.title} "
            text += f"{member.description or ''} {synonyms}"
            docs.append(Doc("member", member.full_name, line, text))
    return docs


def schema_context(session: Any, question: str, tables: int = 6, members: int = 30) -> str:
    """The prompt's view of the data: the best-matching members and tables for `question`."""
    parts = []
    docs = member_docs(session.model)
    found = docs if len(docs) <= members else rank(question, docs, members)
    if found:
        parts.append(
            "Semantic model members (use run_semantic_query with these names):\n"
            + "\n".join(f"- {doc.line}" for doc in found)
        )
    found = rank(question, table_docs(session), tables)
    if found:
        parts.append(
            "Tables (connection: table(columns)):\n" + "\n".join(f"- {d.line}" for d in found)
        )
    return "\n\n".join(parts) or "No tables yet: the user has not connected any data."
