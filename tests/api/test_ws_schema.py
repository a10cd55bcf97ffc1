"""The published WebSocket protocol is served and describes both directions."""

from __future__ import annotations

from tests.api.harness import Api


async def test_ws_schema_is_published_with_every_message_type(api: Api) -> None:
    reply = await api.request("GET", "/api/v1/schemas/ws.json")
    assert reply.status == 200
    text = str(reply.body)
    for kind in (
        "hello",
        "ping",
        "webrtc.offer",
        "media.state",
        "risk.warning_shown",
        "welcome",
        "queue.update",
        "call.offered",
        "call.offer_withdrawn",
        "call.assigned",
        "call.ended",
        "risk.popup",
        "risk.warning",
        "operation.confirm_request",
        "operation.updated",
        "media.start",
        "media.restart",
        "callback.ringing",
    ):
        assert f"'{kind}'" in text, kind
