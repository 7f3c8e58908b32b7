"""The words of a semantic model and of its data, as phrases a question is matched against.

Matching is on simple stems (``categories`` = ``category``, ``returned`` = ``returns``), so
a question need not spell a member the way the model does. Everything here is built once per
model (the data's values once per ``ValueIndex``), so planning a question stays in the
sub-millisecond range.
"""

from __future__ import annotations

import functools
import re
import weakref
from collections.abc import Callable, Iterable
from dataclasses import dataclass, field
from datetime import date, datetime
from typing import TYPE_CHECKING, Any

import sqlglot
from sqlglot import exp

if TYPE_CHECKING:
    import pyarrow as pa

    from aiser_jupyter.semantic.model import Member, SemanticModel

_STOP = """a an the of for in on at to from by per with and or vs versus me us our we i you my your
    show give list tell what what's which who whose how is are was were be been being do does did
    have has had get got display find please can could would will should there their them they
    its it this that these those all any each every total overall sum many much number
    count data result results breakdown broken down split grouped group across over about as
    into up out at look pull fetch view give hey kindly i'd i'm im wise figures figure
    numbers stats statistics metrics metric kpi kpis values value overview look looking
    than then so also just only now same instead again too well plus but not no non s t let see
    want need know like compare compared ok okay summary report chart plot graph table sold sell
    sells selling bought buy made make placed place generated earned spent happened come came
    excluding exclude except without other where when most least top bottom best worst highest
    lowest largest smallest biggest fewest more less some one average avg mean comes coming
    contribute contributes contributed contributing represent represents represented makes
    generate generates drive drives driven accounted up break unique distinct outside counting
    new brought bring brings send sent still offer offers carry carried go goes went ones far
    site website run runs ran take takes took taken done end ended"""
STOP_WORDS = frozenset(_STOP.split())
"""Words that carry no member, value or time: never reported as not understood."""

VAGUE = frozenset(
    {"best", "worst", "good", "bad", "doing", "perform", "performance", "healthy", "health"}
    | {"important", "interesting", "well", "key", "happening", "going", "insight", "status"}
)
"""Words that need a measure to mean anything ("our best customers": best by what?); never
a partial name ("performance" alone is not "on-time performance")."""

ALIASES = {
    "avg": "average",
    "mean": "average",
    "qty": "quantity",
    "num": "number",
    "amt": "amount",
    "cnt": "count",
    "yr": "year",
}
MAX_VALUES = 200
"""A string dimension with more distinct values than this is not indexed (names, emails…)."""


def singular(word: str) -> str:
    """``categories`` → ``category``, ``boxes`` → ``box``; ``status`` and ``analysis`` stay."""
    if len(word) <= 3 or word.endswith(("ss", "us", "is")):
        return word
    if word.endswith("ies"):
        return word[:-3] + "y"
    if word.endswith(("sses", "shes", "ches", "xes", "zes", "uses")):
        return word[:-2]
    return word[:-1] if word.endswith("s") else word


def stem(word: str) -> str:
    """A simple stem: singular, then one of -ation/-tion/-ing/-ed off, then a final e."""
    w = word.lower().removesuffix("'s")
    w = singular(ALIASES.get(w, w))
    for suffix, replacement in (("ation", ""), ("tion", "t"), ("ing", ""), ("ed", "")):
        if w.endswith(suffix) and len(w) - len(suffix) >= 3:
            w = w[: -len(suffix)] + replacement
            if w[-1] == w[-2] and w[-1] not in "aeiou":  # cancelled → cancel
                w = w[:-1]
            break
    return w[:-1] if len(w) > 3 and w.endswith("e") else w


_NOT_PARTIAL = frozenset(
    stem(w)
    for w in (
        *VAGUE,
        *("time", "date", "rate", "id", "name", "value", "type", "code", "level", "at", "key"),
        *("flag", "day", "week", "month", "quarter", "year", "percent", "ratio", "share"),
    )
)
"""Last words too generic to stand for the whole name ("time" is not "on time count")."""
_FUNCTION_STEMS = frozenset(
    stem(w)
    for w in (
        *("a", "an", "the", "of", "for", "in", "on", "at", "to", "from", "by", "per", "with"),
        *("and", "or", "vs", "is", "are", "total", "sum", "count", "number", "all"),
    )
)
"""Words no member is named by alone: a member called "level" or "value" is still found."""
_EVENT_ENDS = frozenset(stem(w) for w in ("at", "on", "date", "time", "day", "timestamp"))
"""How a time dimension's name ends after the event it dates: created_at, shipped_on."""
_AMOUNT_STEMS = frozenset(
    stem(w) for w in ("total", "sum", "count", "number", "of", "the", "a", "an", "overall", "all")
)


