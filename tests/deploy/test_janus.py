"""deploy/janus/: the configuration a Janus media sidecar runs with, checked against
what the node generates and run for real with Debian's janus: only NoSIP and the
WebSocket transport load, nothing answers without the API secret."""

from __future__ import annotations

import asyncio
import contextlib
import os
import secrets
import signal
import subprocess
from pathlib import Path

import aiohttp
import pytest

from server.media.janus.config import SECRET_PLACEHOLDER, JanusOptions, deploy_configuration
from server.media.janus.process import free_port, janus_binary

DEPLOY = Path(__file__).resolve().parents[2] / "deploy" / "janus"


def test_the_deploy_files_are_what_the_node_generates() -> None:
    expected = deploy_configuration(JanusOptions(api_secret="unused"))
    present = {p.name: p.read_text() for p in DEPLOY.glob("*.jcfg")}
    assert present == expected, "deploy/janus drifted: regenerate with deploy_configuration()"
    main = present["janus.jcfg"]
    assert f'api_secret = "{SECRET_PLACEHOLDER}"' in main
    assert "admin_secret" not in main
    websockets = present["janus.transport.websockets.jcfg"]
    assert "admin_ws = false" in websockets and 'ws_ip = "127.0.0.1"' in websockets


async def _ask(url: str, message: dict[str, object]) -> dict[str, object]:
    async with (
        aiohttp.ClientSession() as http,
        http.ws_connect(url, protocols=("janus-protocol",)) as ws,
    ):
        await ws.send_json(message)
        async with asyncio.timeout(10):
            reply: dict[str, object] = await ws.receive_json()
            return reply


@pytest.mark.slow  # starts Debian's janus; bound: about 5 s
async def test_janus_runs_the_deploy_configuration_with_nothing_else(tmp_path: Path) -> None:
    secret, port = secrets.token_urlsafe(32), free_port()
    for path in DEPLOY.glob("*.jcfg"):
        text = path.read_text().replace(SECRET_PLACEHOLDER, secret)
        text = text.replace("ws_port = 8188", f"ws_port = {port}")
        (tmp_path / path.name).write_text(text)
    with (tmp_path / "janus.log").open("wb") as log:
        process = await asyncio.create_subprocess_exec(
            janus_binary(),
            "--configs-folder",
            str(tmp_path),
            "--config",
            str(tmp_path / "janus.jcfg"),
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
    try:
        url = f"ws://127.0.0.1:{port}/"
        for _ in range(200):
            with contextlib.suppress(aiohttp.ClientError, OSError):
                info = await _ask(url, {"janus": "info", "transaction": "i"})
                break
            assert process.returncode is None, (tmp_path / "janus.log").read_text()[-800:]
            await asyncio.sleep(0.05)
        else:
            pytest.fail("janus never listened")
        assert set(info["plugins"]) == {"janus.plugin.nosip"}  # type: ignore[arg-type]
        assert set(info["transports"]) == {"janus.transport.websockets"}  # type: ignore[arg-type]
        assert info["events"] == {} and info["loggers"] == {}
        assert info["api_secret"] is True
        refused = await _ask(url, {"janus": "create", "transaction": "c"})
        assert refused["janus"] == "error"
        assert refused["error"]["code"] == 403  # type: ignore[index]
        created = await _ask(url, {"janus": "create", "transaction": "c", "apisecret": secret})
        assert created["janus"] == "success"
    finally:
        os.killpg(process.pid, signal.SIGTERM)
        await asyncio.wait_for(process.wait(), 10)


def test_the_k8s_sidecar_runs_the_deploy_configuration_with_the_secret() -> None:
    import yaml

    manifest = DEPLOY.parent / "k8s" / "media-janus.yaml"
    documents = {d["kind"]: d for d in yaml.safe_load_all(manifest.read_text())}
    present = {p.name: p.read_text() for p in DEPLOY.glob("*.jcfg")}
    assert documents["ConfigMap"]["data"] == present, "media-janus.yaml drifted from deploy/janus"
    containers = {
        c["name"]: c for c in documents["Deployment"]["spec"]["template"]["spec"]["containers"]
    }
    env = {e["name"]: e for e in containers["media"]["env"]}
    assert env["CLOUDBRANCH_MEDIA_BACKEND"]["value"] == "janus"
    assert env["CLOUDBRANCH_JANUS_URL"]["value"] == "ws://127.0.0.1:8188/"
    [secret] = containers["janus"]["env"]
    assert secret["valueFrom"]["secretKeyRef"]["key"] == "CLOUDBRANCH_JANUS_API_SECRET"
