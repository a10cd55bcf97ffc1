"""Every stable error ``code`` the service can answer with, found in its source.

Codes are read from the code itself rather than from a list kept by hand: class
``code`` attributes of the exception tree, ``code=`` arguments where a
:class:`~server.errors.CloudBranchError` is raised (string literals or module
constants), ``error("...")`` messages of the WebSocket hub, the signaling relay's
refusal codes, the codes aiohttp's own errors are given, and the ``*_not_found``
answers the route registry gives malformed path ids.
"""

from __future__ import annotations

import ast
import importlib
import inspect
from dataclasses import dataclass
from pathlib import Path
from typing import get_args

from server.errors import CloudBranchError
from server.http.problems import status_of

PACKAGES = ("server", "signaling")
SOCKET = "socket"


@dataclass(frozen=True, order=True)
class ErrorCode:
    code: str
    answer: str  # an HTTP status, or "socket" for a WebSocket ``error`` only
    module: str


def error_codes(root: Path) -> list[ErrorCode]:
    found: set[ErrorCode] = set()
    for package in PACKAGES:
        for path in sorted((root / package).rglob("*.py")):
            if "migrations" in path.parts:
                continue
            module = ".".join(path.relative_to(root).with_suffix("").parts)
            module = module.removesuffix(".__init__")
            found.update(_codes_in(module, path))
    found.update(_fixed_codes())
    return _one_row_per_answer(found)


def _one_row_per_answer(found: set[ErrorCode]) -> list[ErrorCode]:
    """One row per (code, answer), naming the modules that raise it."""
    modules: dict[tuple[str, str], set[str]] = {}
    for item in found:
        modules.setdefault((item.code, item.answer), set()).add(item.module)
    return sorted(ErrorCode(c, a, ", ".join(sorted(m))) for (c, a), m in modules.items())


def _codes_in(module_name: str, path: Path) -> set[ErrorCode]:
    tree = ast.parse(path.read_text(encoding="utf-8"))
    module = importlib.import_module(module_name)
    constants = {
        target.id: node.value.value
        for node in tree.body
        if isinstance(node, ast.Assign)
        and isinstance(node.value, ast.Constant)
        and isinstance(node.value.value, str)
        for target in node.targets
        if isinstance(target, ast.Name)
    }
    found: set[ErrorCode] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ClassDef):
            cls = getattr(module, node.name, None)
            if inspect.isclass(cls) and issubclass(cls, CloudBranchError) and "code" in vars(cls):
                found.add(ErrorCode(cls.code, str(status_of(cls)), module_name))
        elif isinstance(node, ast.Call):
            found.update(_codes_of_call(node, module, module_name, constants))
    return found


def _codes_of_call(
    node: ast.Call, module: object, module_name: str, constants: dict[str, str]
) -> set[ErrorCode]:
    name = node.func.id if isinstance(node.func, ast.Name) else None
    target = getattr(module, name, None) if name else None
    if target is None:
        return set()
    from server.hub.messages import error as socket_error

    if target is socket_error and node.args and isinstance(node.args[0], ast.Constant):
        return {ErrorCode(str(node.args[0].value), SOCKET, module_name)}
    if not _is_problem_class(target):
        return set()
    for keyword in node.keywords:
        if keyword.arg != "code":
            continue
        value = keyword.value
        if isinstance(value, ast.Constant) and isinstance(value.value, str):
            return {ErrorCode(value.value, str(status_of(target)), module_name)}
        if isinstance(value, ast.Name) and value.id in constants:
            return {ErrorCode(constants[value.id], str(status_of(target)), module_name)}
    return set()


def _is_problem_class(obj: object) -> bool:
    return inspect.isclass(obj) and issubclass(obj, CloudBranchError)


def _fixed_codes() -> set[ErrorCode]:
    from server.http.problems import _HTTP_CODES
    from server.http.registry import registry
    from signaling.relay import RelayRefusalCode

    found = {
        ErrorCode(code, str(status), "server.http.problems") for status, code in _HTTP_CODES.items()
    }
    found.add(ErrorCode("internal_error", "500", "server.http.problems"))
    found.update(ErrorCode(code, SOCKET, "signaling.relay") for code in get_args(RelayRefusalCode))
    for endpoint in registry.endpoints:
        if endpoint.invalid_id is not None:
            continue
        for part in endpoint.path.split("/"):
            if part.startswith("{") and part.endswith("_id}"):
                code = part[1:-1].removesuffix("_id") + "_not_found"
                found.add(ErrorCode(code, "404", "server.http.registry"))
    return found