def words(text: str) -> list[str]:
    """The words of a name or title: snake_case, camelCase, spaces and punctuation split."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", text)
    return [w for w in re.split(r"[^A-Za-z0-9]+", spaced) if w]


def phrase(text: str) -> tuple[str, ...]:
    return tuple(stem(w) for w in words(text))


@dataclass
class Token:
    """A word of the question: as typed, lower-cased and stemmed; `used` once it means something."""

    raw: str
    low: str
    stem: str
    plural: bool
    used: bool = False
    listed: bool = False
    """A comma, "&", "/" or "+" stands right before the word ("revenue, orders")."""


def tokenize(text: str, full_names: Iterable[str] = ()) -> list[Token]:
    """Words of the question; ``cube.member`` stays one token when the model has that member."""
    known = set(full_names)
    tokens = []
    end = 0
    for match in re.finditer(r"[A-Za-z0-9_]+(?:\.[A-Za-z0-9_]+)?", text):
        raw = match.group()
        listed = any(mark in text[end : match.start()] for mark in ",&/+;")
        end = match.end()
        if raw.lower() in known:
            tokens.append(Token(raw, raw.lower(), raw.lower(), False, listed=listed))
            continue
        for piece in words(raw):
            low = piece.lower()
            tokens.append(Token(piece, low, stem(low), singular(low) != low, listed=listed))
            listed = False
    return tokens


@dataclass(frozen=True)
class Candidate:
    """What a phrase may mean: a member, a cube, or a value of a dimension."""

    kind: str  # measure | dimension | segment | cube | value
    name: str  # member full name or cube name (for a value: its dimension)
    cube: str
    rank: int  # 0 name or title, 1 synonym, 2 last word of a name, 3 a word of a description
    value: str | None = None  # a boolean dimension's value is "true"
    case: str | None = None  # a short code such as "US" must be typed in capitals


HOW = ("name", "synonym", "partial name", "description")


@dataclass
class Vocabulary:
    """Phrases (tuples of stems) → what they may mean, for the members and cubes of a model."""

    phrases: dict[tuple[str, ...], list[Candidate]] = field(default_factory=dict)
    full_names: set[str] = field(default_factory=set)
    sql_keys: dict[str, str] = field(default_factory=dict)
    """Measure or dimension → its SQL, normalised: an average over the same column is found."""
    described: dict[str, list[Candidate]] = field(default_factory=dict)
    """A stem of a member's description → the member: never a meaning of the word (a word
    a description mentions is not the member), only a suggestion to offer."""

    def add(self, key: tuple[str, ...], candidate: Candidate) -> None:
        if not key or all(w in _FUNCTION_STEMS for w in key):  # ("count",), ("of", "the")
            return
        found = self.phrases.setdefault(key, [])
        same = next(
            (c for c in found if c.kind == candidate.kind and c.name == candidate.name), None
        )
        if same is None:
            found.append(candidate)
        elif candidate.rank < same.rank:
            found[found.index(same)] = candidate

    def add_names(self, texts: Iterable[str], kind: str, name: str, cube: str, rank: int) -> None:
        """A name or title as a phrase, also without the words that only say "how much"
        ("Total Revenue", "number of orders"), and its last word as a partial name ("margin"
        for Gross Margin); "on time count" stays whole: "time" alone is not that measure."""
        for text in texts:
            key = phrase(text)
            content = tuple(w for w in key if w not in _AMOUNT_STEMS)
            self.add(key, Candidate(kind, name, cube, rank))
            self.add(content, Candidate(kind, name, cube, rank))
            if rank == 0 and len(content) > 1 and content[-1] not in _NOT_PARTIAL:
                self.add(content[-1:], Candidate(kind, name, cube, 2))  # a synonym stays whole

    @classmethod
    def of(cls, model: SemanticModel) -> Vocabulary:
        """The model's vocabulary, built on first use and kept while the model lives."""
        entry = _CACHE.get(id(model))
        if entry is not None and entry[0]() is model:
            return entry[1]
        vocabulary = cls()
        vocabulary.build(model)
        _CACHE[id(model)] = (weakref.ref(model), vocabulary)
        weakref.finalize(model, _CACHE.pop, id(model), None)
        return vocabulary

    def build(self, model: SemanticModel) -> None:
        for cube in model.cubes.values():
            if not cube.public:
                continue
            self.add_names([cube.name, cube.title], "cube", cube.name, cube.name, 0)
            self.add_names(_synonyms(cube.meta), "cube", cube.name, cube.name, 1)
            for member in cube.members.values():
                if not member.public:
                    continue
                full, kind = member.full_name, member.kind
                if kind == "segment":  # a named filter: "completed orders", "current staff"
                    self.add_names([member.name, member.title], kind, full, cube.name, 0)
                    self.add_names(_synonyms(member.meta), kind, full, cube.name, 1)
                    continue
                self.full_names.add(full.lower())
                self.phrases[(full.lower(),)] = [Candidate(kind, full, cube.name, 0)]
                self.add_names([member.name, member.title], kind, full, cube.name, 0)
                for owner in (cube.name, cube.title):  # "product category", "customer region"
                    self.add(
                        (*phrase(owner), *phrase(member.title)), Candidate(kind, full, cube.name, 0)
                    )
                self.add_names(_synonyms(member.meta), kind, full, cube.name, 1)
                for word in words(member.description or ""):
                    if len(word) >= 4 and word.lower() not in STOP_WORDS:
                        found = self.described.setdefault(stem(word), [])
                        found.append(Candidate(kind, full, cube.name, 3))
                if member.type == "boolean" and kind == "dimension":
                    self._add_flag(member)
                if member.type == "time" and kind == "dimension":  # "created" for created_at
                    event = phrase(member.name)[:-1]
                    if event and phrase(member.name)[-1] in _EVENT_ENDS:
                        self.add(event, Candidate(kind, full, cube.name, 1))
                key = _sql_key(member)
                if key is not None:
                    self.sql_keys[member.full_name] = key

    def _add_flag(self, member: Member) -> None:
        """A boolean dimension is a value of itself: "active subscriptions" filters
        ``is_active`` to true ("not active", "inactive": to false)."""
        for text in [member.name, member.title, *_synonyms(member.meta)]:
            key = tuple(w for w in phrase(text) if w not in ("is", "has", "flag"))
            self.add(key, Candidate("value", member.full_name, member.cube, 0, "true"))
            for prefix in ("in", "un", "non") if len(key) == 1 else ():
                false = Candidate("value", member.full_name, member.cube, 0, "false")
                self.add((prefix + key[0],), false)


