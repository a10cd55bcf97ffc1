"""Rewriting the generated blocks of a hand-written Markdown document."""

from __future__ import annotations

import re
from collections.abc import Mapping

_BLOCK = re.compile(
    r"(?P<open><!-- generated: (?P<name>[a-z0-9-]+) [^>]*-->\n)"
    r"(?P<body>.*?)"
    r"(?P<close><!-- end generated -->)",
    re.DOTALL,
)


def fill(document: str, blocks: Mapping[str, str]) -> str:
    """``document`` with each generated block's body replaced by ``blocks[name]``.

    Every block in the document must have a renderer and every renderer a block,
    so that neither a stale block nor a forgotten one goes unnoticed.
    """
    seen: list[str] = []

    def replace(match: re.Match[str]) -> str:
        name = match["name"]
        if name not in blocks:
            raise KeyError(f"no generator for the block {name!r}")
        seen.append(name)
        return match["open"] + blocks[name].rstrip("\n") + "\n" + match["close"]

    filled = _BLOCK.sub(replace, document)
    missing = sorted(set(blocks) - set(seen))
    if missing:
        raise KeyError(f"the document has no block for {missing}")
    return filled
