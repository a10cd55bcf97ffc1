"""Media nodes as their own processes (``cloudbranch media-node``), two of them
behind one Redis and the server's database: a call goes to one, that one is
SIGKILLed mid-call, and the call resumes on the other after ``media.restart`` to
both parties. Each node records what it relays, into the shared database (index,
audit chain) and recordings folder: the recording is interrupted, the gap is
marked, and every closed segment verifies. Each node answers its probes.

Bound: about 20 s on a quiet machine (two node processes start, one call,
one failover); the deadlines below are generous for a loaded one.
"""

from __future__ import annotations

import asyncio
import os
import signal
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from redis.asyncio import Redis

from tests.api.harness import Api
from tests.api.nodes import free_port
from tests.e2e.media_client import MediaClient
from tests.e2e.test_media import _connected_call

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.slow]

NODE_SETTINGS = {
    "media_node_heartbeat_s": "0.3",
    "media_node_ttl_s": "1.5",
    "recording_segment_s": "1.0",
}


@pytest.fixture
def server_settings(redis_url: str, redis_client: Redis, tmp_path: Path) -> dict[str, Any]:
    # This server runs no media node of its own: all media goes to the node processes.
    return {
        "redis_url": redis_url,
        "media_embedded_node": False,
        "media_grace_s": 30.0,
        "recording_dir": str(tmp_path / "recordings"),
        "recording_spool_dir": str(tmp_path / "spool-api"),
        **{k: float(v) for k, v in NODE_SETTINGS.items()},
    }


@pytest.fixture
def probe_ports() -> dict[str, int]:
    return {"mn1-media": free_port(), "mn2-media": free_port()}


@pytest.fixture
async def media_nodes(
    redis_url: str,
    redis_client: Redis,
    tmp_path: Path,
    database_url: str,
    probe_ports: dict[str, int],
) -> AsyncIterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("mn1", "mn2"):
            env = {
                **os.environ,
                "CLOUDBRANCH_REDIS_URL": redis_url,
                "CLOUDBRANCH_DATABASE_URL": database_url,  # the server's: one index
                "CLOUDBRANCH_RECORDING_DIR": str(tmp_path / "recordings"),
                "CLOUDBRANCH_RECORDING_SPOOL_DIR": str(tmp_path / f"spool-{name}"),
                "CLOUDBRANCH_HOST": "127.0.0.1",
                "CLOUDBRANCH_PORT": str(probe_ports[f"{name}-media"]),
                "CLOUDBRANCH_DEV_MODE": "1",
                "CLOUDBRANCH_NODE_ID": name,
                "CLOUDBRANCH_LOG_FORMAT": "json",
                # A test pattern camera (no face, metronome clock): analysis off, as in
                # the server (tests/plugin/servers.py: default_integrity_enabled).
                "CLOUDBRANCH_INTEGRITY_ENABLED": "0",
                **{f"CLOUDBRANCH_{k.upper()}": v for k, v in NODE_SETTINGS.items()},
            }
            with (tmp_path / f"{name}.log").open("wb") as log:
                processes[f"{name}-media"] = subprocess.Popen(  # noqa: ASYNC220
                    [sys.executable, "-m", "server.cli", "media-node"],
                    env=env,
                    stdout=log,
                    stderr=subprocess.STDOUT,
                )
        async with asyncio.timeout(30):
            while len(await redis_client.smembers("cb:media:nodes")) < 2:
                for name, process in processes.items():
                    assert process.poll() is None, (tmp_path / f"{name[:3]}.log").read_text()
                await asyncio.sleep(0.1)
        yield processes
    finally:
        for process in processes.values():
            if process.poll() is None:
                process.terminate()
        for process in processes.values():
            try:
                await asyncio.to_thread(process.wait, 15)
            except subprocess.TimeoutExpired:
                process.kill()


async def _restarts(client: MediaClient, reason: str) -> int:
    return sum(
        1 for m in client.seen if m.get("type") == "media.restart" and m.get("reason") == reason
    )


async def _probe(port: int, path: str) -> tuple[int, dict[str, Any]]:
    async with (
        aiohttp.ClientSession() as session,
        session.get(f"http://127.0.0.1:{port}{path}") as response,
    ):
        return response.status, await response.json(content_type=None)


async def _recording(api: Api, call_id: str, min_segments: int) -> dict[str, Any]:
    """The call's recording once every track has ``min_segments`` segments."""
    supervisor = await api.supervisor()
    async with asyncio.timeout(30):
        while True:
            view = (await supervisor.get(f"/api/v1/calls/{call_id}/recording")).body
            tracks = {(t["party"], t["kind"]): t["segments"] for t in view["tracks"]}
            if len(tracks) == 4 and min(tracks.values()) >= min_segments:
                return dict(view)
            await asyncio.sleep(0.2)


async def test_a_killed_media_node_hands_its_call_to_another(
    api: Api,
    media_nodes: dict[str, subprocess.Popen[bytes]],
    redis_client: Redis,
    probe_ports: dict[str, int],
) -> None:
    for port in probe_ports.values():
        assert await _probe(port, "/healthz") == (200, {"status": "ok"})
        status, ready = await _probe(port, "/readyz")
        assert status == 200 and set(ready["checks"]) == {"database", "redis", "control"}, ready
    desk, customer, call_id = await _connected_call(api)
    try:
        await desk.frames(10)
        await customer.frames(10)
        first = (await redis_client.get(f"cb:media:call:{call_id}")).decode()
        assert first in media_nodes
        # The node process records: closed segments of all four tracks are indexed.
        before = await _recording(api, call_id, 1)
        assert before["state"] == "recording"
        generations = (desk.generation(), customer.generation())

        media_nodes[first].send_signal(signal.SIGKILL)
        await asyncio.to_thread(media_nodes[first].wait, 10)

        # Both parties are told to restart, and video resumes on the other node.
        await desk.frames_after(generations[0], timeout=40)
        await customer.frames_after(generations[1], timeout=40)
        await desk.frames(10)
        await customer.frames(10)
        assert await _restarts(desk, "media_node_lost") == 1
        assert await _restarts(customer, "media_node_lost") == 1
        second = (await redis_client.get(f"cb:media:call:{call_id}")).decode()
        assert second != first and second in media_nodes
        assert media_nodes[second].poll() is None
        view = await customer.party.get(f"/api/v1/calls/{call_id}")
        assert view.body["state"] == "active" and view.body["call_id"] == call_id

        # The other node goes on recording the call, after a marked gap.
        counts = {(t["party"], t["kind"]): t["segments"] for t in before["tracks"]}
        after = await _recording(api, call_id, max(counts.values()) + 1)
        assert any(m["kind"] == "node_lost" for m in after["markers"]), after["markers"]
        ended = await desk.party.post(f"/api/v1/calls/{call_id}/end", {})
        assert ended.status == 200, ended
        supervisor = await api.supervisor()
        async with asyncio.timeout(30):
            while (await supervisor.get(f"/api/v1/calls/{call_id}/recording")).body[
                "state"
            ] == "recording":
                await asyncio.sleep(0.2)
        final = (await supervisor.get(f"/api/v1/calls/{call_id}/recording")).body
        assert final["state"] == "interrupted", final
        verdict = (await supervisor.get(f"/api/v1/calls/{call_id}/recording/verify")).body
        assert verdict["ok"] is True and verdict["segments"] >= 8, verdict
    finally:
        await desk.close()
        await customer.close()
