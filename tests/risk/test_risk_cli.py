"""``risk.cli``: the backtest command on a JSONL file made from the scenarios."""

from __future__ import annotations

import json
import subprocess
import sys
from datetime import date, datetime
from pathlib import Path
from typing import Any

import pytest

from risk.cli import main

ROOT = Path(__file__).parents[2]
DEFAULT_YAML = (ROOT / "risk" / "rulesets" / "default.yaml").read_text(encoding="utf-8")


def _json_default(value: object) -> str:
    if isinstance(value, datetime | date):
        return value.isoformat()
    raise TypeError(type(value).__name__)


@pytest.fixture
def jsonl(tmp_path: Path, scenarios: list[dict[str, Any]]) -> Path:
    path = tmp_path / "ops.jsonl"
    lines = ["# labelled scenarios, one per line", ""]
    for s in scenarios:
        case = {k: v for k, v in s.items() if not k.startswith("_")}
        lines.append(json.dumps(case, default=_json_default, ensure_ascii=False))
    lines.append(
        '{"now": "2025-03-10T02:00:00Z", "operation": {"kind": "transfer", "amount": "x"}}'
    )
    lines.append("not json at all")
    path.write_text("\n".join(lines) + "\n", encoding="utf-8")
    return path


def test_backtest_reports_distribution_and_confusion_matrix(
    jsonl: Path, scenarios: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    assert main(["backtest", "--ruleset", "default", "--operations", str(jsonl)]) == 0
    out = capsys.readouterr().out
    scams = sum(1 for s in scenarios if s["label"] == "scam")
    legit = len(scenarios) - scams
    assert f"{len(scenarios)} operations evaluated, 2 skipped" in out
    assert "operation.amount: Input should be a valid decimal" in out
    assert "not JSON" in out
    for decision in ("allow", "warn", "review", "hold", "block"):
        assert decision in out
    assert "confusion matrix" in out
    assert f"detection (scam at review or stronger): {scams}/{scams} = 100.0%" in out
    assert f"false alarms (legit above warn): 1/{legit}" in out
    # The scam row of the matrix has nothing in allow or warn.
    scam_row = next(line for line in out.splitlines() if line.startswith("scam "))
    assert scam_row.split()[1:3] == ["0", "0"]


def test_backtest_against_another_ruleset(
    jsonl: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    strict = tmp_path / "strict.yaml"
    strict.write_text(
        DEFAULT_YAML.replace("large_amount_cny: 50000", "large_amount_cny: 1000").replace(
            "name: default", "name: strict"
        ),
        encoding="utf-8",
    )
    code = main(
        [
            "backtest",
            "--ruleset",
            str(strict),
            "--operations",
            str(jsonl),
            "--against",
            "default",
            "--show",
            "3",
        ]
    )
    assert code == 0
    out = capsys.readouterr().out
    assert "ruleset strict@" in out
    assert "against default@" in out
    changed = int(out.split("against default@")[1].split(": ")[1].split(" of ")[0])
    assert changed > 0
    assert "from \\ to" in out
    assert "-> " in out and "... and" in out


def test_unlabelled_input_has_no_confusion_matrix(
    tmp_path: Path, scenarios: list[dict[str, Any]], capsys: pytest.CaptureFixture[str]
) -> None:
    path = tmp_path / "plain.jsonl"
    case = {k: v for k, v in scenarios[0].items() if k not in ("label", "_file")}
    path.write_text(
        json.dumps(case, default=_json_default, ensure_ascii=False) + "\n", encoding="utf-8"
    )
    assert main(["backtest", "--ruleset", "default", "--operations", str(path)]) == 0
    out = capsys.readouterr().out
    assert "1 operations evaluated" in out and "confusion matrix" not in out


def test_errors_exit_with_status(
    tmp_path: Path, jsonl: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        DEFAULT_YAML.replace("when: {payee_blocked: true}", "when: {payee_blocked: 3}"),
        encoding="utf-8",
    )
    assert main(["backtest", "--ruleset", str(bad), "--operations", str(jsonl)]) == 2
    err = capsys.readouterr().err
    assert "rule 'blocked_payee'" in err and "true or false" in err
    assert main(["backtest", "--ruleset", "default", "--operations", str(tmp_path / "none")]) == 2
    empty = tmp_path / "empty.jsonl"
    empty.write_text("\n", encoding="utf-8")
    assert main(["backtest", "--ruleset", "default", "--operations", str(empty)]) == 1
    assert main(["backtest"]) == 2  # usage error from argparse
    assert main(["check", "--ruleset", "default"]) == 0
    assert "ok: default@" in capsys.readouterr().out
    assert main(["features"]) == 0
    listing = capsys.readouterr().out
    assert "amount_vs_p95" in listing and "reason_typologies" in listing


def test_python_dash_m_risk(jsonl: Path) -> None:
    done = subprocess.run(
        [
            sys.executable,
            "-m",
            "risk",
            "backtest",
            "--ruleset",
            "default",
            "--operations",
            str(jsonl),
        ],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "detection" in done.stdout
    # The report carries ids and counts only: no account numbers, no names.
    assert "6217" not in done.stdout and "王秀英" not in done.stdout
