"""What every bench script prints for a target, and how it says whether it was met.

Each figure is printed with its target and ``met`` or ``missed``; a script exits
with :meth:`Verdicts.exit_code` (1 if anything was missed), and ``make bench``
runs every script to the end before it reports which ones missed.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path


class Verdicts:
    """Collects the verdicts of one script's targets."""

    def __init__(self) -> None:
        self.missed: list[str] = []
        self.checked = 0

    def check(self, label: str, figure: str, target: str, ok: bool) -> bool:
        self.checked += 1
        if not ok:
            self.missed.append(label)
        print(f"  {label}: {figure} (target {target}): {'met' if ok else 'missed'}", flush=True)
        return ok

    def exit_code(self) -> int:
        if self.missed:
            print(f"missed {len(self.missed)} of {self.checked}: {', '.join(self.missed)}")
            return 1
        print(f"all {self.checked} targets met")
        return 0


def with_services() -> None:
    """Re-run this script under ``tests/services.py`` (throwaway Redis and
    PostgreSQL) unless both are already given in the environment."""
    if os.environ.get("CLOUDBRANCH_TEST_REDIS_URL") and os.environ.get(
        "CLOUDBRANCH_TEST_POSTGRES_URL"
    ):
        return
    runner = Path(__file__).resolve().parents[1] / "tests" / "services.py"
    os.execv(sys.executable, [sys.executable, str(runner), "--", sys.executable, *sys.argv])
