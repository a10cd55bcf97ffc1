"""Media through the server's media node, driven only by the public API: the
server is each party's peer, nothing is transcoded, and ``direct`` mode still
connects the parties to each other."""

from __future__ import annotations

import asyncio
from collections.abc import Callable
from typing import Any, TypeVar

import pytest
from aiortc.sdp import SessionDescription

from server.appkeys import COMPONENTS
from server.media.store import MediaRecord, MediaStore
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
        assert stats.calls == 1 and stats.forwarded_packets > 40 and stats.decoded_frames == 0
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


T = TypeVar("T")


async def test_the_apps_answer_may_overtake_the_desks_offer_step(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The node answers the desk's offer by offering the app at once, so the app's
    answer can arrive while the server is still busy with the desk's offer (here,
    every media-session write is slow, as on a loaded database). The answer must
    find the offer counted, at the start and after a restart."""
    change = MediaStore.change

    async def slow_change(self: MediaStore, call_id: str, step: Callable[[MediaRecord], T]) -> T:
        await asyncio.sleep(0.3)
        return await change(self, call_id, step)

    monkeypatch.setattr(MediaStore, "change", slow_change)
    desk, customer, _ = await _connected_call(api, "C1003")
    try:
        await desk.frames(5)
        await customer.frames(5)
        back = MediaClient(customer.party)
        await back.connect()  # a new socket: media.restart for both
        await customer.drop()
        await back.frames(5)
        await desk.frames(5)
        assert not desk.errors and not customer.errors and not back.errors, (
            desk.errors + customer.errors + back.errors
        )
        await back.close()
    finally:
        await desk.close()
        await customer.close()


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


NO_ICE_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\n"
    "a=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
)


async def test_an_offer_the_node_cannot_use_gets_an_error(api: Api) -> None:
    """SDP that passes the wire checks but has no ICE/DTLS, or no codec the node can
    forward, is refused with an error; the node does not build anything for it."""
    desk_party = await api.specialist("chen.li")
    desk = MediaClient(desk_party)
    await desk.connect()
    assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
    customer = MediaClient(await api.customer("C1001"))
    await customer.connect()
    try:
        call_id = (await customer.party.post("/api/v1/calls", {})).body["call_id"]
        offer = await desk.expect("call.offered", call_id=call_id)
        assert desk.peer is not None
        desk.peer.role = "answerer"  # keep the desk's peer from offering on media.start
        accepted = await desk_party.post(
            f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
        )
        assert accepted.status == 200, accepted
        await desk.send_raw({"type": "webrtc.offer", "call_id": call_id, "sdp": NO_ICE_OFFER})
        error = await desk.expect("error", timeout=10)
        assert error["code"] == "invalid_sdp", error
        vp9_only = _local_offer_with_video_codec("VP9")
        await desk.send_raw({"type": "webrtc.offer", "call_id": call_id, "sdp": vp9_only})
        error = await desk.expect("error", timeout=10)
        assert error["code"] == "no_common_codec", error
        assert not any(m.get("type") == "webrtc.offer" for m in customer.seen)
        # Refused offers do not count: the desk's next, good offer connects.
        desk.peer.role = "offerer"
        start = {"type": "media.start", "call_id": call_id, "role": "offerer", "ice_servers": []}
        await desk.peer.handle(start)
        await desk.frames(5)
        await customer.frames(5)
        assert len(desk.errors) == 2, desk.errors
    finally:
        desk.failures.clear()  # the desk's peer was told it is the answerer on purpose
        await desk.close()
        await customer.close()


def _local_offer_with_video_codec(name: str) -> str:
    """A real-looking offer (ICE, DTLS) whose video section offers only ``name``."""
    lines = [
        "v=0",
        "o=- 1 1 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111",
        "c=IN IP4 0.0.0.0",
        "a=mid:0",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
        "m=video 9 UDP/TLS/RTP/SAVPF 98",
        "c=IN IP4 0.0.0.0",
        "a=mid:1",
        "a=sendrecv",
        "a=rtcp-mux",
        f"a=rtpmap:98 {name}/90000",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:abcdefghijklmnopqrstuvwx",
        "a=fingerprint:sha-256 " + ":".join(["AB"] * 32),
        "a=setup:actpass",
    ]
    return "\r\n".join(lines) + "\r\n"
