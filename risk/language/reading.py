"""A customer's statement, read: which typology cues count, and who they are about.

The reader finds the ruleset's weighted typology phrases in the folded text,
then decides for each one:

- **negated**: a negator governs it ("不是警察让我转的", "not a safe account",
  "I'm not investing"). Negation is scoped: a one-character negator (不, 没)
  governs only what follows at once, a longer one (不是, 没有, not, rather
  than) the next few words, and never across a clause end or a contrast
  ("not the police, but the hospital"). What is only compared with ("比中奖
  还高兴", "better than winning the lottery") is not said to have happened
  either. A negator inside a phrase of the
  lexicon ("不要告诉", "don't tell") is part of that phrase, not a negation.
- **about family**: the phrase sits in a clause that describes one of the
  customer's relatives ("我儿子是警察", "my son works at the court"). The
  engine discounts such phrases only when the money goes to a long-known
  family payee: the payee book, not the story, settles who the words are about.

It also records the relatives the customer names (not negated), which the
engine compares with the payee book, and the statement model's verdict.
"""

from __future__ import annotations

import re
from bisect import bisect_right
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from types import MappingProxyType
from typing import NamedTuple, TypeVar

from risk.language.fold import fold
from risk.language.lexicon import WORD, Hit, PhraseIndex, tokenise
from risk.language.markers import (
    CLAUSE_ENDS,
    COMPARISONS,
    CONTRASTS,
    DESCRIBES,
    DIRECTIVES,
    LONG_NEGATORS,
    NOT_NEGATIONS,
    RELATIVES,
    SHORT_NEGATORS,
)
from risk.language.model import ModelVerdict, StatementModel

_CLAUSE_END = re.compile("[" + re.escape("".join(sorted(CLAUSE_ENDS))) + "]")
_SHORT_SCOPE = 2  # units (characters or words) a one-character negator governs
_LONG_SCOPE = 6
_DESCRIBE_GAP = 3
#: share of a role phrase's weight when nobody tells the customer anything
_UNDIRECTED_ROLE_SHARE = 0.5
_NO_RELATIVES: frozenset[str] = frozenset()
_NO_WEIGHTS: Mapping[str, float] = MappingProxyType({})
_NOT_JUDGED = object()


class Cue(NamedTuple):
    """A typology phrase and its weight (negative: an innocent context)."""

    typology: str
    weight: float


class CueHit(NamedTuple):
    """One typology phrase found in the statement (a named tuple: cheap to make)."""

    phrase: str
    typology: str
    weight: float
    negated: bool = False
    about_family: bool = False


class Reading:
    """What the statement says, independent of the operation.

    The statement model's verdict and, for a statement without typology cues,
    the relatives it names are worked out on first use: most statements need
    neither, and the reading is on every operation's path. (A plain slotted
    class, not a dataclass with cached properties: one is made per statement,
    and ``functools.cached_property`` takes a lock on every first read.)
    """

    __slots__ = ("_judge", "_model", "_relatives", "_sums", "_sums_not_family", "cues", "folded")

    folded: str
    cues: tuple[CueHit, ...]

    def __init__(
        self,
        folded: str,
        cues: tuple[CueHit, ...],
        relatives: frozenset[str] | Callable[[], frozenset[str]] = _NO_RELATIVES,
        judge: Callable[[], ModelVerdict | None] | None = None,
        sums: Mapping[str, float] = _NO_WEIGHTS,
        sums_not_family: Mapping[str, float] = _NO_WEIGHTS,
    ) -> None:
        self.folded = folded
        self.cues = cues
        self._relatives = relatives
        self._judge = judge
        self._model: ModelVerdict | object | None = _NOT_JUDGED
        #: per typology: the sum of the counted cue weights, family descriptions included
        self._sums = sums
        #: the same without phrases that describe the customer's family
        self._sums_not_family = sums_not_family

    @property
    def relatives(self) -> frozenset[str]:
        """Relations the customer names and does not deny ("son", "grandchild", ...)."""
        found = self._relatives
        if not isinstance(found, frozenset):
            found = self._relatives = found()
        return found

    @property
    def model(self) -> ModelVerdict | None:
        """The statement model's verdict (None without a model or known n-gram)."""
        verdict = self._model
        if verdict is _NOT_JUDGED:
            verdict = self._model = self._judge() if self._judge is not None else None
        return verdict  # type: ignore[return-value]

    def cue_weights(self, discount_family: bool) -> Mapping[str, float]:
        """Summed weights of the cues that count, per typology."""
        return self._sums_not_family if discount_family else self._sums

    def phrases(self, typology: str) -> list[str]:
        """The phrases that counted for ``typology``, as found (for explanations)."""
        return [c.phrase for c in self.cues if c.typology == typology and not c.negated]


