"""Media nodes as their own processes (``cloudbranch media-node``), two of them
behind one Redis: a call goes to one, that one is SIGKILLed mid-call, and the
call resumes on the other after ``media.restart`` to both parties.

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

import pytest
from redis.asyncio import Redis

from tests.api.harness import Api
from tests.e2e.media_client import MediaClient
from tests.e2e.test_media import _connected_call

pytestmark = [pytest.mark.media, pytest.mark.redis, pytest.mark.slow]

NODE_SETTINGS = {"media_node_heartbeat_s": "0.3", "media_node_ttl_s": "1.5"}


@pytest.fixture
def server_settings(redis_url: str, redis_client: Redis) -> dict[str, Any]:
    # This server runs no media node of its own: all media goes to the node processes.
    return {
        "redis_url": redis_url,
        "media_embedded_node": False,
        "media_grace_s": 30.0,
        **{k: float(v) for k, v in NODE_SETTINGS.items()},
    }


@pytest.fixture
async def media_nodes(
    redis_url: str, redis_client: Redis, tmp_path: Path
) -> AsyncIterator[dict[str, subprocess.Popen[bytes]]]:
    processes: dict[str, subprocess.Popen[bytes]] = {}
    try:
        for name in ("mn1", "mn2"):
            env = {
                **os.environ,
                "CLOUDBRANCH_REDIS_URL": redis_url,
                "CLOUDBRANCH_DEV_MODE": "1",
                "CLOUDBRANCH_NODE_ID": name,
                "CLOUDBRANCH_LOG_FORMAT": "json",
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


async def test_a_killed_media_node_hands_its_call_to_another(
    api: Api, media_nodes: dict[str, subprocess.Popen[bytes]], redis_client: Redis
) -> None:
    desk, customer, call_id = await _connected_call(api)
    try:
        await desk.frames(10)
        await customer.frames(10)
        first = (await redis_client.get(f"cb:media:call:{call_id}")).decode()
        assert first in media_nodes
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
    finally:
        await desk.close()
        await customer.close()
