"""Generate ``risk/language/variants.json``: characters folded before reading.

Traditional characters map to their simplified form (one character to one
character, from the ``zhconv`` conversion tables), so "帳戶凍結" reads as
"账户冻结"; a few variant and commonly mistyped characters are folded too.
The runtime reads only the generated JSON, so the engine has no conversion
library to load.

Usage::

    .venv/bin/python -m risk.training.variants          # rewrite the file
    .venv/bin/python -m risk.training.variants --check  # exit 1 if it is stale
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

TARGET = Path(__file__).resolve().parents[1] / "language" / "variants.json"

#: Variants that are themselves simplified characters, and frequent input-method
#: slips in the words the lexicons use (same pinyin, other character).
EXTRA = {
    "帐": "账",  # 帐户 is an accepted variant of 账户
    "徵": "征",
    "佈": "布",
    "祇": "只",
    "週": "周",
    "鉅": "巨",
    "乾": "干",
}


def generate() -> dict[str, str]:
    """The folding table: one character -> one character, sorted by key."""
    from zhconv import zhconv  # type: ignore[import-untyped]  # dev dependency, build only

    table = zhconv.getdict("zh-hans")
    folded = {
        src: dst for src, dst in table.items() if len(src) == 1 and len(dst) == 1 and src != dst
    }
    folded.update(EXTRA)
    # Fold through the variants as well: 帳 -> 帐 -> 账.
    folded = {src: EXTRA.get(dst, dst) for src, dst in folded.items()}
    return dict(sorted(folded.items()))


def render(table: dict[str, str]) -> str:
    return json.dumps(table, ensure_ascii=False, indent=0, sort_keys=True) + "\n"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--check", action="store_true", help="only check the committed file")
    args = parser.parse_args(argv)
    text = render(generate())
    if args.check:
        current = TARGET.read_text(encoding="utf-8") if TARGET.exists() else ""
        if current != text:
            print(f"{TARGET} is stale: run python -m risk.training.variants", file=sys.stderr)
            return 1
        return 0
    TARGET.write_text(text, encoding="utf-8")
    print(f"wrote {TARGET} ({len(text)} bytes)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