@dataclass(frozen=True)
class Reader:
    """Reads statements against one ruleset's lexicon; built once per ruleset.

    The typology phrases and the grammar words (negators, contrasts, relatives,
    ...) sit in one index, so a statement is searched once for all of them.
    """

    #: typology phrases (payload :class:`Cue`) and grammar words (payload: the kind)
    phrases: PhraseIndex[Cue | str]
    #: typologies whose phrases can describe a person's role (police, court, ...)
    role_typologies: frozenset[str]
    model: StatementModel | None = None

    @classmethod
    def build(
        cls,
        lexicon: Mapping[str, Mapping[str, float]],
        role_typologies: frozenset[str],
        model: StatementModel | None = None,
    ) -> Reader:
        """``lexicon`` maps each typology to its phrases and their weights."""
        phrases: list[tuple[str, Cue | str]] = [
            (fold(phrase), Cue(name, weight))
            for name, entries in lexicon.items()
            for phrase, weight in entries.items()
        ]
        phrases += [(w, "long") for w in LONG_NEGATORS]
        phrases += [(w, "short") for w in SHORT_NEGATORS]
        phrases += [(w, "comparison") for w in COMPARISONS]
        phrases += [(w, "not_negation") for w in NOT_NEGATIONS]
        phrases += [(w, "contrast") for w in CONTRASTS]
        phrases += [(w, "relative:" + r) for w, r in RELATIVES.items()]
        phrases += [(w, "describes") for w in DESCRIBES]
        phrases += [(w, "directive") for w in DIRECTIVES]
        return cls(PhraseIndex.build(phrases), role_typologies, model)

    def read(self, text: str) -> Reading:
        """The reading of one statement."""
        folded = fold(text)
        if not folded.strip():
            return Reading(folded, ())
        tokens = tokenise(folded)
        read_tokens = self.phrases.correct(tokens) if tokens else tokens
        cue_hits: list[Hit[Cue]] = []
        marks: list[Hit[str]] = []
        for hit in self.phrases.find(folded, read_tokens):
            if type(hit.payload) is Cue:
                cue_hits.append(hit)  # type: ignore[arg-type]
            else:
                marks.append(hit)  # type: ignore[arg-type]
        model = self.model
        judge = (lambda: model.judge(folded, tokens)) if model is not None else None
        if not cue_hits:
            # Only a new payee makes the engine ask which relatives are named.
            if not any(m.payload.startswith("relative:") for m in marks):
                return Reading(folded, (), frozenset(), judge)
            return Reading(folded, (), lambda: _scope(folded, [], marks)[1], judge)
        found, relatives, directed = _scope(folded, _outermost(cue_hits), marks)
        # A job or a place named while nobody tells the customer anything is not
        # an instruction: its phrases count for less.
        return _reading(folded, found, relatives, judge, self.role_typologies, not directed)


def _scope(
    folded: str, cue_hits: list[Hit[Cue]], marks: list[Hit[str]]
) -> tuple[tuple[CueHit, ...], frozenset[str], bool]:
    """Negation and family descriptions for the cues; the relatives named;
    whether anyone is said to tell or ask the customer something."""
    directed = any(m.payload == "directive" for m in marks)
    relatives = [m for m in marks if m.payload.startswith("relative:")]
    spans = [(h.start, h.end) for h in cue_hits]
    negators = [
        m
        for m in marks
        if m.payload in ("long", "short", "comparison")
        and not _inside(m, spans)
        and not any(
            o.payload == "not_negation" and o.start <= m.start and m.end <= o.end for o in marks
        )
    ]
    if not negators and not relatives:  # the common case: nothing to scope
        return (
            tuple(CueHit(h.phrase, h.payload.typology, h.payload.weight) for h in cue_hits),
            frozenset(),
            directed,
        )
    clauses = _clause_starts(folded, marks)
    units = _Units(folded)
    negators = _outermost(negators)
    describing = [m for m in marks if m.payload == "describes"]
    family_spans = _family_descriptions(relatives, describing, clauses, units)
    named: set[str] = set()
    for rel in relatives:
        if not _negated(rel, negators, clauses, units):
            named.add(rel.payload.removeprefix("relative:"))
    found = tuple(
        CueHit(
            h.phrase,
            h.payload.typology,
            h.payload.weight,
            negated=_negated(h, negators, clauses, units),
            about_family=any(start <= h.start < end for start, end in family_spans),
        )
        for h in cue_hits
    )
    return found, frozenset(named), directed


