"""Media through the server's media node, driven only by the public API: the
server is each party's peer, nothing is transcoded, and ``direct`` mode still
connects the parties to each other."""

from __future__ import annotations

from typing import Any

import pytest
from aiortc.sdp import SessionDescription

from server.appkeys import COMPONENTS
from tests.api.harness import Api, RunningServer
from tests.e2e.media_client import MediaClient
from tests.e2e.test_media import _connected_call

pytestmark = pytest.mark.media


def _identity(sdp: str) -> tuple[str, str]:
    """(DTLS fingerprint, ICE ufrag) of the first media section of an SDP."""
    media = SessionDescription.parse(sdp).media[0]
    return media.dtls.fingerprints[0].value, media.ice.usernameFragment


def _remote(client: MediaClient) -> str:
    assert client.peer is not None and client.peer._conn is not None
    return str(client.peer._conn.pc.remoteDescription.sdp)


def _local(client: MediaClient) -> str:
    assert client.peer is not None and client.peer._conn is not None
    return str(client.peer._conn.pc.localDescription.sdp)


async def test_the_server_is_each_partys_peer_and_decodes_nothing(
    api: Api, server: RunningServer
) -> None:
    desk, customer, call_id = await _connected_call(api)
    try:
        await desk.frames(10)
        await customer.frames(10)
        host = server.app[COMPONENTS].media_host
        assert host is not None
        bridge = host.node.bridge(call_id)
        assert bridge is not None
        app_leg, desk_leg = bridge.leg("customer"), bridge.leg("specialist")
        assert app_leg is not None and desk_leg is not None
        # The SDP each client got names the node's leg, never the other client.
        assert _identity(_remote(customer)) == _identity(app_leg.pc.localDescription.sdp)
        assert _identity(_remote(desk)) == _identity(desk_leg.pc.localDescription.sdp)
        assert _identity(_remote(customer)) != _identity(_local(desk))
        assert _identity(_remote(desk)) != _identity(_local(customer))
        stats = host.node.stats()
        assert stats.calls == 1 and stats.forwarded_frames > 40 and stats.decoded_frames == 0
        # Ending the conversation closes the call's media on the node.
        ended = await desk.party.post(f"/api/v1/calls/{call_id}/end", {})
        assert ended.status == 200, ended
        assert host.node.bridge(call_id) is None
    finally:
        await desk.close()
        await customer.close()


async def test_media_restart_schema_carries_role_and_ice_servers(api: Api) -> None:
    reply = await api.request("GET", "/api/v1/schemas/ws.json")
    assert reply.status == 200
    schema: dict[str, Any] = reply.body
    restart = next(
        model
        for model in schema["server_to_client"]["$defs"].values()
        if model.get("title") == "MediaRestart"
    )
    assert {"call_id", "role", "ice_servers", "reason"} <= set(restart["properties"])


class TestDirectMode:
    @pytest.fixture
    def server_settings(self) -> dict[str, Any]:
        return {"media_mode": "direct"}

    async def test_direct_mode_connects_the_parties_to_each_other(
        self, api: Api, server: RunningServer
    ) -> None:
        desk, customer, _call_id = await _connected_call(api)
        try:
            await desk.frames(5)
            await customer.frames(5)
            assert server.app[COMPONENTS].media_host is None
            assert _identity(_remote(customer)) == _identity(_local(desk))
            assert _identity(_remote(desk)) == _identity(_local(customer))
        finally:
            await desk.close()
            await customer.close()
