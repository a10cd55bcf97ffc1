"""One canonical form for a customer's words, so that spelling variants read alike.

Full-width letters and punctuation become ASCII (NFKC), case is folded, and
traditional or variant Chinese characters become simplified ones through a
generated one-to-one table (``variants.json``, see ``risk.training.variants``).
The fold keeps the text's length per character except where NFKC expands a
character, which is why every position the reader reports refers to the
folded text.
"""

from __future__ import annotations

import json
import unicodedata
from functools import cache
from importlib import resources


@cache
def _table() -> dict[int, str]:
    raw = resources.files("risk").joinpath("language/variants.json").read_text(encoding="utf-8")
    data: dict[str, str] = json.loads(raw)
    return {ord(src): dst for src, dst in data.items()}


@cache
def _variants() -> frozenset[str]:
    return frozenset(chr(code) for code in _table())


def fold(text: str) -> str:
    """``text`` in its canonical form (NFKC, casefolded, simplified characters)."""
    # Each step is skipped when it would change nothing: checking is several
    # times cheaper than NFKC or a table translation, and most statements are
    # already normalised and written in simplified characters.
    if not unicodedata.is_normalized("NFKC", text):
        text = unicodedata.normalize("NFKC", text)
    text = text.casefold()
    if text.isascii() or _variants().isdisjoint(text):
        return text
    return text.translate(_table())
