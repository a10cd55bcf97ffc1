"""``cloudbranch risk ...`` / ``python -m risk ...``: offline tools for rulesets.

``backtest --ruleset FILE --operations FILE.jsonl [--against OTHER] [--show N]``
evaluates every line of the JSONL file with the ruleset and prints the
decision distribution; with labelled lines, the confusion matrix, detection
(scams decided review or stronger) and false alarms (legitimate operations
decided above warn); with ``--against``, how many decisions differ and how.
``FILE`` may be ``default`` for the packaged ruleset.

``check --ruleset FILE`` validates a ruleset and prints its version.

``features`` lists the features rule conditions can test, with their kinds.

JSONL format: one JSON object per line, a *case* as documented in
``risk.codec`` (keys ``now``, ``operation``, ``profile``, ``session``,
``lists``, and optionally ``id``, ``label`` = ``"scam"``/``"legit"``,
``description``). Blank lines and lines starting with ``#`` are skipped;
a line that cannot be decoded is reported by number and skipped.

Exit status: 0 on success, 1 if no line could be evaluated, 2 for usage
errors, an invalid ruleset or an unreadable file. Output holds ids and counts
only, never account numbers or names.
"""

from __future__ import annotations

import argparse
import json
import sys
from collections import Counter
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TextIO

from risk.codec import Case, CaseError, decode_case
from risk.engine import RiskEngine
from risk.features import FEATURES
from risk.model import Decision
from risk.ruleset import Ruleset, RulesetError, load_default_ruleset, load_ruleset

DECISIONS = tuple(Decision)


@dataclass
class BacktestReport:
    """Counts from one backtest run."""

    ruleset_version: str
    against_version: str | None = None
    evaluated: int = 0
    skipped: list[tuple[int, str]] = field(default_factory=list)
    distribution: Counter[Decision] = field(default_factory=Counter)
    confusion: dict[str, Counter[Decision]] = field(
        default_factory=lambda: {"scam": Counter(), "legit": Counter()}
    )
    transitions: Counter[tuple[Decision, Decision]] = field(default_factory=Counter)
    changed: list[tuple[str, Decision, Decision]] = field(default_factory=list)

    @property
    def detection(self) -> tuple[int, int]:
        """(scams decided review or stronger, scams)."""
        row = self.confusion["scam"]
        return sum(n for d, n in row.items() if d >= Decision.REVIEW), sum(row.values())

    @property
    def false_alarms(self) -> tuple[int, int]:
        """(legitimate cases decided above warn, legitimate cases)."""
        row = self.confusion["legit"]
        return sum(n for d, n in row.items() if d > Decision.WARN), sum(row.values())


def read_cases(lines: Iterable[str]) -> Iterable[tuple[int, Case | str]]:
    """Yield (line number, case) or (line number, error text) per non-blank line."""
    for number, line in enumerate(lines, start=1):
        text = line.strip()
        if not text or text.startswith("#"):
            continue
        try:
            yield number, decode_case(json.loads(text))
        except json.JSONDecodeError as exc:
            yield number, f"not JSON ({exc.msg})"
        except CaseError as exc:
            yield number, str(exc)


def backtest(
    lines: Iterable[str], ruleset: Ruleset, against: Ruleset | None = None
) -> BacktestReport:
    """Evaluate every case with ``ruleset`` (and ``against``) and count the outcomes."""
    engine = RiskEngine(ruleset)
    other = RiskEngine(against) if against is not None else None
    report = BacktestReport(ruleset.version, against.version if against else None)
    for number, case in read_cases(lines):
        if isinstance(case, str):
            report.skipped.append((number, case))
            continue
        args = (case.operation, case.profile, case.session, case.lists, case.now)
        decision = engine.evaluate(*args).decision
        report.evaluated += 1
        report.distribution[decision] += 1
        if case.label is not None:
            report.confusion[case.label][decision] += 1
        if other is not None:
            previous = other.evaluate(*args).decision
            report.transitions[(previous, decision)] += 1
            if previous != decision:
                report.changed.append((case.id or f"line {number}", previous, decision))
    return report


def _pct(n: int, total: int) -> str:
    return f"{100.0 * n / total:.1f}%" if total else "n/a"


