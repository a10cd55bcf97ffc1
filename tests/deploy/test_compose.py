"""The compose file passes only settings the application reads, with valid values."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any

import pytest
import yaml

from server.settings import Settings

COMPOSE = Path(__file__).resolve().parents[2] / "deploy" / "compose.yaml"
_DEFAULTED = re.compile(r"\$\{[A-Z_]+:-([^}]*)\}")


def _services() -> dict[str, Any]:
    document = yaml.safe_load(COMPOSE.read_text())
    services: dict[str, Any] = document["services"]
    return services


def _environment(service: dict[str, Any]) -> dict[str, str]:
    env = service.get("environment", {})
    assert isinstance(env, dict), "environment must be a mapping"
    return {k: _DEFAULTED.sub(r"\1", str(v)) for k, v in env.items()}


def test_compose_runs_two_nodes_with_redis_and_postgres() -> None:
    services = _services()
    assert {"postgres", "redis", "node1", "node2", "migrate"} <= services.keys()
    for node in ("node1", "node2"):
        env = _environment(services[node])
        assert env["CLOUDBRANCH_REDIS_URL"].startswith("redis://redis:")
        assert env["CLOUDBRANCH_DATABASE_URL"].startswith("postgresql+asyncpg://")
    assert (
        _environment(services["node1"])["CLOUDBRANCH_NODE_ID"]
        != _environment(services["node2"])["CLOUDBRANCH_NODE_ID"]
    )


def test_compose_adds_a_media_node_and_coturn_with_the_shared_secret() -> None:
    services = _services()
    media = services["media1"]
    assert media["command"][:2] == ["cloudbranch", "media-node"]
    assert media["profiles"] == ["media"]  # until the application has the command
    assert _environment(media)["CLOUDBRANCH_NODE_ID"] == "media1"
    coturn = services["coturn"]
    assert "./coturn/turnserver.conf:/etc/coturn/turnserver.conf:ro" in coturn["volumes"]
    assert (COMPOSE.parent / "coturn" / "turnserver.conf").is_file()
    [secret_arg] = [a for a in coturn["command"] if a.startswith("--static-auth-secret=")]
    node_secret = services["node1"]["environment"]["CLOUDBRANCH_TURN_SECRET"]
    assert secret_arg == f"--static-auth-secret={node_secret}"


def test_every_setting_compose_passes_is_read_by_the_application(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    known = {f"CLOUDBRANCH_{name.upper()}" for name in Settings.model_fields}
    for name, service in _services().items():
        env = _environment(service)
        passed = {k for k in env if k.startswith("CLOUDBRANCH_")}
        unknown = passed - known
        assert not unknown, f"{name} passes settings nobody reads: {sorted(unknown)}"
        if passed:
            # The values must also be valid for the application's own validation,
            # read from the environment as the container reads them (lists as JSON).
            with monkeypatch.context() as patch:
                for variable in [v for v in os.environ if v.startswith("CLOUDBRANCH_")]:
                    patch.delenv(variable)
                for variable in passed:
                    patch.setenv(variable, env[variable])
                settings = Settings()
            assert not settings.dev_mode
            assert settings.redis_url is not None
            assert settings.turn_urls and settings.turn_secret is not None
