"""``cloudbranch simulate`` end to end: profile in, report, CSV, JSON and PNG out."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
import yaml

from server.cli import main

PNG_SIGNATURE = b"\x89PNG\r\n\x1a\n"

PROFILE = {
    "name": "small day",
    "start": "09:00",
    "handle_time": {"default": {"distribution": "exponential", "mean_s": 300}},
    "patience": {"distribution": "exponential", "mean_s": 400},
    "callbacks": {"threshold_s": 200, "accept_probability": 0.5},
    "arrivals": {"cmn": [8, 12, 10, 6], "yue": [2, 3, 3, 2]},
    "roster": [
        {"id": "S1", "dialects": {"cmn": 5}, "shift": "09:00-11:00"},
        {"id": "S2", "dialects": {"cmn": 5, "yue": 4}, "shift": "09:00-10:00"},
        {"id": "S3", "dialects": {"cmn": 4}, "shift": "09:00-11:00"},
    ],
}


def test_simulate_writes_the_report_and_the_plot(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    profile_path = tmp_path / "day.yaml"
    profile_path.write_text(yaml.safe_dump(PROFILE))
    out = tmp_path / "out"
    assert main(["simulate", str(profile_path), "--days", "3", "--out", str(out)]) == 0
    captured = capsys.readouterr()
    assert "simulate: 100%" in captured.err  # plain progress lines when not on a terminal
    assert "Cloud Branch capacity report: small day (simulated, 3 days" in captured.out
    assert (out / "report.txt").read_text() in captured.out

    # Cantonese callers after 10:00 have nobody who speaks their dialect.
    assert "no yue (Cantonese) speaker rostered 10:00-11:00" in captured.out
    report = json.loads((out / "report.json").read_text())
    assert report["days"] == 3
    assert report["warnings"] == [w for w in report["warnings"] if "yue" in w]
    yue = report["totals"]["yue"]
    assert yue["offered"] > 0 and 0 <= yue["service_level"] <= 1
    assert sum(t["callbacks"] for t in report["totals"].values()) > 0
    assert {s["specialist_id"] for s in report["specialists"]} == {"S1", "S2", "S3"}
    assert all(0 < s["occupancy"] <= 1 for s in report["specialists"])
    rows = (out / "intervals.csv").read_text().splitlines()
    assert rows[0].startswith("dialect,start,offered,answered,service_level")
    assert len(rows) == 1 + 8  # two dialects, four half hours each
    png = (out / "day.png").read_bytes()
    assert png.startswith(PNG_SIGNATURE) and len(png) > 10_000


def test_the_packaged_profile_runs(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--out", str(tmp_path), "--no-plot"]) == 0
    out = capsys.readouterr().out
    for dialect in ("Mandarin", "Shanghainese", "Cantonese"):
        assert dialect in out
    assert not (tmp_path / "day.png").exists()


def test_a_bad_profile_is_a_clear_error(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(yaml.safe_dump({**PROFILE, "priorities": {"normal": 2}}))
    assert main(["simulate", str(bad), "--out", str(tmp_path)]) == 2
    assert "add up to 1" in capsys.readouterr().err
    assert main(["simulate", str(tmp_path / "missing.yaml")]) == 2


def test_live_mode_refuses_anything_but_loopback(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["simulate", "--live", "http://10.1.2.3:8080"]) == 2
    assert "only a server on loopback" in capsys.readouterr().err
    assert main(["simulate", "--live", "http://127.0.0.1:9", "--max-calls", "100000"]) == 2
    assert "--max-calls" in capsys.readouterr().err


def test_a_terminal_gets_a_progress_bar() -> None:
    import io

    from server.simulate.cli import ProgressPrinter
    from tests.simulate.helpers import profile

    class Terminal(io.StringIO):
        def isatty(self) -> bool:
            return True

    screen = Terminal()
    printer = ProgressPrinter(screen, profile())  # 08:00-09:00
    printer.simulated(1800, 3600)
    printer.simulated(3600, 3600)
    printer.finish()
    drawn = screen.getvalue()
    assert "\r[###############...............]  50% simulated to 08:30, day 1" in drawn
    assert "\r[##############################] 100% simulated to 09:00, day 1" in drawn
    assert drawn.endswith("\n")