def _reading(
    folded: str,
    cues: tuple[CueHit, ...],
    relatives: frozenset[str],
    judge: Callable[[], ModelVerdict | None] | None,
    role_typologies: frozenset[str],
    undirected: bool = False,
) -> Reading:
    sums: dict[str, float] = {}
    not_family: dict[str, float] = {}
    counted: set[tuple[str, str]] = set()
    for c in cues:
        if c.negated or (c.typology, c.phrase) in counted:
            continue  # a phrase said twice is still one cue
        counted.add((c.typology, c.phrase))
        weight = c.weight
        # (a phrase describing a relative is settled by the payee book instead)
        if undirected and weight > 0 and not c.about_family and c.typology in role_typologies:
            weight *= _UNDIRECTED_ROLE_SHARE
        sums[c.typology] = sums.get(c.typology, 0.0) + weight
        if not (c.about_family and c.typology in role_typologies):
            not_family[c.typology] = not_family.get(c.typology, 0.0) + weight
    return Reading(folded, cues, relatives, judge, sums, not_family)


H = TypeVar("H", bound=Hit[object])


def _outermost(hits: list[H]) -> list[H]:
    """Hits not inside a longer hit of the same payload kind."""
    if len(hits) < 2:
        return list(hits)
    ordered = sorted(hits, key=lambda h: (h.start, -(h.end - h.start)))
    kept: list[H] = []
    for h in ordered:
        if any(k.start <= h.start and h.end <= k.end and _same_kind(k, h) for k in kept):
            continue
        kept.append(h)
    return kept


def _same_kind(a: Hit[object], b: Hit[object]) -> bool:
    pa, pb = a.payload, b.payload
    if isinstance(pa, Cue) and isinstance(pb, Cue):
        return pa.typology == pb.typology
    return True


def _inside(hit: Hit[str], spans: list[tuple[int, int]]) -> bool:
    return any(start <= hit.start and hit.end <= end for start, end in spans)


def _clause_starts(folded: str, marks: list[Hit[str]]) -> list[int]:
    """Sorted positions where a clause starts (after punctuation, at a contrast)."""
    starts = {m.end() for m in _CLAUSE_END.finditer(folded)}
    starts.update(m.start for m in marks if m.payload == "contrast")
    starts.add(0)
    return sorted(starts)


class _Units:
    """Distance in reading units: a Chinese character or an English word each count one."""

    __slots__ = ("_folded",)

    def __init__(self, folded: str) -> None:
        self._folded = folded

    def gap(self, end: int, start: int) -> int:
        """Units between a phrase ending at ``end`` and one starting at ``start``."""
        if start < end:
            return -1
        between = self._folded[end:start]
        if len(between) > 4 * _LONG_SCOPE:
            return 1 << 20
        if between.isascii():
            return len(WORD.findall(between))
        wide = sum(1 for ch in between if not ch.isascii() and not ch.isspace())
        return wide + len(WORD.findall(between))


def _negated(hit: Hit[object], negators: list[Hit[str]], clauses: list[int], units: _Units) -> bool:
    clause = bisect_right(clauses, hit.start)
    for n in negators:
        if n.end > hit.start or bisect_right(clauses, n.start) != clause:
            continue
        scope = _LONG_SCOPE if n.payload == "long" else _SHORT_SCOPE
        if 0 <= units.gap(n.end, hit.start) <= scope:
            return True
    return False


def _family_descriptions(
    relatives: list[Hit[str]],
    describing: list[Hit[str]],
    clauses: list[int],
    units: _Units,
) -> list[tuple[int, int]]:
    """Spans that describe a relative: from the describing word to the end of the
    statement, since what follows a description ("儿子是律师，经常去法院") keeps
    talking about the same person."""
    spans: list[tuple[int, int]] = []
    for rel in relatives:
        clause = bisect_right(clauses, rel.start)
        end = clauses[clause] if clause < len(clauses) else 1 << 30
        for d in describing:
            if (
                d.start >= rel.end
                and d.start < end
                and units.gap(rel.end, d.start) <= _DESCRIBE_GAP
            ):
                spans.append((d.start, 1 << 30))
                break
    return spans
