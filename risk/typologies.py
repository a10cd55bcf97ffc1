"""Scam typologies in the customer's stated reason, found by keyword.

The keyword lists live in the ruleset (Chinese and English per typology);
this module only indexes and matches them.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from types import MappingProxyType

_WORDS = re.compile(r"[a-z0-9]+(?:'[a-z]+)?")


@dataclass(frozen=True)
class TypologyMatcher:
    """Finds scam typologies in free text.

    Latin keywords match whole words ("police" must not match inside
    "policy"); other keywords (Chinese) match anywhere. Matching is built for
    speed on short texts: a set intersection with each keyword's first
    character or first word rules most keywords out before any substring test.
    """

    #: first character -> ((keyword, typology), ...) for non-Latin keywords
    by_char: Mapping[str, tuple[tuple[str, str], ...]]
    #: first word -> ((" word word ", typology), ...) for Latin keywords
    by_word: Mapping[str, tuple[tuple[str, str], ...]]
    first_chars: frozenset[str]
    first_words: frozenset[str]

    @classmethod
    def build(cls, keywords: Mapping[str, Iterable[str]]) -> TypologyMatcher:
        """Index ``{typology: [keyword, ...]}``."""
        by_char: dict[str, list[tuple[str, str]]] = {}
        by_word: dict[str, list[tuple[str, str]]] = {}
        for name, words in keywords.items():
            for word in words:
                folded = " ".join(word.casefold().split())
                if not folded:
                    continue
                if folded.isascii():
                    tokens = _WORDS.findall(folded)
                    if tokens:
                        phrase = f" {' '.join(tokens)} "
                        by_word.setdefault(tokens[0], []).append((phrase, name))
                else:
                    by_char.setdefault(folded[0], []).append((folded, name))
        return cls(
            MappingProxyType({k: tuple(v) for k, v in by_char.items()}),
            MappingProxyType({k: tuple(v) for k, v in by_word.items()}),
            frozenset(by_char),
            frozenset(by_word),
        )

    def match(self, text: str) -> frozenset[str]:
        """The typologies whose keywords occur in ``text``."""
        folded = text.casefold()
        found: set[str] = set()
        for ch in self.first_chars.intersection(folded):
            for keyword, name in self.by_char[ch]:
                if name not in found and keyword in folded:
                    found.add(name)
        tokens = _WORDS.findall(folded)
        if tokens:
            hits = self.first_words.intersection(tokens)
            if hits:
                joined = f" {' '.join(tokens)} "
                for first in hits:
                    for phrase, name in self.by_word[first]:
                        if name not in found and phrase in joined:
                            found.add(name)
        return frozenset(found)
