"""What each part of a question asks for: measures, groupings, filters, counts, averages, top N.

The roles come from the phrases found in the question and the words just before them
("how many", "by", "top 5", "not"), so the same word reads as a count in "how many orders"
and as a grouping in "top 5 customers by revenue".
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from aiser_jupyter.agent.timewords import NUMBER_WORDS, UNITS
from aiser_jupyter.agent.vocabulary import HOW, Candidate, Span, Token, Vocabulary, stem

if TYPE_CHECKING:
    from aiser_jupyter.semantic.model import SemanticModel

FILLER = frozenset(
    {"the", "a", "an", "all", "our", "my", "their", "total", "overall", "selling", "performing"}
    | {"counting", "including", "any", "new"}
)
PREPOSITIONS = frozenset({"of", "from", "in", "for", "on", "with", "among", "to", "by"})
GROUP_WORDS = frozenset({"by", "per", "each", "every", "across", "which", "what"})
GROUP_RANKERS = {"top": True, "best": True, "bottom": False, "worst": False}
MEASURE_RANKERS = {
    "most": True,
    "highest": True,
    "largest": True,
    "biggest": True,
    "greatest": True,
    "least": False,
    "lowest": False,
    "smallest": False,
    "fewest": False,
}
NEGATIONS = frozenset(
    {"not", "excluding", "exclude", "except", "without", "non", "no", "excl", "outside"}
)
BETWEEN_NOT = frozenset(
    {"in", "and", "or", "nor", "from", "to", "for", "of", "by", "with", "at", "on", "that"}
    | {"come", "came", "comes", "coming", "did", "do", "does", "were", "was", "is", "are"}
    | {"be", "been", "which", "who", "counting", "including"}
)
"""Words a negation may stand before the value it excludes ("did not come from paid")."""
AHEAD = frozenset({"other", "than", "not", "except", "excluding", "outside", "in", "of", "the"})
SHARE_WORDS = frozenset(
    {"share", "percentage", "percent", "proportion", "fraction", "pct", "portion", "mix"}
)
AVERAGE = stem("average")
COUNTING = frozenset({"count", "count_distinct", "count_distinct_approx"})
LABELS = ("name", "title", "label", "full_name", "display_name")


@dataclass
class Reading:
    """The parts of one question, before a previous question or defaults fill the gaps."""

    measures: list[str] = field(default_factory=list)
    dimensions: list[str] = field(default_factory=list)
    time_dimension: str | None = None
    granularity: str | None = None
    filters: list[tuple[str, str, bool]] = field(default_factory=list)
    """(dimension, value, negated)."""
    segments: list[str] = field(default_factory=list)
    time_grouped: bool = False
    """A time dimension named as a grouping ("by order date")."""
    rank: tuple[bool, int] | None = None
    """(descending, how many) for top/bottom N."""
    measure_spans: list[tuple[int, int]] = field(default_factory=list)
    """Where each measure was named: measures must be listed ("revenue and orders")."""
    per: list[str] = field(default_factory=list)
    """Measures the asked ones are divided by: "revenue per customer" → customers.count."""
    share: bool = False
    """The share of a total is asked for ("what share of revenue", "percentage of orders")."""
    ranked_alone: bool = False
    """A ranking word with nothing to rank by ("our best customers")."""
    notes: list[str] = field(default_factory=list)
    unclear: list[str] = field(default_factory=list)
    missing: list[str] = field(default_factory=list)
    """What the question asks for that the model does not hold ("average revenue")."""


class Reader:
    """Reads one question's tokens and spans into a `Reading`."""

    def __init__(
        self,
        tokens: list[Token],
        spans: list[Span],
        model: SemanticModel,
        vocabulary: Vocabulary,
        likely: list[str],
        refining: bool = False,
    ):
        """`likely`: the measures a question without any will get (a follow-up's), whose
        cubes settle which "region" a grouping or a value means; `refining`: the question is
        phrased as a follow-up, so "enterprise accounts" says which, not what to count."""
        self.tokens, self.spans, self.model = tokens, spans, model
        self.refining = refining
        self.valued: set[int] = set()
        """First tokens of spans read as values, so far (spans are read left to right)."""
        self.qualifiers: set[int] = set()
        """First tokens of spans read as qualifiers ("product" in "average product price")."""
        self.vocabulary, self.likely = vocabulary, likely
        self.owner: list[Span | None] = [None] * len(tokens)
        for span in spans:
            for i in range(span.first, span.last + 1):
                self.owner[i] = span
        self.mentions: dict[str, int] = {}
        for span in spans:
            for cube in {c.cube for c in span.candidates if c.rank < 3}:
                self.mentions[cube] = self.mentions.get(cube, 0) + 1
        self.reading = Reading()
        self.ranking: tuple[bool, int | None] | None = None
        self.grouped: list[Span] = []

    def read(self) -> Reading:
        self._rank_words()
        self._share_words()
        roles: dict[str, list[tuple[Span, list[Candidate]]]] = {
            k: [] for k in ("measure", "group", "value", "segment", "cube", "per", "none")
        }
        for span in self.spans:
            role, chosen = self._role(span)
            roles[role].append((span, chosen))
            self.valued |= {span.first} if role in ("value", "segment") else set()
            if role == "group":
                self.grouped.append(span)
        for span, chosen in roles["measure"]:
            pick = self._pick(chosen, [])
            self._add_measure(pick.name, span, HOW[pick.rank] if pick.rank else None)
        for span, chosen in roles["per"]:
            pick = self._pick(chosen, [])
            self._use(span)
            if pick.name not in self.reading.per:
                self.reading.per.append(pick.name)
        for span, chosen in roles["cube"]:
            if (self.reading.measures or self.refining) and (
                self._after_value(span) or self._before(span)[1] in PREPOSITIONS
            ):
                self._use(span)  # "revenue from enterprise customers": the cube says whose
                continue
            cube = self._pick(chosen, []).cube
            count = self._count_of(cube)
            if count is None:
                self.reading.missing.append(f"{span.text} (cube {cube} has no count measure)")
            else:
                self._add_measure(count, span, f"count of {self.model.cubes[cube].title}")
        prefer = [self.model.member(m).cube for m in self.reading.measures or self.likely]
        for span, chosen in roles["group"]:
            self._add_group(self._pick(chosen, prefer), span)
        for span, chosen in roles["segment"]:
            self._use(span)
            if self._negated(span):  # Cube cannot negate a segment
                self.reading.unclear.append(f"not {span.text} (a segment cannot be excluded)")
            elif chosen[0].name not in self.reading.segments:
                self.reading.segments.append(chosen[0].name)
        for span, chosen in roles["value"]:
            self._use(span)
            pick = self._pick(chosen, self._named_cubes(span) + prefer)
            self.reading.filters.append((pick.name, pick.value or "", self._negated(span)))
        self._grain_words()
        if self.ranking is not None and not self.reading.measures:
            self.reading.ranked_alone = True
        if self.ranking is not None:
            descending, n = self.ranking
            if n is None:  # "the region with the most orders": one; "top products": ten
                plural = bool(self.grouped) and self.tokens[self.grouped[0].last].plural
                n = 10 if plural else 1
            self.reading.rank = (descending, n)
        return self.reading

    # -- roles -------------------------------------------------------------------------------

    def _role(self, span: Span) -> tuple[str, list[Candidate]]:
        """measure | group | value | cube | per | none, and the candidates for that role."""
        if self._qualifies(span):
            self._use(span)
            self.qualifiers.add(span.first)
            return "none", []
        index, marker, word = self._before(span)
        members = [c for c in span.candidates if c.kind != "value"]
        best_member = min((c.rank for c in members), default=9)
        kinds: dict[str, list[Candidate]] = {}
        for candidate in span.candidates:  # a closer match beats any looser one
            if candidate.kind == "value" or candidate.rank == best_member:
                kinds.setdefault(candidate.kind, []).append(candidate)
        following = self._span_at(span.last + 1)
        before_cube = following is not None and any(c.kind == "cube" for c in following.candidates)
        if "value" in kinds and "cube" in kinds and span.text.islower() and marker not in NEGATIONS:
            del kinds["value"]  # "how many people": the employees, not a department "People"
        share_of = self.reading.share and "value" in kinds  # a share needs a dimension's value
        if "segment" in kinds and marker not in GROUP_WORDS | NEGATIONS and not share_of:
            return "segment", kinds["segment"]
        flag = any(c.value in ("true", "false") for c in kinds.get("value", []))
        if flag and marker not in GROUP_WORDS:
            return "value", kinds["value"]  # "sessions that converted": a filter, not a grouping
        if "value" in kinds and (best_member > 0 or marker in NEGATIONS or before_cube):
            return "value", kinds["value"]  # "delivered shipments": which shipments
        if word == "count":
            return self._count_role(span, kinds)
        if word == "average":
            self.tokens[index].used = True
            return self._average_role(span, members)
        if marker in ("and", "or") or self.tokens[span.first].listed:
            listed = self._span_at(index - 1 if marker else span.first - 1, end=True)
            if listed in self.grouped:  # "by service level and destination"
                marker = "by"
        grouping = "cube" not in kinds and any(  # "per department"; "per employee" divides
            self._type(c) not in ("number", "") for c in kinds.get("dimension", [])
        )
        if (
            marker == "per"
            and not grouping
            and not self.tokens[span.last].plural
            and self._ratio_wanted(span)
        ):
            denominator = self._denominator(kinds)
            if denominator:  # "revenue per customer": a ratio of two measures, not a grouping
                self.tokens[index].used = True
                return "per", denominator
        if marker in GROUP_WORDS or word == "ranked":
            # "top 5 products by revenue": after the ranked grouping, "by" names the measure
            if not (marker == "by" and self.ranking is not None and self.grouped):
                dimensions = [c for c in span.candidates if c.kind == "dimension"]
                plain = [c for c in dimensions if self._type(c) != "number"]
                plain = [c for c in plain if c.rank == min(d.rank for d in plain)]
                for found in (plain, kinds.get("cube", [])):
                    if found:
                        return "group", found
            if "measure" in kinds:
                return "measure", kinds["measure"]
            if "cube" in kinds:
                return "cube", kinds["cube"]
            if "dimension" not in kinds:  # "by completed": a segment filters, it cannot group
                self._use(span)
                self.reading.unclear.append(f"{marker} {span.text} (nothing to group by)")
                return "none", []
            return "group", kinds["dimension"]
        if "cube" in kinds and min(c.rank for c in kinds["cube"]) <= 1:
            return "cube", kinds["cube"]
        for kind, role in (
            *(("measure", "measure"), ("dimension", "group"), ("cube", "cube")),
            *(("value", "value"), ("segment", "segment")),  # "not international": see read()
        ):
            if kind in kinds:
                return role, kinds[kind]
        return "none", []

    def _qualifies(self, span: Span) -> bool:
        """A word that only says whose or which: "product price" (the cube of the member
        after it), "the West region" (the dimension of the value before it), "Finance
        companies" (the cube of the value before it, when something else is measured)."""
        kinds = {c.kind for c in span.candidates}
        cubes = {c.cube for c in span.candidates if c.kind != "value"}
        following = self._span_at(span.last + 1)
        if (
            "cube" in kinds
            and following is not None
            and any(c.kind == "measure" and c.cube in cubes for c in following.candidates)
        ):
            return True
        if "value" in kinds or self._before(span)[1] in GROUP_WORDS:
            return False
        ahead = span.last + 1
        while ahead < len(self.tokens) and self.tokens[ahead].low in AHEAD:
            ahead += 1
        after = self._span_at(ahead)  # "countries other than the US": which countries
        if after is not None and ahead > span.last + 1:
            valued = {c.name for c in after.candidates if c.kind == "value"}
            if any(c.kind == "dimension" and c.name in valued for c in span.candidates):
                return True
        preceding = self._span_at(span.first - 1, end=True)
        if preceding is None or preceding.first not in self.valued:
            return False
        if any(self._type(c) == "time" for c in span.candidates):
            return False  # "people left": the date of leaving, not a word about the people
        named = {c.name for c in preceding.candidates if c.kind == "value"}
        if any(c.kind == "dimension" and c.name in named for c in span.candidates):
            return True
        valued = {c.cube for c in preceding.candidates if c.kind in ("value", "segment")}
        return bool(valued & cubes) and (self.refining or self._measured_elsewhere(span))

    def _measured_elsewhere(self, span: Span) -> bool:
        return any(
            other is not span and any(c.kind == "measure" and c.rank <= 1 for c in other.candidates)
            for other in self.spans
        )

    def _named_cubes(self, span: Span) -> list[str]:
        """The cube a value's neighbour names: "enterprise accounts" → accounts."""
        found = []
        for near in (self._span_at(span.last + 1), self._span_at(span.first - 1, end=True)):
            if near is not None:
                found += [c.cube for c in near.candidates if c.kind == "cube"]
        return found

    def _span_at(self, index: int, end: bool = False) -> Span | None:
        span = self.owner[index] if 0 <= index < len(self.owner) else None
        if span is None or (span.last if end else span.first) != index:
            return None
        return span

    def _count_role(self, span: Span, kinds: dict) -> tuple[str, list[Candidate]]:
        """For "how many X": a count measure X names, cube X's count, or X itself (units)."""
        counting = [c for c in kinds.get("measure", []) if self._type(c) in COUNTING]
        for cube in kinds.get("cube", []):
            count = self._count_of(cube.name)
            if count is not None:
                counting.append(Candidate("measure", count, cube.name, cube.rank))
        if counting or "measure" in kinds:
            return "measure", counting or kinds["measure"]
        for candidate in kinds.get("dimension", []):
            count = self._count_of(candidate.cube)
            if self._type(candidate) == "boolean" and count is not None:  # "how many bounced"
                self.reading.filters.append((candidate.name, "true", self._negated(span)))
                return "measure", [Candidate("measure", count, candidate.cube, candidate.rank)]
            distinct = self._same_sql(candidate, COUNTING - {"count"})
            if distinct is not None:
                return "measure", [distinct]
            count = self._count_of(candidate.cube)
            if count is not None and candidate.name in label_dimensions(self.model, candidate.cube):
                return "measure", [Candidate("measure", count, candidate.cube, candidate.rank)]
        self._use(span)
        self.reading.missing.append(f"how many {span.text} (the model has no count of it)")
        return "none", []

    def _average_role(self, span: Span, members: list[Candidate]) -> tuple[str, list[Candidate]]:
        """For "average X": an avg measure X names, or one over the same SQL; never made up."""
        members = [c for c in members if c.kind != "cube"]
        best = min((c.rank for c in members), default=0)
        members = [c for c in members if c.rank == best]
        for candidate in members:
            if self._type(candidate) == "avg":
                return "measure", [candidate]
            average = self._same_sql(candidate, {"avg"})
            if average is not None:
                return "measure", [average]
        self._use(span)
        title = self.model.member(members[0].name).title if members else span.text
        self.reading.missing.append(
            f"average {span.text} (the model has no average of {title}; none was made up)"
        )
        return "none", []

    def _ratio_wanted(self, span: Span) -> bool:
        """ "X per Y" is a ratio when something else groups the rows ("revenue per customer by
        region") or X is not a count ("revenue per customer"); "orders per warehouse" groups."""
        others = [s for s in self.spans if s is not span and self._before(s)[1] in GROUP_WORDS]
        if others:
            return True
        measured = [
            c for s in self.spans if s is not span for c in s.candidates if c.kind == "measure"
        ]
        return bool(measured) and not any(self._type(c) in COUNTING for c in measured)

    def _denominator(self, kinds: dict[str, list[Candidate]]) -> list[Candidate]:
        """What "per X" divides by: X's count when X is a cube, else measure X."""
        found = []
        for cube in kinds.get("cube", []):
            count = self._count_of(cube.name)
            if count is not None:
                found.append(Candidate("measure", count, cube.name, cube.rank))
        return found or kinds.get("measure", [])

    def _same_sql(self, candidate: Candidate, types: set | frozenset) -> Candidate | None:
        """A measure of one of `types` over the same SQL as `candidate`, in the same cube."""
        key = self.vocabulary.sql_keys.get(candidate.name)
        if key is None:
            return None
        for member in self.model.cubes[candidate.cube].by_kind("measure"):
            if member.type in types and self.vocabulary.sql_keys.get(member.full_name) == key:
                return Candidate("measure", member.full_name, member.cube, candidate.rank)
        return None

    # -- context ----------------------------------------------------------------------------

    def _before(self, span: Span) -> tuple[int, str, str]:
        """The word just before `span` (skipping fillers and filter values): its index, the
        word, and what it marks: count ("how many", "number of"), average, ranked ("top 5")."""
        j = span.first - 1
        while j >= 0 and (
            self.tokens[j].low in FILLER or self._is_value(j) or self._is_qualifier(j)
        ):
            j -= 1
        if j < 0:
            return j, "", ""
        low = self.tokens[j].low
        previous = self.tokens[j - 1].low if j > 0 else ""
        if (low, previous) in (
            ("many", "how"),
            ("of", "number"),
            ("of", "count"),
        ) or low == "count":
            return j, low, "count"
        if self.tokens[j].stem == AVERAGE and not self.tokens[j].used:
            return j, low, "average"
        if low in GROUP_RANKERS or (
            (low.isdigit() or low in NUMBER_WORDS) and previous in GROUP_RANKERS
        ):
            return j, low, "ranked"
        if (low.isdigit() or low in NUMBER_WORDS) and previous in GROUP_WORDS:
            self.tokens[j].used = True  # "which 2 employees": a grouping, two of them
            return j - 1, previous, ""
        return j, low, ""

    def _is_value(self, index: int) -> bool:
        span = self.owner[index]
        return span is not None and all(c.kind == "value" for c in span.candidates)

    def _is_qualifier(self, index: int) -> bool:
        span = self.owner[index]
        return span is not None and span.first in self.qualifiers

    def _after_value(self, span: Span) -> bool:
        """Right after a value or a segment: "enterprise accounts", "delivered shipments"."""
        before = self._span_at(span.first - 1, end=True)
        return before is not None and before.first in self.valued

    def _negated(self, span: Span) -> bool:
        """Whether a value is excluded: "not enterprise", "excluding returned and cancelled",
        "other than the US"."""
        j = span.first - 1
        while j >= 0 and (self.tokens[j].low in FILLER | BETWEEN_NOT or self._is_value(j)):
            j -= 1
        if j < 0:
            return False
        low = self.tokens[j].low
        if low in NEGATIONS:
            self.tokens[j].used = True  # a "not" that excludes nothing is reported, not dropped
            return True
        return low == "than" and j > 0 and self.tokens[j - 1].low == "other"

    def _rank_words(self) -> None:
        """top/bottom N, best/worst N, most/least: the direction, and N when a number is near."""
        for i, token in enumerate(self.tokens):
            descending = GROUP_RANKERS.get(token.low, MEASURE_RANKERS.get(token.low))
            if descending is None:
                continue
            token.used = True
            n = None
            for j in (i + 1, i - 1):
                near = self.tokens[j].low if 0 <= j < len(self.tokens) else ""
                if near.isdigit() or near in NUMBER_WORDS:
                    n = int(near) if near.isdigit() else NUMBER_WORDS[near]
                    self.tokens[j].used = True
                    break
            if n is None:  # "the 2 browsers with the fewest sessions"
                loose = [
                    t
                    for t in self.tokens
                    if not t.used and t.low.isdigit() and 0 < int(t.low) <= 100
                ]
                if len(loose) == 1:
                    n, loose[0].used = int(loose[0].low), True
            self.ranking = (descending, n)
            return

    def _share_words(self) -> None:
        for token in self.tokens:
            if token.low in SHARE_WORDS or token.stem in SHARE_WORDS:
                token.used = True
                self.reading.share = True

    def _grain_words(self) -> None:
        """A bare "month" or "years" left over ("top 3 months by revenue")."""
        for token in self.tokens:
            if not token.used and token.stem in UNITS:
                token.used = True
                self.reading.granularity = self.reading.granularity or token.stem

    # -- choices ------------------------------------------------------------------------------

    def _type(self, candidate: Candidate) -> str:
        return self.model.member(candidate.name).type if candidate.kind != "cube" else ""

    def _pick(self, candidates: list[Candidate], prefer: list[str]) -> Candidate:
        """Best match first; then a cube the measures come from; then the cube the question
        mentions most; then by name, so the same question always gives the same query."""

        def key(c: Candidate) -> tuple:
            order = prefer.index(c.cube) if c.cube in prefer else len(prefer)
            return (c.rank, order, -self.mentions.get(c.cube, 0), c.kind != "dimension", c.name)

        return min(candidates, key=key)

    def _count_of(self, cube: str) -> str | None:
        return next(
            (m.full_name for m in self.model.cubes[cube].by_kind("measure") if m.type == "count"),
            None,
        )

    def _use(self, span: Span) -> None:
        for token in self.tokens[span.first : span.last + 1]:
            token.used = True

    def _add_measure(self, name: str, span: Span, how: str | None) -> None:
        self._use(span)
        if name not in self.reading.measures:
            self.reading.measures.append(name)
            self.reading.measure_spans.append((span.first, span.last))
            if how:
                self.reading.notes.append(f"'{span.text}' read as {name} ({how})")

    def _add_group(self, candidate: Candidate, span: Span) -> None:
        self._use(span)
        names, how = [candidate.name], HOW[candidate.rank] if candidate.rank else None
        if candidate.kind == "cube":
            names = label_dimensions(self.model, candidate.name)
            if not names:
                self.reading.unclear.append(f"{span.text} (nothing to group {candidate.name} by)")
                return
            how = f"a {self.model.cubes[candidate.name].title} key or name"
        for name in names:
            if self.model.member(name).type == "time":
                self.reading.time_dimension = name  # "signed up in 2024": which date, no grouping
                marker = self._before(span)[1]
                self.reading.time_grouped |= marker in GROUP_WORDS or marker in GROUP_RANKERS
            elif name not in self.reading.dimensions:
                self.reading.dimensions.append(name)
        if how:
            self.reading.notes.append(f"'{span.text}' read as {' and '.join(names)} ({how})")


def label_dimensions(model: SemanticModel, cube: str) -> list[str]:
    """What "by product" groups by: a name-like string dimension (if any) and the primary key,
    so that two products with one name stay two rows."""
    found = [
        m.full_name
        for m in model.cubes[cube].by_kind("dimension")
        if m.type == "string" and (m.name in LABELS or m.name.endswith("_name"))
    ][:1]
    key = model.cubes[cube].primary_key
    return found + ([key.full_name] if key is not None else [])
