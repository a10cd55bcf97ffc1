"""Package boundaries and the aiortc bridge."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

import signaling
from signaling.messages import IceServer
from signaling.rtc import rtc_configuration

PACKAGE = Path(signaling.__file__).parent


def test_signaling_never_imports_server_or_risk() -> None:
    for path in PACKAGE.rglob("*.py"):
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom):
                names = [node.module or ""]
            else:
                continue
            for name in names:
                assert name.split(".")[0] not in {"server", "risk"}, f"{path}: imports {name}"


def test_importing_the_package_does_not_load_aiortc() -> None:
    code = "import sys, signaling; print('aiortc' in sys.modules, 'av' in sys.modules)"
    result = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, timeout=60
    )
    assert result.stdout.split() == ["False", "False"]


def test_public_exports_resolve() -> None:
    for name in signaling.__all__:
        assert getattr(signaling, name) is not None


def test_empty_list_never_becomes_aiortc_default_stun() -> None:
    # aiortc would use Google's public STUN server for iceServers=None.
    assert rtc_configuration([]).iceServers == []


def test_rtc_configuration_carries_urls_and_credentials() -> None:
    config = rtc_configuration(
        [
            IceServer(urls=["stun:s.example:3478"]),
            {"urls": ["turn:t.example:3478"], "username": "1:c-1", "credential": "pw"},
        ]
    )
    assert config.iceServers is not None
    stun, turn = config.iceServers
    assert stun.urls == ["stun:s.example:3478"] and stun.username is None
    assert (turn.urls, turn.username, turn.credential) == (["turn:t.example:3478"], "1:c-1", "pw")
