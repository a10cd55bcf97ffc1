"""Hostile or broken signaling: each gets an ``error`` (or a close before hello),
nothing is relayed to anyone, and the server keeps serving the others."""

from __future__ import annotations

import asyncio
import json

import aiohttp
import pytest

from tests.api.harness import Api
from tests.e2e.media_client import MediaClient
from tests.e2e.test_media import _connected_call

pytestmark = pytest.mark.media

SDP_OFFER = (
    "v=0\r\no=- 1 1 IN IP4 127.0.0.1\r\ns=-\r\nt=0 0\r\n"
    "m=audio 9 UDP/TLS/RTP/SAVPF 111\r\nc=IN IP4 0.0.0.0\r\na=setup:actpass\r\n"
    "a=mid:0\r\na=rtpmap:111 opus/48000/2\r\n"
)
SDP_ANSWER = SDP_OFFER.replace("a=setup:actpass", "a=setup:active")


async def _error_for(client: MediaClient, message: dict[str, object]) -> dict[str, object]:
    await client.send_raw(message)
    return await client.expect("error", timeout=5)


async def test_hostile_media_messages_are_refused_and_not_relayed(api: Api) -> None:
    desk, customer, call_id = await _connected_call(api)
    await desk.frames(3)
    await customer.frames(3)
    # A second call between other parties, whose media must stay untouched.
    other_desk, other_customer, other_call = await _connected_call_with(api, "wang.fang", "C1003")
    await other_desk.frames(3)
    before = {id(c): _relayed(c) for c in (desk, customer, other_desk, other_customer)}
    try:
        cases = [
            # SDP for a call the sender is not in
            (
                customer,
                {"type": "webrtc.answer", "call_id": other_call, "sdp": SDP_ANSWER},
                "not_in_call",
            ),
            # ICE for a call the sender is not in
            (
                desk,
                {"type": "webrtc.ice", "call_id": other_call, "candidate": None},
                "not_in_call",
            ),
            # an offer from the answerer
            (
                customer,
                {"type": "webrtc.offer", "call_id": call_id, "sdp": SDP_OFFER},
                "wrong_direction",
            ),
            # an answer from the offerer
            (
                desk,
                {"type": "webrtc.answer", "call_id": call_id, "sdp": SDP_ANSWER},
                "wrong_direction",
            ),
            # malformed SDP
            (desk, {"type": "webrtc.offer", "call_id": call_id, "sdp": "hello"}, "invalid_sdp"),
            # oversized SDP (over 64 KiB)
            (
                desk,
                {
                    "type": "webrtc.offer",
                    "call_id": call_id,
                    "sdp": SDP_OFFER + "a=x:" + "y" * 70_000,
                },
                None,
            ),
            # wrong shape
            (desk, {"type": "webrtc.ice", "call_id": call_id}, "invalid_message"),
            (
                desk,
                {"type": "media.state", "call_id": call_id, "state": "dancing"},
                "invalid_message",
            ),
            (
                customer,
                {"type": "webrtc.offer", "call_id": "../../etc", "sdp": SDP_OFFER},
                "invalid_message",
            ),
            # a call id that does not exist
            (customer, {"type": "webrtc.ice", "call_id": "nope", "candidate": None}, "not_in_call"),
        ]
        for client, message, code in cases:
            if len(json.dumps(message)) > 96 * 1024:
                # Larger than a WebSocket message may be: the socket is closed
                # (1009); that client reconnects, everyone else is unaffected.
                await client.send_raw(message)
                await asyncio.sleep(0.3)
                assert client.ws is not None and client.ws.closed
                continue
            error = await _error_for(client, message)
            if code is not None:
                assert error["code"] == code, (message, error)
        # Nothing was relayed to anyone, and everyone is still served.
        after = {id(c): _relayed(c) for c in (desk, customer, other_desk, other_customer)}
        assert after == before
        for client in (customer, other_desk, other_customer):
            await client.send_raw({"type": "ping"})
            await client.expect("pong")
        await other_customer.frames(10)
    finally:
        for client in (desk, customer, other_desk, other_customer):
            await client.close()


async def test_media_messages_before_hello_close_the_socket(api: Api) -> None:
    ws = await api.session.ws_connect(api.base_url + "/api/v1/ws", heartbeat=None)
    await ws.send_json({"type": "webrtc.offer", "call_id": "x", "sdp": SDP_OFFER})
    seen = [await ws.receive(timeout=5)]
    while seen[-1].type is aiohttp.WSMsgType.TEXT:
        seen.append(await ws.receive(timeout=5))
    assert ws.close_code == 4401
    await ws.close()


async def _connected_call_with(
    api: Api, username: str, customer_id: str
) -> tuple[MediaClient, MediaClient, str]:
    desk_party = await api.specialist(username)
    desk = MediaClient(desk_party)
    await desk.connect()
    assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
    customer = MediaClient(await api.customer(customer_id))
    await customer.connect()
    created = await customer.party.post("/api/v1/calls", {})
    call_id = created.body["call_id"]
    offer = await desk.expect("call.offered", call_id=call_id)
    assert (
        await desk_party.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    ).status == 200
    return desk, customer, call_id


def _relayed(client: MediaClient) -> int:
    return sum(1 for m in client.seen if str(m.get("type", "")).startswith("webrtc."))
