"""The risk package stays pure: no I/O libraries, no other project packages, no async."""

from __future__ import annotations

import ast
import subprocess
import sys
from pathlib import Path

PACKAGE = Path(__file__).parents[2] / "risk"
FORBIDDEN = {
    "server",
    "signaling",
    "aiohttp",
    "asyncio",
    "sqlalchemy",
    "redis",
    "socket",
    "http",
    "urllib",
    "requests",
    "httpx",
    "logging",
    "structlog",
    "aiosqlite",
    "asyncpg",
}


def test_no_forbidden_imports_and_no_async() -> None:
    sources = sorted(PACKAGE.rglob("*.py"))
    assert len(sources) >= 8
    for path in sources:
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                roots = {alias.name.split(".")[0] for alias in node.names}
            elif isinstance(node, ast.ImportFrom):
                roots = {(node.module or "").split(".")[0]}
            else:
                roots = set()
            assert not roots & FORBIDDEN, f"{path.name} imports {roots & FORBIDDEN}"
            assert not isinstance(node, ast.AsyncFunctionDef | ast.Await), path.name


#: Loaded at run time, even indirectly (the standard library's socket and urllib
#: come in with pydantic and are not used).
NOT_LOADED = {
    "server",
    "signaling",
    "aiohttp",
    "asyncio",
    "sqlalchemy",
    "redis",
    "requests",
    "httpx",
    "structlog",
    "aiosqlite",
    "asyncpg",
    "logging",
}


def test_importing_risk_loads_no_io_library() -> None:
    code = (
        "import sys, risk; risk.RiskEngine();"
        f"bad = sorted(m for m in sys.modules if m.split('.')[0] in {sorted(NOT_LOADED)!r});"
        "print(','.join(bad))"
    )
    done = subprocess.run(
        [sys.executable, "-c", code],
        cwd=PACKAGE.parent,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    assert done.stdout.strip() == ""
