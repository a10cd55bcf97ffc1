"""The ``cloudbranch`` command refuses bad or missing settings with one line naming the
setting and a non-zero exit, never a traceback."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import pytest

from server.cli import main


@pytest.fixture(autouse=True)
def _clean_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    """Only what each test sets counts, not the shell the tests run in."""
    for name in list(os.environ):
        if name.startswith("CLOUDBRANCH_"):
            monkeypatch.delenv(name)


def _refusal(capsys: pytest.CaptureFixture[str], *argv: str) -> str:
    assert main(list(argv)) == 2
    captured = capsys.readouterr()
    assert captured.out == ""
    lines = captured.err.strip().splitlines()
    assert len(lines) == 1, captured.err
    return lines[0]


def test_token_outside_development_mode_says_it_needs_it(
    capsys: pytest.CaptureFixture[str],
) -> None:
    line = _refusal(capsys, "token", "customer", "C1001")
    assert line.startswith("cloudbranch token: ")
    assert "CLOUDBRANCH_DEV_MODE=1" in line


def test_token_in_development_mode_prints_a_token(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("CLOUDBRANCH_DEV_MODE", "1")
    assert main(["token", "supervisor", "SUP1"]) == 0
    token = capsys.readouterr().out.strip()
    assert token.count(".") == 2  # a JWT: header.payload.signature


@pytest.mark.parametrize(
    ("env", "named", "says"),
    [
        ({}, "CLOUDBRANCH_JWT_SECRET", "required unless CLOUDBRANCH_DEV_MODE=1"),
        ({"CLOUDBRANCH_OFFER_LEASE_S": "900"}, "CLOUDBRANCH_OFFER_LEASE_S", "less than or equal"),
        ({"CLOUDBRANCH_PORT": "eighty"}, "CLOUDBRANCH_PORT", "valid integer"),
        ({"CLOUDBRANCH_STUN_URLS": "stun:x"}, "CLOUDBRANCH_STUN_URLS", "not valid JSON"),
        ({"CLOUDBRANCH_BRANCH_TIMEZONE": "Mars/Base"}, "CLOUDBRANCH_BRANCH_TIMEZONE", "Mars"),
        ({"CLOUDBRANCH_CALLBACK_HOURS": "25:00-26:00"}, "CLOUDBRANCH_CALLBACK_HOURS", "25:00"),
        ({"CLOUDBRANCH_DATABASE_URL": "nonsense"}, "CLOUDBRANCH_DATABASE_URL", "database URL"),
        (
            {"CLOUDBRANCH_DATABASE_URL": "postgresql://u:hunter2@127.0.0.1/db"},
            "CLOUDBRANCH_DATABASE_URL",
            "async driver",
        ),
        ({"CLOUDBRANCH_SETTINGS_FILE": "/no/such.env"}, "CLOUDBRANCH_SETTINGS_FILE", "no such"),
    ],
)
def test_a_bad_setting_is_named_in_one_line(
    capsys: pytest.CaptureFixture[str],
    monkeypatch: pytest.MonkeyPatch,
    env: dict[str, str],
    named: str,
    says: str,
) -> None:
    if named != "CLOUDBRANCH_JWT_SECRET":
        monkeypatch.setenv("CLOUDBRANCH_DEV_MODE", "1")
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    line = _refusal(capsys, "migrate")
    assert line.startswith(f"cloudbranch migrate: {named}"), line
    assert says in line
    assert "hunter2" not in line  # values (passwords in URLs) are never echoed


def test_serve_names_a_missing_ruleset_and_a_bad_redis_url(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUDBRANCH_DEV_MODE", "1")
    monkeypatch.setenv("CLOUDBRANCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cb.db")
    monkeypatch.setenv("CLOUDBRANCH_RISK_RULESET_PATH", str(tmp_path / "missing.yaml"))
    assert _refusal(capsys, "serve", "--port", "0").startswith(
        "cloudbranch serve: CLOUDBRANCH_RISK_RULESET_PATH: "
    )
    monkeypatch.delenv("CLOUDBRANCH_RISK_RULESET_PATH")
    monkeypatch.setenv("CLOUDBRANCH_REDIS_URL", "http://127.0.0.1:6379")
    assert _refusal(capsys, "serve", "--port", "0").startswith(
        "cloudbranch serve: CLOUDBRANCH_REDIS_URL: "
    )


def test_seeding_an_unmigrated_database_says_to_migrate(
    capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch, tmp_path: Path
) -> None:
    monkeypatch.setenv("CLOUDBRANCH_DEV_MODE", "1")
    monkeypatch.setenv("CLOUDBRANCH_DATABASE_URL", f"sqlite+aiosqlite:///{tmp_path}/cb.db")
    line = _refusal(capsys, "seed")
    assert line.startswith("cloudbranch seed: CLOUDBRANCH_DATABASE_URL: ")
    assert "run cloudbranch migrate first" in line


def test_the_installed_command_prints_no_traceback(tmp_path: Path) -> None:
    """The real entry point, as a new user runs it: one line on stderr, exit 2."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDBRANCH_")}
    result = subprocess.run(
        [sys.executable, "-m", "server.cli", "token", "customer", "C1001"],
        env=env,
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert result.returncode == 2
    assert result.stdout == ""
    assert result.stderr.strip().splitlines() == [
        "cloudbranch token: tokens are issued here only in development mode: "
        "set CLOUDBRANCH_DEV_MODE=1"
    ]
