"""Video integrity of a call relayed by a media node in its own process
(``cloudbranch media-node``): the node analyses the customer's video and the
server answers for it as for its own node's calls.

A real server (no media node of its own) and a real node process behind one
Redis and the server's database, real aiortc parties, the customer's camera a
:class:`~tests.integrity.sources.SyntheticCamera`. Checked on the server side:
the status on ``GET .../integrity``, the desk's ``video.integrity``, the risk
input, a liveness challenge verified from the node's samples, the audit entries
and recording markers the node wrote, and that a server which stopped reading
catches up on what it missed.

Bound: about 40 s on a quiet machine (a node process and its analysis worker
start, one call with a frozen spell and a challenge); the deadlines are generous.
"""

from __future__ import annotations

import asyncio
import itertools
import os
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import pytest
from redis.asyncio import Redis
from sqlalchemy import select

from server.appkeys import COMPONENTS, INTEGRITY
from server.db.banking import AuditEntry
from server.integrity.remote import RemoteIntegrity
from tests.api.harness import Api, RunningServer
from tests.api.nodes import free_port
from tests.integrity.sources import SyntheticCamera, follow
from tests.integrity.test_integrity_api import TIMEOUT_S, _call, _status, _until

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.slow, pytest.mark.timeout(300)]

NODE_SETTINGS = {"media_node_heartbeat_s": "0.3", "media_node_ttl_s": "1.5"}


@pytest.fixture
def server_settings(redis_url: str, redis_client: Redis, tmp_path: Path) -> dict[str, Any]:
    # No media node in the server: the call's media and its analysis are the node process's.
    return {
        "redis_url": redis_url,
        "media_embedded_node": False,
        "media_grace_s": 30.0,
        "recording_dir": str(tmp_path / "recordings"),
        "recording_spool_dir": str(tmp_path / "spool-api"),
        **{k: float(v) for k, v in NODE_SETTINGS.items()},
    }


@pytest.fixture
async def media_node(
    redis_url: str, redis_client: Redis, tmp_path: Path, database_url: str
) -> AsyncIterator[subprocess.Popen[bytes]]:
    env = {
        **os.environ,
        "CLOUDBRANCH_REDIS_URL": redis_url,
        "CLOUDBRANCH_DATABASE_URL": database_url,  # the server's: one audit chain
        "CLOUDBRANCH_RECORDING_DIR": str(tmp_path / "recordings"),
        "CLOUDBRANCH_RECORDING_SPOOL_DIR": str(tmp_path / "spool-node"),
        "CLOUDBRANCH_HOST": "127.0.0.1",
        "CLOUDBRANCH_PORT": str(free_port()),
        "CLOUDBRANCH_DEV_MODE": "1",
        "CLOUDBRANCH_NODE_ID": "mn1",
        "CLOUDBRANCH_LOG_FORMAT": "json",
        "CLOUDBRANCH_INTEGRITY_ENABLED": "1",
        **{f"CLOUDBRANCH_{k.upper()}": v for k, v in NODE_SETTINGS.items()},
    }
    log_path = tmp_path / "mn1.log"
    with log_path.open("wb") as log:
        process = subprocess.Popen(  # noqa: ASYNC220
            [sys.executable, "-m", "server.cli", "media-node"],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
    try:
        async with asyncio.timeout(30):
            while not await redis_client.smembers("cb:media:nodes"):
                assert process.poll() is None, log_path.read_text()
                await asyncio.sleep(0.1)
        yield process
    finally:
        if process.poll() is None:
            process.terminate()
        try:
            await asyncio.to_thread(process.wait, 20)
        except subprocess.TimeoutExpired:
            process.kill()


async def test_a_node_process_analyses_its_calls_for_the_server(
    api: Api,
    server: RunningServer,
    media_node: subprocess.Popen[bytes],
    redis_client: Redis,
) -> None:
    camera = SyntheticCamera(faces=1, seed=9)
    desk, customer, call_id = await _call(api, camera)
    service = server.app[INTEGRITY]
    assert service.taps is not None
    remote = service.taps.remote
    assert isinstance(remote, RemoteIntegrity)
    try:
        assert (await redis_client.get(f"cb:media:call:{call_id}")).decode() == "mn1-media"
        body = await _status(desk, call_id, "ok")
        assert body["signals"] == []
        assert call_id not in service.taps.calls  # not analysed here: by the node process

        # A liveness challenge is verified here, from the samples the node published.
        challenge_id = service.challenge(call_id, why="test")
        assert challenge_id is not None
        challenge = await customer.expect("liveness.challenge", timeout=TIMEOUT_S)
        assert challenge["challenge_id"] == challenge_id
        await follow(camera, challenge)
        result = await desk.expect("liveness.result", timeout=TIMEOUT_S, challenge_id=challenge_id)
        assert result["passed"] is True, result

        camera.set_mode("frozen")
        notice = await desk.expect("video.integrity", timeout=TIMEOUT_S, status="suspect")
        assert notice["call_id"] == call_id
        assert "video_frozen" in {s["code"] for s in notice["signals"]}
        body = await _status(desk, call_id, "suspect")
        assert "video_frozen" in {s["code"] for s in body["signals"]}
        given = service.risk_input(call_id)
        assert given is not None and given.status == "suspect" and "video_frozen" in given.signals
        assert given.liveness == "passed"

        # The server stops reading (as when cut off from Redis); the call goes live
        # again meanwhile; reading again, it catches up from where it stopped.
        await remote.stop()
        applied = remote.applied
        camera.set_mode("live")
        await asyncio.sleep(6.0)
        assert remote.state(call_id) is not None
        assert remote.state(call_id).status == "suspect"  # type: ignore[union-attr]
        await remote.start()
        back = await desk.expect("video.integrity", timeout=TIMEOUT_S, status="ok")
        assert remote.applied > applied
        frozen = next(s for s in back["signals"] if s["code"] == "video_frozen")
        assert "until" in frozen
        # Each change reached the desk once (no server told it twice).
        changes = [
            (m["status"], sorted(s["code"] for s in m["signals"] if "until" not in s))
            for m in desk.seen
            if m["type"] == "video.integrity"
        ]
        assert all(a != b for a, b in itertools.pairwise(changes)), changes

        # The node wrote each change into the audit chain and the recording.
        sessions = server.app[COMPONENTS].sessions

        async def audited() -> set[str]:
            async with sessions() as session:
                rows = (
                    await session.execute(
                        select(AuditEntry).where(AuditEntry.kind == "integrity.changed")
                    )
                ).scalars()
                found = {r.data["status"] for r in rows if r.data.get("call_id") == call_id}
            return found if {"ok", "suspect"} <= found else set()

        assert await _until(audited)
        supervisor = await api.supervisor()
        assert (await supervisor.get("/api/v1/audit/verify")).body["ok"] is True

        async def markers() -> list[str]:
            reply = await supervisor.get(f"/api/v1/calls/{call_id}/recording")
            kinds = [m["kind"] for m in reply.body["markers"]]
            return kinds if {"integrity_ok", "integrity_suspect"} <= set(kinds) else []

        assert await _until(markers)
    finally:
        await desk.close()
        await customer.close()
