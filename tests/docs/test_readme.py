"""The README's walk-through, pasted as written, against a server started by `make run`.

Only blocks marked ``<!-- readme-test: NAME -->`` run, in README order, in one bash
shell (variables carry from block to block, as in a reader's terminal), from a
directory laid out like the clone's root. A block ``NAME output`` is what block
``NAME`` must print, line for line, ``...`` standing for anything. The server is
``make run`` itself (dev mode, migrate, seed, serve) on a free port, with its SQLite
file under a temporary directory; the README's ``B=http://127.0.0.1:8080`` lines are
pointed at that port, and no other ``8080`` may remain in the blocks that run.

Bound: about 20 s on an idle machine (most of it migrate and seed); 180 s at most.
"""

from __future__ import annotations

import json
import os
import re
import signal
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter
from dataclasses import dataclass
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]
README = ROOT / "README.md"
DEFAULT_BASE = "http://127.0.0.1:8080"
# The secret the README's redirect walk-through tells the server to run with.
REDIRECT_SECRET = "demo-redirect-secret"
WALK_THROUGH = ["first-call", "desk-example", "desk", "supervisor", "redirect"]

_MARKED = re.compile(
    r"<!-- readme-test: (?P<name>[a-z-]+)(?P<output> output)?(?: (?P<file>\S+))? -->\n"
    r"```(?P<lang>\w+)\n(?P<body>.*?)^```",
    re.DOTALL | re.MULTILINE,
)


@dataclass
class Block:
    name: str
    lang: str
    body: str
    file: str | None


def marked_blocks(readme: str) -> tuple[list[Block], dict[str, str]]:
    """The marked blocks in README order, and the expected outputs by block name."""
    blocks: list[Block] = []
    outputs: dict[str, str] = {}
    for match in _MARKED.finditer(readme):
        if match["output"]:
            outputs[match["name"]] = match["body"]
        else:
            blocks.append(Block(match["name"], match["lang"], match["body"], match["file"]))
    return blocks, outputs


def matches(pattern: str, line: str) -> bool:
    regex = ".*".join(re.escape(part) for part in pattern.split("..."))
    return re.fullmatch(regex, line) is not None