_CACHE: dict[int, tuple[weakref.ref, Vocabulary]] = {}


def _synonyms(meta: dict[str, Any]) -> list[str]:
    found = meta.get("synonyms") or []
    return [str(s) for s in ([found] if isinstance(found, str) else found)]


def _sql_key(member: Member) -> str | None:
    """The member's SQL with ``{CUBE}.`` dropped, as sqlglot prints it: ``revenue`` for both
    ``revenue`` and ``{CUBE}.revenue``; None for SQL that refers to other members."""
    if member.sql is None or any(ref != ("CUBE",) for ref in member.sql.refs):
        return None
    try:
        tree = sqlglot.parse_one(member.sql.text)
    except sqlglot.errors.ParseError:
        return None
    for column in tree.find_all(exp.Column):
        if column.table.startswith("__aiser_ref_"):
            column.set("table", None)
    return tree.sql()


@dataclass
class ValueIndex:
    """Distinct values of a model's small string dimensions, and the span of its time
    dimensions: built once from the data so that "enterprise" or "US" becomes a filter."""

    values: dict[str, list[str]] = field(default_factory=dict)
    time_bounds: dict[str, tuple[date, date]] = field(default_factory=dict)
    phrases: dict[tuple[str, ...], list[Candidate]] = field(default_factory=dict)

    @functools.cached_property
    def words(self) -> frozenset[str]:
        """The data's values, lower-cased: read by every plan, so made once per index."""
        return frozenset(v.lower() for found in self.values.values() for v in found)

    def __post_init__(self) -> None:
        countries = _country_names()
        for dimension, found in self.values.items():
            cube = dimension.split(".")[0]
            for value in found:
                key = phrase(value)
                code = value if len(value) <= 3 and value.isalpha() and value.isupper() else None
                if not key or key[0].isdigit() or (code is None and value.lower() in STOP_WORDS):
                    continue
                self.phrases.setdefault(key, []).append(
                    Candidate("value", dimension, cube, 0, value, code)
                )
                if code is not None and code in countries:  # "Germany" for a column of "DE"
                    self.phrases.setdefault(phrase(countries[code]), []).append(
                        Candidate("value", dimension, cube, 1, value)
                    )

    @classmethod
    def build(
        cls,
        model: SemanticModel,
        run: Callable[[dict[str, Any]], pa.Table],
        max_values: int = MAX_VALUES,
    ) -> ValueIndex:
        """Ask the data through `run` (a Cube query → Arrow table, e.g.
        ``lambda q: session.query(q).to_arrow()``), so it works on any connection; a member
        the requester may not see (or that fails) is left out, not an error."""
        from aiser_jupyter.errors import AiserError

        values: dict[str, list[str]] = {}
        bounds: dict[str, tuple[date, date]] = {}
        for cube in model.cubes.values():
            if not cube.public:
                continue
            for member in cube.by_kind("dimension"):
                name = member.full_name
                if not member.public or member.primary_key or "pii" in member.meta:
                    continue
                try:
                    if member.type == "string":
                        column = run({"dimensions": [name], "limit": max_values + 1}).column(0)
                        found = [str(v) for v in column.to_pylist() if v not in (None, "")]
                        if len(found) <= max_values:
                            values[name] = found
                    elif member.type == "time":
                        ends = [_edge(run, name, d) for d in ("asc", "desc")]
                        if ends[0] is not None and ends[1] is not None:
                            bounds[name] = (ends[0], ends[1])
                except AiserError:
                    continue
        return cls(values, bounds)


