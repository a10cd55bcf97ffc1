"""The wiring rule: ``server/bootstrap.py`` passes every collaborator to a constructor,
and nothing is attached to a service afterwards.

- the container is frozen, and every service's collaborators are the container's
  own objects, fixed (tuples and read-only maps, not lists to append to);
- building the application and running its start-up and shutdown reassign no
  collaborator attribute of any service;
- the outbox's handlers and the socket routes are visible, ordered lists;
- no module of ``server/`` attaches a collaborator from outside (an AST scan), and
  ``server/hub/ws.py`` keeps no module-level registry.
"""

from __future__ import annotations

import ast
import dataclasses
import types
from pathlib import Path
from typing import Any

import pytest
from aiohttp import web

import server.hub.ws as ws
from server.app import app_of, lifecycle, socket_routes
from server.bootstrap import Container, build
from server.settings import Settings

ROOT = Path(__file__).resolve().parents[2]

# Attributes that hold a collaborator; assigning one from outside the object's own
# class (``thing.observers = ...``, ``thing.observers.append(...)``) is the wiring
# after construction this rule forbids.
COLLABORATORS = {
    "observers",
    "sweepers",
    "queue_update_hooks",
    "ticket_resolver",
    "request_keyframe",
    "integrity",
    "large_amount",
    "taps",
    "media_taps",
    "media_host",
    "media_coordinator",
    "operations",
    "recordings",
    "outbox",
    "hub",
    "sessions",
    "backend",
}
APPENDERS = {"append", "extend", "insert", "__setitem__", "update"}


def _settings(database_url: str, tmp_path: Path, **overrides: Any) -> Settings:
    return Settings(
        dev_mode=True,
        database_url=database_url,
        log_level="WARNING",
        recording_spool_dir=str(tmp_path / "spool"),
        documents_dir=str(tmp_path / "documents"),
        **overrides,
    )


def _services(c: Container) -> dict[str, object]:
    return {
        "calls": c.calls,
        "dispatcher": c.dispatcher,
        "operations": c.operations,
        "integrity": c.integrity,
        "recordings": c.recordings,
        "callbacks": c.callbacks,
        "media_coordinator": c.media_coordinator,
        "media_lifecycle": c.media_lifecycle,
        "outbox": c.outbox,
        "desk": c.desk,
        "staff_access": c.staff_access,
        "hub": c.hub,
        **({"media_host": c.media_host} if c.media_host is not None else {}),
    }


_PLAIN = (bool, int, float, str, bytes, type(None))


def _snapshot(c: Container) -> dict[tuple[str, str], int]:
    """(service, attribute) -> identity of what the attribute holds, for every
    public attribute that holds an object (flags and counters may change)."""
    return {
        (name, attribute): id(value)
        for name, service in _services(c).items()
        for attribute, value in vars(service).items()
        if not attribute.startswith("_") and not isinstance(value, _PLAIN)
    }


def test_the_container_is_frozen_and_services_hold_its_own_collaborators(
    unit_database: str, tmp_path: Path
) -> None:
    c = build(_settings(unit_database, tmp_path, media_mode="relay"))
    with pytest.raises(dataclasses.FrozenInstanceError):
        c.calls = c.calls  # type: ignore[misc]
    assert c.calls.outbox is c.outbox and c.media_coordinator.outbox is c.outbox
    assert c.media_lifecycle.store is c.media_coordinator.store
    assert c.calls.ticket_resolver == c.desk.redeem
    assert isinstance(c.calls.queue_update_hooks, tuple) and len(c.calls.queue_update_hooks) == 1
    assert isinstance(c.dispatcher.sweepers, tuple) and len(c.dispatcher.sweepers) == 3
    assert c.dispatcher.sweepers[1] == c.callbacks.sweep
    assert c.dispatcher.sweepers[2] == c.operations.expire_overdue_liveness
    assert c.operations.integrity is c.integrity
    assert c.integrity.large_amount == float(c.risk_engine.ruleset.large_amount_cny)
    # Relay mode with the embedded node: the node's taps are the analyser composed
    # with the recorder, and both reach the node for keyframes through one line.
    assert c.media_host is not None
    assert c.integrity.tap_factory is c.integrity.taps is not None
    assert c.integrity.taps.inner is c.recordings
    assert c.recordings.request_keyframe is c.integrity.taps.request_keyframe is not None
    for name, service in _services(c).items():
        for attribute, value in vars(service).items():
            public = not attribute.startswith("_")
            assert not (public and isinstance(value, list)), f"{name}.{attribute}: a list to add to"