def assert_prints(name: str, expected: str, printed: str) -> None:
    want = expected.strip("\n").splitlines()
    got = [line for line in printed.splitlines() if line.strip()]
    assert len(got) == len(want), (
        f"{name} printed {len(got)} lines, README shows {len(want)}:\n{printed}"
    )
    for pattern, line in zip(want, got, strict=True):
        assert matches(pattern, line), (
            f"{name}: README shows\n  {pattern}\nbut it printed\n  {line}"
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port: int = s.getsockname()[1]
        return port


def _wait_ready(base: str, process: subprocess.Popen[bytes], log: Path, timeout: float) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if process.poll() is not None:
            raise AssertionError(f"make run exited early:\n{log.read_text(errors='replace')}")
        try:
            with urllib.request.urlopen(base + "/readyz", timeout=2) as reply:
                if reply.status == 200:
                    return
        except OSError:
            pass
        time.sleep(0.2)
    raise AssertionError(f"make run not ready in {timeout} s:\n{log.read_text(errors='replace')}")


@pytest.fixture
def make_run(tmp_path: Path) -> object:
    """``make run`` on a free port, SQLite under tmp_path; yields the base URL."""
    venv = Path(sys.prefix)
    assert venv != Path(sys.base_prefix), "the tests must run in the project's virtualenv"
    assert (venv / "bin" / "cloudbranch").exists(), f"no cloudbranch in {venv}/bin"
    port = _free_port()
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDBRANCH_")}
    env["CLOUDBRANCH_DATABASE_URL"] = f"sqlite+aiosqlite:///{tmp_path}/server/cloudbranch.db"
    env["CLOUDBRANCH_REDIRECT_SECRET"] = REDIRECT_SECRET
    log = tmp_path / "make-run.log"
    with log.open("wb") as out:
        process = subprocess.Popen(
            # The virtualenv running the tests is the one make uses; its runtime
            # install is taken as done (-o), so the test never runs pip.
            [
                "make",
                "--no-print-directory",
                "-C",
                str(ROOT),
                "run",
                f"PORT={port}",
                f"VENV={venv}",
                "-o",
                f"{venv}/.installed-runtime",
            ],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    base = f"http://127.0.0.1:{port}"
    try:
        _wait_ready(base, process, log, timeout=120)
        yield base
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        try:
            process.wait(timeout=20)
        except subprocess.TimeoutExpired:
            os.killpg(process.pid, signal.SIGKILL)
            process.wait()


def test_only_the_walk_through_is_marked_and_the_desk_snippet_is_the_committed_file() -> None:
    blocks, outputs = marked_blocks(README.read_text(encoding="utf-8"))
    assert [b.name for b in blocks] == WALK_THROUGH
    assert set(outputs) <= {b.name for b in blocks}
    (example,) = [b for b in blocks if b.file]
    assert example.file is not None
    assert example.body == (ROOT / example.file).read_text(encoding="utf-8")


@pytest.mark.slow
def test_the_walk_through_works_as_pasted(make_run: str, tmp_path: Path) -> None:
    base = make_run
    blocks, outputs = marked_blocks(README.read_text(encoding="utf-8"))
    # A directory laid out like the clone's root, so files the blocks write
    # (redirect.json) land here and not in the repository.
    clone = tmp_path / "clone"
    clone.mkdir()
    (clone / ".venv").symlink_to(Path(sys.prefix))
    (clone / "docs").symlink_to(ROOT / "docs")
    out = tmp_path / "out"
    out.mkdir()

    script = ["set -euo pipefail"]
    for block in blocks:
        if block.lang != "sh":
            continue
        body = block.body.replace(f"B={DEFAULT_BASE}\n", f"B={base}\n")
        commands = [line for line in body.splitlines() if not line.lstrip().startswith("#")]
        assert not any("8080" in line for line in commands), f"{block.name}: URLs go through $B"
        # A group with a redirection runs in this shell: variables carry on.
        script.append(f"{{\n{body}}} > {out}/{block.name}.out 2> {out}/{block.name}.err")
    # The redirect walk-through says: run the printed curl.
    script.append(f'bash -c "$(tail -n 1 {out}/redirect.out)" > {out}/redirect-curl.out')
    env = {k: v for k, v in os.environ.items() if not k.startswith("CLOUDBRANCH_")}
    result = subprocess.run(
        ["bash", "-c", "\n".join(script)],
        cwd=clone,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    printed = {p.stem: p.read_text() for p in out.glob("*.out")}
    errors = {p.stem: p.read_text() for p in out.glob("*.err") if p.read_text()}
    assert result.returncode == 0, f"{result.stderr}\nprinted: {printed}\nerrors: {errors}"
    assert not errors, errors

    for name, expected in outputs.items():
        assert_prints(name, expected, printed[name])

    # What the README's words promise beyond the shown lines.
    call = json.loads(printed["first-call"])
    assert call["state"] == "queued" and call["position"] == 1
    stats_line, specialists_line = printed["supervisor"].splitlines()[:2]
    stats, specialists = json.loads(stats_line), json.loads(specialists_line)
    assert len(specialists) == 10
    assert stats["specialists"] == {
        state: Counter(s["state"] for s in specialists).get(state, 0)
        for state in stats["specialists"]
    }
    headers = printed["redirect"].splitlines()
    assert re.fullmatch(r"X-CB-Timestamp: \d+", headers[0])
    assert re.fullmatch(r"X-CB-Signature: sha256=[0-9a-f]{64}", headers[1])
    assert headers[-1].startswith(f"curl -sS -X POST {base}/api/v1/redirects ")
    redirect = json.loads(printed["redirect-curl"])
    assert redirect["deep_link"] == f"cloudbranch://call?ticket={redirect['ticket']}"
    assert redirect["expires_at"].endswith("Z")
