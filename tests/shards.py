#!/usr/bin/env python3
"""Run the test suite as a few shards side by side, each against its own services.

Usage::

    python tests/shards.py --shard "tests/api" --shard "tests/faults" -- [PYTEST ARGS...]

Each ``--shard`` names test paths that run together in one pytest process; one
more shard runs everything else under ``tests/`` (the named paths ignored), so
a new test folder is never left out. Every shard runs under
``tests/services.py`` with throwaway Redis and PostgreSQL servers of its own,
so shards share nothing but the machine. Most of the suite waits on sockets,
timers and child processes rather than on the CPU, which is why two or three
shards finish in well under the time of one run on a two-core machine.

Each shard's output goes to ``build/test-logs/shard-N.log`` and is printed
whole when the shard ends. The last line sums up every shard
(``total: N passed, N failed``); the exit code is 0 only when every shard
passed (pytest's 5, "no tests collected", counts as a failure).

Standard library only, like ``tests/services.py``.
"""

from __future__ import annotations

import argparse
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
LOG_DIR = ROOT / "build" / "test-logs"
COUNT_RE = re.compile(r"(\d+) (passed|failed|errors?|skipped|xfailed|xpassed)")


def shard_commands(shards: list[list[str]], pytest_args: list[str]) -> list[list[str]]:
    """The pytest command line of each shard, the catch-all shard last."""
    python = sys.executable
    runner = [python, str(ROOT / "tests" / "services.py"), "--", python, "-m", "pytest"]
    commands = [[*runner, *pytest_args, *paths] for paths in shards]
    ignored = [f"--ignore={path}" for paths in shards for path in paths]
    commands.append([*runner, *pytest_args, *ignored, "tests"])
    return commands


def summary_counts(log_text: str) -> dict[str, int]:
    """Counts from pytest's closing line (the last line that has any)."""
    for line in reversed(log_text.splitlines()):
        found = COUNT_RE.findall(line)
        if found and (" in " in line or line.startswith("=")):
            counts: dict[str, int] = {}
            for number, word in found:
                key = "errors" if word.startswith("error") else word
                counts[key] = counts.get(key, 0) + int(number)
            return counts
    return {}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--shard", action="append", default=[], help="space-separated paths")
    parser.add_argument("pytest_args", nargs=argparse.REMAINDER)
    args = parser.parse_args()
    pytest_args = [a for a in args.pytest_args if a != "--"]
    shards = [paths.split() for paths in args.shard if paths.strip()]

    LOG_DIR.mkdir(parents=True, exist_ok=True)
    started = time.monotonic()
    running: list[tuple[int, subprocess.Popen[bytes], Path]] = []
    for number, command in enumerate(shard_commands(shards, pytest_args), start=1):
        log_path = LOG_DIR / f"shard-{number}.log"
        with log_path.open("wb") as log_file:
            # Each shard in its own process group, so an interrupt stops its services too.
            proc = subprocess.Popen(
                command, cwd=ROOT, stdout=log_file, stderr=subprocess.STDOUT, start_new_session=True
            )
        print(f"shards: shard {number} started: {' '.join(command[5:])}", flush=True)
        running.append((number, proc, log_path))

    def forward(signum: int, _frame: object) -> None:
        for _, proc, _ in running:
            if proc.poll() is None:
                os.killpg(proc.pid, signum)

    signal.signal(signal.SIGINT, forward)
    signal.signal(signal.SIGTERM, forward)

    totals: dict[str, int] = {}
    worst = 0
    pending = list(running)
    while pending:
        for entry in list(pending):
            number, proc, log_path = entry
            code = proc.poll()
            if code is None:
                continue
            pending.remove(entry)
            text = log_path.read_text(errors="replace")
            elapsed = time.monotonic() - started
            print(f"\n===== shard {number} (exit {code}, {elapsed:.0f} s) =====", flush=True)
            sys.stdout.write(text)
            for key, value in summary_counts(text).items():
                totals[key] = totals.get(key, 0) + value
            if code != 0:
                worst = code if worst == 0 else worst
        time.sleep(0.5)

    passed, failed = totals.get("passed", 0), totals.get("failed", 0) + totals.get("errors", 0)
    extra = f", {totals['skipped']} skipped" if totals.get("skipped") else ""
    print(f"\nshards: all {len(running)} done in {time.monotonic() - started:.0f} s", flush=True)
    print(f"total: {passed} passed, {failed} failed{extra}", flush=True)
    if worst == 0 and passed == 0:
        print("shards: no test ran", file=sys.stderr)
        return 5
    return worst


if __name__ == "__main__":
    sys.exit(main())