def print_report(report: BacktestReport, out: TextIO, show: int = 20) -> None:
    """Human-readable report."""
    w = out.write
    w(f"ruleset {report.ruleset_version}: {report.evaluated} operations evaluated")
    w(f", {len(report.skipped)} skipped\n" if report.skipped else "\n")
    for number, problem in report.skipped[:show]:
        w(f"  skipped line {number}: {problem}\n")
    w("\ndecision   count   share\n")
    for d in DECISIONS:
        n = report.distribution[d]
        w(f"{d.value:<8} {n:>7} {_pct(n, report.evaluated):>7}\n")

    labelled = sum(sum(row.values()) for row in report.confusion.values())
    if labelled:
        w("\nconfusion matrix (rows: label, columns: decision)\n")
        w("label   " + "".join(f"{d.value:>8}" for d in DECISIONS) + "\n")
        for label, row in report.confusion.items():
            w(f"{label:<8}" + "".join(f"{row[d]:>8}" for d in DECISIONS) + "\n")
        hit, scams = report.detection
        fa, legit = report.false_alarms
        w(f"detection (scam at review or stronger): {hit}/{scams} = {_pct(hit, scams)}\n")
        w(f"false alarms (legit above warn): {fa}/{legit} = {_pct(fa, legit)}\n")

    if report.against_version is not None:
        w(
            f"\nagainst {report.against_version}: {len(report.changed)} of "
            f"{report.evaluated} decisions differ\n"
        )
        w("from \\ to " + "".join(f"{d.value:>8}" for d in DECISIONS) + "\n")
        for src in DECISIONS:
            w(
                f"{src.value:<10}"
                + "".join(f"{report.transitions[(src, dst)]:>8}" for dst in DECISIONS)
                + "\n"
            )
        for case_id, before, after in report.changed[:show]:
            w(f"  {case_id}: {before.value} -> {after.value}\n")
        if len(report.changed) > show:
            w(f"  ... and {len(report.changed) - show} more\n")


def _load(source: str) -> Ruleset:
    return load_default_ruleset() if source == "default" else load_ruleset(Path(source))


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="cloudbranch risk", description="Risk ruleset tools.")
    sub = parser.add_subparsers(dest="command", required=True)
    bt = sub.add_parser("backtest", help="evaluate a JSONL file of operations")
    bt.add_argument("--ruleset", required=True, help="ruleset YAML file, or 'default'")
    bt.add_argument("--operations", required=True, help="JSONL file of cases")
    bt.add_argument("--against", help="another ruleset to compare decisions with")
    bt.add_argument("--show", type=int, default=20, help="how many skipped/changed lines to list")
    ck = sub.add_parser("check", help="validate a ruleset and print its version")
    ck.add_argument("--ruleset", required=True, help="ruleset YAML file, or 'default'")
    sub.add_parser("features", help="list the features rule conditions can test")
    return parser


def main(argv: Sequence[str]) -> int:
    """Run the command in ``argv`` (without the program name); return the exit status."""
    try:
        args = _parser().parse_args(list(argv))
    except SystemExit as exc:  # argparse has already printed the usage message
        return int(exc.code) if isinstance(exc.code, int) else 2
    out, err = sys.stdout, sys.stderr
    if args.command == "features":
        for name, feature in sorted(FEATURES.items()):
            out.write(f"{name:<30} {feature.kind:<7} {feature.doc}\n")
        return 0
    try:
        ruleset = _load(args.ruleset)
        against = _load(args.against) if getattr(args, "against", None) else None
    except RulesetError as exc:
        err.write(f"error: {exc}\n")
        return 2
    if args.command == "check":
        out.write(f"ok: {ruleset.version} ({len(ruleset.rules)} rules)\n")
        return 0
    try:
        with open(args.operations, encoding="utf-8") as lines:
            report = backtest(lines, ruleset, against)
    except OSError as exc:
        err.write(f"error: cannot read {args.operations}: {exc.strerror}\n")
        return 2
    print_report(report, out, show=args.show)
    return 0 if report.evaluated else 1


if __name__ == "__main__":  # pragma: no cover
    raise SystemExit(main(sys.argv[1:]))
