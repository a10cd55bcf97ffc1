"""A real server with ``CLOUDBRANCH_MEDIA_BACKEND=janus``, driven only by the public
API with real aiortc clients: the server's media node drives a private Debian
Janus, and a Janus that dies mid-call is replaced and the call restarted."""

from __future__ import annotations

import asyncio
import os
import signal
from typing import Any

import pytest

from server.appkeys import COMPONENTS
from server.media.janus.node import JanusMediaNode
from tests.api.harness import Api, RunningServer
from tests.e2e.media_client import MediaClient
from tests.e2e.test_media import _connected_call

pytestmark = pytest.mark.media


@pytest.fixture
def server_settings() -> dict[str, Any]:
    # SRTP on, though Janus is on loopback (where "auto" leaves it off): the plain
    # legs here are encrypted, as they are when Janus runs on another host.
    return {"media_backend": "janus", "janus_plain_srtp": "on"}


def _janus_node(server: RunningServer) -> JanusMediaNode:
    host = server.app[COMPONENTS].media_host
    assert host is not None
    assert isinstance(host.node, JanusMediaNode)
    return host.node


def _restarts(client: MediaClient, reason: str) -> int:
    return sum(
        1 for m in client.seen if m.get("type") == "media.restart" and m.get("reason") == reason
    )


async def test_a_call_through_janus_flows_both_ways_and_ends(
    api: Api, server: RunningServer
) -> None:
    node = _janus_node(server)
    desk, customer, call_id = await _connected_call(api)
    try:
        await desk.frames(10)
        await customer.frames(10)
        janus_call = node.call(call_id)
        assert janus_call is not None and set(janus_call.legs) == {"customer", "specialist"}
        assert node.stats().forwarded_packets > 40
        # Both plain sides of both legs are SDES-SRTP, and every packet authenticated.
        assert all(leg.sockets.srtp is not None for leg in janus_call.legs.values())
        assert janus_call.rtp is not None and janus_call.rtp.rejected_packets == 0
        ended = await desk.party.post(f"/api/v1/calls/{call_id}/end", {})
        assert ended.status == 200, ended
        assert node.call(call_id) is None
    finally:
        await desk.close()
        await customer.close()


@pytest.mark.slow  # kills and restarts a Janus process; bound: about 40 s
async def test_a_killed_janus_is_replaced_and_the_call_restarted(
    api: Api, server: RunningServer
) -> None:
    node = _janus_node(server)
    desk, customer, call_id = await _connected_call(api)
    try:
        await desk.frames(10)
        await customer.frames(10)
        process = node.link.process
        assert process is not None and process.pid is not None
        first_pid = process.pid
        generations = (desk.generation(), customer.generation())

        os.kill(first_pid, signal.SIGKILL)

        # Both parties are told to restart, and video resumes through a new Janus.
        await desk.frames_after(generations[0], timeout=40)
        await customer.frames_after(generations[1], timeout=40)
        await desk.frames(10)
        await customer.frames(10)
        assert _restarts(desk, "media_node_lost") == 1
        assert _restarts(customer, "media_node_lost") == 1
        replacement = node.link.process
        assert replacement is not None and replacement.pid not in (None, first_pid)
        assert node.link.losses == 1
        view = await customer.party.get(f"/api/v1/calls/{call_id}")
        assert view.body["state"] == "active"
        await asyncio.sleep(0)
    finally:
        await desk.close()
        await customer.close()
