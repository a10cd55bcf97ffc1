"""``python -m server.docs [--check]``: write (or check) docs/contract.md and docs/settings.md."""

from __future__ import annotations

import argparse
import sys

from server.docs.generate import ROOT, rendered


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m server.docs", description=__doc__)
    parser.add_argument(
        "--check", action="store_true", help="only report documents that are out of date"
    )
    args = parser.parse_args(argv)
    stale = []
    for path, text in rendered(ROOT).items():
        if path.is_file() and path.read_text(encoding="utf-8") == text:
            continue
        stale.append(path)
        if not args.check:
            path.write_text(text, encoding="utf-8")
            print(f"wrote {path.relative_to(ROOT)}", file=sys.stderr)
    if args.check and stale:
        names = ", ".join(str(p.relative_to(ROOT)) for p in stale)
        print(f"out of date: {names} (run: .venv/bin/python -m server.docs)", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
