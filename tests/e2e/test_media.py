"""Real video and audio between an aiortc customer and an aiortc specialist,
through a real server, driven only by the public HTTP and WebSocket API."""

from __future__ import annotations

import asyncio
from typing import Any

import pytest
from aiohttp.web_protocol import RequestHandler

from tests.api.harness import Api, RunningServer
from tests.e2e.media_client import MediaClient

pytestmark = pytest.mark.media


@pytest.fixture
def server_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    # The expiry story needs a short grace window; the return stories need one
    # that a restart (a new ICE and DTLS handshake on each leg of the media node)
    # fits in on a loaded machine.
    expiring = request.node.name.startswith("test_party_away_past_grace")
    return {"media_grace_s": 3.0 if expiring else 20.0}


async def _connected_call(
    api: Api, customer_id: str = "C1001"
) -> tuple[MediaClient, MediaClient, str]:
    desk_party = await api.specialist("chen.li")
    desk = MediaClient(desk_party)
    await desk.connect()
    assert (await desk_party.put("/api/v1/desk/presence", {"state": "available"})).status == 200
    customer = MediaClient(await api.customer(customer_id))
    await customer.connect()
    created = await customer.party.post("/api/v1/calls", {})
    call_id = created.body["call_id"]
    offer = await desk.expect("call.offered", call_id=call_id)
    accepted = await desk_party.post(
        f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]}
    )
    assert accepted.status == 200, accepted
    return desk, customer, call_id


async def _kinds(api: Api, call_id: str) -> list[str]:
    supervisor = await api.supervisor()
    timeline = await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
    return [e["kind"] for e in timeline.body["events"]]


async def test_video_and_audio_flow_both_ways(api: Api) -> None:
    desk, customer, call_id = await _connected_call(api)
    try:
        await desk.frames(10)
        await customer.frames(10)
        assert desk.peer is not None and customer.peer is not None
        assert desk.peer.stats is not None and desk.peer.stats.video_size == (320, 240)
        # Both reported connected: the call is active and the timeline says when.
        for _ in range(50):
            view = await customer.party.get(f"/api/v1/calls/{call_id}")
            if view.body["state"] == "active":
                break
            await desk.peer.wait_for_frames(1, timeout=1)
        assert view.body["state"] == "active"
        assert "media_connected" in await _kinds(api, call_id)
        assert not desk.failures and not customer.failures
    finally:
        await desk.close()
        await customer.close()


async def _wait_for_event(api: Api, call_id: str, kind: str, timeout: float = 10.0) -> None:
    async with asyncio.timeout(timeout):
        while kind not in await _kinds(api, call_id):
            await asyncio.sleep(0.05)


async def test_customer_drops_and_returns_within_grace(api: Api) -> None:
    desk, customer, call_id = await _connected_call(api)
    try:
        await customer.frames(5)
        await desk.frames(5)
        await customer.drop()  # socket and peer connection gone at once
        await _wait_for_event(api, call_id, "party_dropped")

        back = MediaClient(customer.party)
        await back.connect()
        await back.frames(10)
        await desk.frames(10)  # the desk's new connection, after media.restart
        assert desk.peer is not None and len(desk.peer.connections) == 2

        view = await back.party.get(f"/api/v1/calls/{call_id}")
        assert view.body["state"] == "active" and view.body["call_id"] == call_id
        kinds = await _kinds(api, call_id)
        for kind in ("party_dropped", "party_returned", "media_restarted"):
            assert kind in kinds, kinds
        await back.close()
    finally:
        await desk.close()
        await customer.close()


def _server_connection(server: RunningServer, client: MediaClient) -> RequestHandler:
    """The server's end of ``client``'s socket (found by the client's address)."""
    assert client.ws is not None
    address = client.ws.get_extra_info("sockname")
    for handler in server.runner.server.connections:
        transport = handler.transport
        if transport is not None and transport.get_extra_info("peername") == address:
            return handler
    raise AssertionError(f"the server holds no connection from {address}")


async def _closed_on_the_server(server: RunningServer, handler: RequestHandler) -> None:
    """Return once the server is done with that connection: aiohttp lets go of it only
    after its handler returned, so the socket's close hooks have all run."""
    async with asyncio.timeout(10):
        while handler in server.runner.server.connections:
            await asyncio.sleep(0.02)


async def test_customer_back_before_the_drop_is_noticed(api: Api, server: RunningServer) -> None:
    """The new socket arrives first; the old one's late close must not count as a drop."""
    desk, customer, call_id = await _connected_call(api, "C1002")
    try:
        await customer.frames(5)
        old_socket = _server_connection(server, customer)
        back = MediaClient(customer.party)
        await back.connect()  # the old socket is still open on the server
        await customer.drop()
        await back.frames(10)
        await desk.frames(10)
        await _closed_on_the_server(server, old_socket)
        kinds = await _kinds(api, call_id)
        assert "party_reconnected" in kinds and "party_dropped" not in kinds, kinds
        view = await back.party.get(f"/api/v1/calls/{call_id}")
        assert view.body["state"] == "active"
        await back.close()
    finally:
        await desk.close()
        await customer.close()


async def test_specialist_drops_and_returns_within_grace(api: Api) -> None:
    desk, customer, call_id = await _connected_call(api, "C1004")
    try:
        await desk.frames(5)
        await desk.drop()
        back = MediaClient(desk.party)
        replay = await back.connect()
        assert replay["type"] == "welcome"
        await back.frames(10)
        await customer.frames(10)
        view = await customer.party.get(f"/api/v1/calls/{call_id}")
        assert view.body["state"] == "active"
        await back.close()
    finally:
        await desk.close()
        await customer.close()


async def test_party_away_past_grace_ends_call_as_failed(api: Api) -> None:
    desk, customer, call_id = await _connected_call(api, "C1005")
    try:
        await desk.frames(5)
        await customer.drop()
        ended = await desk.expect("call.ended", call_id=call_id, timeout=30)
        assert ended["end_reason"] == "failed"
        view = await desk.party.get(f"/api/v1/calls/{call_id}")
        assert view.body["state"] == "wrap_up" and view.body["end_reason"] == "failed"
        supervisor = await api.supervisor()
        states = {
            s["username"]: s["state"] for s in (await supervisor.get("/api/v1/specialists")).body
        }
        assert states["chen.li"] == "wrap_up"
        wrapped = await desk.party.post(
            f"/api/v1/calls/{call_id}/wrap-up", {"code": "network_lost"}
        )
        assert wrapped.status == 200
        states = {
            s["username"]: s["state"] for s in (await supervisor.get("/api/v1/specialists")).body
        }
        assert states["chen.li"] == "available"

        # On return, the customer is told in plain words, once.
        back = MediaClient(customer.party)
        await back.connect()
        notice = await back.expect("call.ended", call_id=call_id)
        assert notice["end_reason"] == "failed" and "zh" in notice["message"]
        await back.close()
    finally:
        await desk.close()
        await customer.close()