@functools.cache
def _country_names() -> dict[str, str]:
    """ISO 3166 two-letter codes → English country names (CLDR's, through Babel)."""
    try:
        from babel import Locale
    except ImportError:  # pragma: no cover - Babel comes with the package
        return {}
    return {code: name for code, name in Locale("en").territories.items() if len(code) == 2}


def _edge(run: Callable[[dict[str, Any]], pa.Table], dimension: str, way: str) -> date | None:
    query = {
        "timeDimensions": [{"dimension": dimension, "granularity": "day"}],
        "filters": [{"member": dimension, "operator": "set"}],
        "order": [[dimension, way]],
        "limit": 1,
    }
    found = run(query).column(0).to_pylist()
    if not found or found[0] is None:
        return None
    value = found[0]
    if isinstance(value, str):
        value = datetime.fromisoformat(value)
    return value.date() if isinstance(value, datetime) else value


@dataclass
class Span:
    """Consecutive tokens that name something, with every candidate meaning."""

    first: int
    last: int
    text: str
    candidates: list[Candidate]


def find_spans(tokens: list[Token], vocabulary: Vocabulary, values: ValueIndex | None) -> list:
    """Longest phrases first, left to right; a token belongs to at most one span (it is
    `used` only once the planner gives the span a role)."""
    tables = [vocabulary.phrases, values.phrases if values else {}]
    longest = max((len(k) for t in tables for k in t), default=1)
    spans: list[Span] = []
    taken = [t.used for t in tokens]
    i = 0
    while i < len(tokens):
        for size in range(min(longest, len(tokens) - i), 0, -1):
            window = tokens[i : i + size]
            if any(taken[i : i + size]):
                continue
            key = tuple(t.stem for t in window)
            raw = " ".join(t.raw for t in window)
            found = [c for t in tables for c in t.get(key, []) if c.case is None or c.case == raw]
            if found:
                spans.append(Span(i, i + size - 1, raw, found))
                taken[i : i + size] = [True] * size
                i += size - 1
                break
        i += 1
    return spans