def test_the_outbox_handlers_and_socket_routes_are_visible_ordered_lists(
    unit_database: str, tmp_path: Path
) -> None:
    c = build(_settings(unit_database, tmp_path, media_mode="direct"))
    assert c.media_host is None
    assert [h.name for h in c.outbox_handlers] == [
        "media.start",
        "recording.notice",
        "operations.redirect_transfer",
        "integrity.random_checks",
        "operations.close_pending",
        "media.close_session",
        "recording.close",
        "integrity.forget",
    ]
    routes = socket_routes(c)
    assert isinstance(routes.handlers, types.MappingProxyType)
    with pytest.raises(TypeError):
        routes.handlers["extra"] = routes.handlers["risk.warning_shown"]  # type: ignore[index]
    assert set(routes.handlers) == {
        "webrtc.offer",
        "webrtc.answer",
        "webrtc.ice",
        "media.state",
        "risk.warning_shown",
    }
    assert [h.__qualname__ for h in routes.connect_hooks] == [
        "CallSocketHooks.connected",
        "MediaCoordinator.connected",
        "socket_routes.<locals>.replay_ringing",
    ]
    assert [h.__qualname__ for h in routes.disconnect_hooks] == [
        "CallSocketHooks.disconnected",
        "MediaCoordinator.disconnected",
    ]
    with pytest.raises(ValueError, match="two handlers"):
        ws.SocketRoutes.of([("ping", routes.handlers["risk.warning_shown"])])


async def test_building_the_app_and_running_it_reassign_no_collaborator(
    unit_database: str, tmp_path: Path
) -> None:
    c = build(_settings(unit_database, tmp_path, media_mode="direct"))
    before = _snapshot(c)
    app = app_of(c)
    assert isinstance(app, web.Application)
    assert _snapshot(c) == before
    async with lifecycle(c):
        assert _snapshot(c) == before
    assert _snapshot(c) == before
    assert c.state.closed


def test_no_module_attaches_a_collaborator_after_construction() -> None:
    offences: list[str] = []
    for path in sorted((ROOT / "server").rglob("*.py")):
        tree = ast.parse(path.read_text(), filename=str(path))
        for node in ast.walk(tree):
            targets: list[ast.expr] = []
            if isinstance(node, ast.Assign | ast.AugAssign | ast.AnnAssign):
                targets = node.targets if isinstance(node, ast.Assign) else [node.target]
            for target in targets:
                if (
                    isinstance(target, ast.Attribute)
                    and target.attr in COLLABORATORS
                    and not (isinstance(target.value, ast.Name) and target.value.id == "self")
                ):
                    offences.append(f"{path.relative_to(ROOT)}:{node.lineno} sets .{target.attr}")
            if (
                isinstance(node, ast.Call)
                and isinstance(node.func, ast.Attribute)
                and node.func.attr in APPENDERS
                and isinstance(node.func.value, ast.Attribute)
                and node.func.value.attr in {"observers", "sweepers", "queue_update_hooks"}
            ):
                offences.append(f"{path.relative_to(ROOT)}:{node.lineno} adds to a hook list")
    assert offences == []


def test_the_socket_module_keeps_no_module_level_registry() -> None:
    mutable = {
        name: type(value).__name__
        for name, value in vars(ws).items()
        if isinstance(value, list | dict | set) and not name.startswith("__")
    }
    assert mutable == {}
    # Nor a key for one on the application: ws.py defines no AppKey of its own.
    tree = ast.parse((ROOT / "server" / "hub" / "ws.py").read_text())
    defined = [
        node.lineno
        for node in tree.body
        if isinstance(node, ast.Assign | ast.AnnAssign)
        and node.value is not None
        and "AppKey" in ast.unparse(node.value)
    ]
    assert defined == []
    for gone in ("CONNECT_HOOKS", "DISCONNECT_HOOKS", "WS_HANDLERS", "install_ws"):
        assert not hasattr(ws, gone)
