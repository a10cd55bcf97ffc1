"""Phrases found in folded text with their positions.

A :class:`PhraseIndex` maps phrases to payloads (a typology and a weight, or a
marker's kind). Chinese (any non-ASCII) phrases match as substrings; ASCII
phrases match whole words, so "police" never matches inside "policy". A word
ending in ``*`` matches any word it begins ("invest*" matches "investing").
An English word of five letters or more that is not in the index's vocabulary
is read as the vocabulary word one typing slip away ("polise", "acount",
"prosecuter"), unless the slip is at its last letter (where "policy" and
"police" differ) or more than one word is that close.

Chinese phrases are found in one pass over the text: each position's first
two characters look up the phrases that begin with them (one-character
phrases by the character), so the cost follows the statement's length, not
the lexicon's size. (An Aho-Corasick automaton was measured slower on
statements this short: its root has hundreds of children to search per
character.) English phrases are looked up by the text's words.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Generic, NamedTuple, TypeVar

P = TypeVar("P")
P_co = TypeVar("P_co", covariant=True)

#: A word of a folded text: letters, digits and an apostrophe inside ("don't").
WORD = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")
_MIN_TYPO_LENGTH = 5
#: shortest part a word split by spaces is read from (a pinyin syllable has two letters or more)
_MIN_JOIN_PART = 2
_CORRECTIONS_KEPT = 20_000
_PREFIX_KEY = 4


class Token(NamedTuple):
    """One word of the text; ``text`` is the word as read (typos corrected)."""

    text: str
    start: int
    end: int
    position: int


class Hit(NamedTuple, Generic[P_co]):
    """One occurrence of a phrase: its span in the folded text and its payload.

    (Named tuples: a statement yields dozens, and they are cheap to make.)"""

    phrase: str
    start: int
    end: int
    payload: P_co


def tokenise(folded: str) -> list[Token]:
    """The words of a folded text, in order."""
    return [Token(m[0], *m.span(), i) for i, m in enumerate(WORD.finditer(folded))]


def _one_slip(word: str, known: str) -> bool:
    """``word`` is ``known`` with one letter changed, added, dropped or swapped,
    the first letter intact and the last letter not the one that differs."""
    if word[0] != known[0] or word == known:
        return False
    lw, lk = len(word), len(known)
    if lw == lk:
        diff = [i for i in range(lw) if word[i] != known[i]]
        if len(diff) == 1:
            return diff[0] != lw - 1
        return (
            len(diff) == 2
            and diff[1] == diff[0] + 1
            and diff[1] != lw - 1
            and word[diff[0]] == known[diff[1]]
            and word[diff[1]] == known[diff[0]]
        )
    if abs(lw - lk) != 1:
        return False
    longer, shorter = (word, known) if lw > lk else (known, word)
    for i in range(len(shorter)):
        if longer[i] != shorter[i]:
            return i != len(longer) - 1 and longer[i + 1 :] == shorter[i:]
    return False  # the extra letter is the last one


@dataclass(frozen=True)
class PhraseIndex(Generic[P]):
    """Phrases in both scripts, indexed for :meth:`find`."""

    #: non-ASCII phrases of two or more characters by their first two: (phrase, payloads)
    by_pair: Mapping[str, tuple[tuple[str, tuple[P, ...]], ...]]
    #: one-character non-ASCII phrases
    by_single: Mapping[str, tuple[P, ...]]
    by_word: Mapping[str, tuple[tuple[tuple[str, ...], str, P], ...]]
    by_prefix: Mapping[str, tuple[tuple[tuple[str, ...], str, P], ...]]
    vocabulary: frozenset[str]
    slips: Mapping[str, tuple[str, ...]]
    #: first characters of the phrases in ``by_pair``
    pair_starts: frozenset[str] = frozenset()
    #: first part of a vocabulary word -> the letter after it -> the words (see :meth:`_joined`)
    joins: Mapping[str, Mapping[str, tuple[str, ...]]] = field(default_factory=dict)
    #: word -> the vocabulary word it is a slip of (None: none), remembered
    #: because customers use the same words again and again; a pure function
    #: of the word and the index, so sharing it between threads is harmless
    _corrections: dict[str, str | None] = field(
        default_factory=dict, compare=False, repr=False, hash=False
    )

    @classmethod
    def build(cls, phrases: Iterable[tuple[str, P]]) -> PhraseIndex[P]:
        """Index ``(phrase, payload)`` pairs; phrases are folded by the caller."""
        by_char: dict[str, list[P]] = {}
        by_word: dict[str, list[tuple[tuple[str, ...], str, P]]] = {}
        by_prefix: dict[str, list[tuple[tuple[str, ...], str, P]]] = {}
        vocabulary: set[str] = set()
        for phrase, payload in phrases:
            text = " ".join(phrase.split())
            if not text:
                continue
            if not text.isascii():
                by_char.setdefault(text, []).append(payload)
                continue
            words = tuple(re.findall(r"[a-z0-9*]+(?:'[a-z]+)?", text))
            if not words:
                continue
            vocabulary.update(w for w in words if not w.endswith("*"))
            first = words[0]
            if first.endswith("*") and len(first) > _PREFIX_KEY:
                by_prefix.setdefault(first[:_PREFIX_KEY], []).append((words, text, payload))
            else:
                by_word.setdefault(first.rstrip("*"), []).append((words, text, payload))
        slips: dict[str, set[str]] = {}
        for word in vocabulary:
            if len(word) >= _MIN_TYPO_LENGTH and word.isalpha():
                slips.setdefault(word, set()).add(word)
                for i in range(len(word)):
                    slips.setdefault(word[:i] + word[i + 1 :], set()).add(word)
        # Pinyin is often typed a syllable at a time ("zhong jiang" for
        # "zhongjiang"): each word of the vocabulary can be found from its first
        # part, then read from the words that follow.
        joins: dict[str, dict[str, set[str]]] = {}
        for word in vocabulary:
            if word.isalpha():
                for cut in range(_MIN_JOIN_PART, len(word) - _MIN_JOIN_PART + 1):
                    after = joins.setdefault(word[:cut], {})
                    after.setdefault(word[cut], set()).add(word)
        by_pair: dict[str, list[tuple[str, tuple[P, ...]]]] = {}
        by_single: dict[str, tuple[P, ...]] = {}
        for text, payloads in by_char.items():
            if len(text) == 1:
                by_single[text] = tuple(payloads)
            else:
                by_pair.setdefault(text[:2], []).append((text, tuple(payloads)))
        # Plain dicts, typed read-only: a mapping proxy costs an extra call on
        # every lookup, and find() makes one or two per character.
        return cls(
            {k: tuple(v) for k, v in by_pair.items()},
            by_single,
            {k: tuple(v) for k, v in by_word.items()},
            {k: tuple(v) for k, v in by_prefix.items()},
            frozenset(vocabulary),
            {k: tuple(sorted(v)) for k, v in slips.items()},
            frozenset(text[0] for text in by_pair),
            {k: {c: tuple(sorted(w)) for c, w in v.items()} for k, v in joins.items()},
        )

    def correct(self, tokens: list[Token]) -> list[Token]:
        """``tokens`` with words one slip from exactly one vocabulary word replaced by it."""
        out = tokens
        memo = self._corrections
        for t in tokens:
            word = t.text
            if len(word) < _MIN_TYPO_LENGTH or word in self.vocabulary:
                continue
            if word in memo:
                meant = memo[word]
            else:
                meant = self._meant(word)
                if len(memo) >= _CORRECTIONS_KEPT:  # bounded: words come from customers
                    memo.clear()
                memo[word] = meant
            if meant is not None:
                if out is tokens:
                    out = list(tokens)
                out[t.position] = Token(meant, t.start, t.end, t.position)
        return out

    def _meant(self, word: str) -> str | None:
        """The one vocabulary word ``word`` is a slip of, if exactly one."""
        if not word.isalpha():
            return None
        candidates = set(self.slips.get(word, ()))
        for i in range(len(word)):
            candidates.update(self.slips.get(word[:i] + word[i + 1 :], ()))
        matches = [c for c in candidates if _one_slip(word, c)]
        return matches[0] if len(matches) == 1 else None

    def find(self, folded: str, tokens: list[Token]) -> list[Hit[P]]:
        """Every occurrence of every phrase in ``folded`` (words from ``tokens``)."""
        hits: list[Hit[P]] = []
        if not folded.isascii():
            by_pair, by_single, pair_starts = self.by_pair, self.by_single, self.pair_starts
            startswith = folded.startswith
            for i, ch in enumerate(folded):
                singles = by_single.get(ch)
                if singles is not None:
                    for payload in singles:
                        hits.append(Hit(ch, i, i + 1, payload))
                if ch not in pair_starts:
                    continue  # most characters begin no phrase: spare the slice
                bucket = by_pair.get(folded[i : i + 2])
                if bucket is not None:
                    for phrase, payloads in bucket:
                        if len(phrase) == 2 or startswith(phrase, i):
                            stop = i + len(phrase)
                            for payload in payloads:
                                hits.append(Hit(phrase, i, stop, payload))
        if tokens and (self.by_word or self.by_prefix):
            for t in tokens:
                candidates = self.by_word.get(t.text, ())
                prefixed = self.by_prefix.get(t.text[:_PREFIX_KEY], ()) if self.by_prefix else ()
                for words, text, payload in (*candidates, *prefixed):
                    last = _match_words(words, tokens, t.position)
                    if last is not None:
                        hits.append(Hit(text, t.start, tokens[last].end, payload))
                after = self.joins.get(t.text)
                if after is not None and t.position + 1 < len(tokens):
                    words_on = after.get(tokens[t.position + 1].text[0])
                    if words_on is not None:
                        self._joined(tokens, t, words_on, hits)
        return hits

    def _joined(
        self, tokens: list[Token], first: Token, words_on: tuple[str, ...], hits: list[Hit[P]]
    ) -> None:
        """One-word phrases typed in parts from ``first`` on ("zhong jiang")."""
        for word in words_on:
            text, last = first.text, first.position
            while len(text) < len(word) and last + 1 < len(tokens):
                last += 1
                text += tokens[last].text
                if not word.startswith(text):
                    break
            if text != word or last == first.position:
                continue
            for words, phrase, payload in self.by_word.get(word, ()):
                if len(words) == 1:
                    hits.append(Hit(phrase, first.start, tokens[last].end, payload))


def _match_words(words: tuple[str, ...], tokens: list[Token], first: int) -> int | None:
    """Index of the last token if ``words`` match the tokens from ``first``."""
    last = first + len(words) - 1
    if last >= len(tokens):
        return None
    for offset, pattern in enumerate(words):
        word = tokens[first + offset].text
        if pattern.endswith("*"):
            if not word.startswith(pattern[:-1]):
                return None
        elif word != pattern:
            return None
    return last
