"""The pure core (the modules of the import contract "domain imports no adapter,
service or HTTP module") never awaits and never reads the clock itself.

The import rules themselves are checked by ``lint-imports`` (``make lint``); this
adds what an import graph cannot see: no ``async def``, no ``await``, and no
``time.time()`` or ``datetime.now()`` (time comes in as an argument).
"""

from __future__ import annotations

import ast
import tomllib
from pathlib import Path

ROOT = Path(__file__).parents[2]


def _domain_modules() -> list[str]:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text(encoding="utf-8"))
    contracts = config["tool"]["importlinter"]["contracts"]
    (domain,) = [c for c in contracts if c["name"].startswith("domain imports no")]
    modules: list[str] = domain["source_modules"]
    return modules


def _clock_reads(tree: ast.AST) -> list[str]:
    found = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Call) and isinstance(node.func, ast.Attribute):
            owner = node.func.value
            name = owner.id if isinstance(owner, ast.Name) else None
            if (name, node.func.attr) in {
                ("time", "time"),
                ("time", "monotonic"),
                ("datetime", "now"),
                ("datetime", "utcnow"),
                ("date", "today"),
            }:
                found.append(f"{name}.{node.func.attr}() at line {node.lineno}")
    return found


def test_the_domain_list_names_real_modules() -> None:
    modules = _domain_modules()
    assert len(modules) >= 8
    for module in modules:
        assert (ROOT / (module.replace(".", "/") + ".py")).is_file(), module


def test_domain_modules_never_await_and_never_read_the_clock() -> None:
    for module in _domain_modules():
        path = ROOT / (module.replace(".", "/") + ".py")
        tree = ast.parse(path.read_text(encoding="utf-8"))
        asynchronous = [
            node.lineno
            for node in ast.walk(tree)
            if isinstance(node, ast.AsyncFunctionDef | ast.Await | ast.AsyncFor | ast.AsyncWith)
        ]
        assert asynchronous == [], f"{module} is async at lines {asynchronous}"
        assert _clock_reads(tree) == [], f"{module} reads the clock: {_clock_reads(tree)}"
