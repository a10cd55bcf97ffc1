"""The media contract, the same tests against both media node backends.

Real aiortc peers over loopback: the desk offers and gets an answer, the app
gets an offer and answers, as with the server in between; with ``janus`` a
private Debian Janus carries the call (NoSIP legs), with ``aiortc`` this
process does. What the call's tap receives is what the recorder writes.
"""

from __future__ import annotations

import time

import pytest

from signaling.media.bridge import BridgeRefused
from signaling.media.passthrough import on_keyframe_request, request_keyframe
from tests.media.backends import BACKENDS, media_node
from tests.media.node_harness import NodeRouter, RelayedCall, relayed_calls
from tests.media.test_media_node import RecordingTaps

pytestmark = [pytest.mark.media, pytest.mark.parametrize("backend", BACKENDS)]


async def _flowing(call: RelayedCall, n: int = 10) -> None:
    for peer in (call.app, call.desk):
        await peer.wait_for_frames(n, timeout=30)
        await peer.wait_for_frames(n, timeout=30, kind="audio")


async def test_media_flows_both_ways_and_reaches_the_tap(backend: str) -> None:
    router, taps = NodeRouter(), RecordingTaps()
    async with (
        media_node(backend, router.send, taps) as node,
        relayed_calls(node, router) as (call,),
    ):
        await _flowing(call, 15)
        for peer in (call.app, call.desk):
            stats = peer.stats
            assert stats is not None and stats.video_size == (320, 240)
            assert stats.changed_video_frames > 5 and stats.audio_peak > 1000
        assert not call.errors
        assert node.stats().forwarded_packets > 60
        frames = taps.taps[call.call_id].frames
        assert {(f.party, f.kind, f.codec) for f in frames} == {
            ("customer", "video", "VP8"),
            ("customer", "audio", "opus"),
            ("specialist", "video", "VP8"),
            ("specialist", "audio", "opus"),
        }
        assert next(f for f in frames if f.kind == "video").keyframe
        assert node.stats().decoded_frames == 0


async def test_drop_and_resume_with_new_peer_connections(backend: str) -> None:
    """A restart (as after a party's return): both parties build new connections
    under the same call, media flows again and the tap notes the gap."""
    router, taps = NodeRouter(), RecordingTaps()
    async with (
        media_node(backend, router.send, taps) as node,
        relayed_calls(node, router) as (call,),
    ):
        await _flowing(call, 10)
        await node.party_left(call.call_id, "customer")
        await node.restart(call.call_id)
        restart = {"type": "media.restart", "call_id": call.call_id}
        await call.app.handle({**restart, "role": "answerer", "ice_servers": []})
        await call.desk.handle({**restart, "role": "offerer", "ice_servers": []})
        for peer in (call.app, call.desk):
            stats = await peer.wait_for_frames(5, timeout=30)
            assert stats.generation == 2
        assert "customer" in {party for party, _ in taps.taps[call.call_id].gaps}
        assert not call.errors


async def test_an_answer_without_an_offer_is_refused(backend: str) -> None:
    router = NodeRouter()
    async with media_node(backend, router.send) as node:
        with pytest.raises(BridgeRefused) as refused:
            await node.signal("nobody", "customer", {"type": "webrtc.answer", "sdp": "v=0"})
        assert refused.value.code == "illegal_state"


async def test_a_receivers_picture_loss_request_reaches_the_sender(backend: str) -> None:
    """A PLI from the app's receiver makes the desk's sender produce a keyframe
    (through Janus: RTCP from the app's leg to the desk's, via the node)."""
    router = NodeRouter()
    async with (
        media_node(backend, router.send) as node,
        relayed_calls(node, router) as (call,),
    ):
        await _flowing(call, 5)
        assert call.desk._conn is not None and call.app._conn is not None
        desk_video = next(
            t.sender for t in call.desk._conn.pc.getTransceivers() if t.kind == "video"
        )
        original = desk_video._send_keyframe
        asked: list[float] = []

        def spy() -> None:
            asked.append(time.monotonic())
            original()

        on_keyframe_request(desk_video, spy)
        app_video = next(
            t.receiver for t in call.app._conn.pc.getTransceivers() if t.kind == "video"
        )
        deadline = time.monotonic() + 15
        while not asked and time.monotonic() < deadline:
            assert await request_keyframe(app_video)
            await call.app.wait_for_frames(call.app.stats.video_frames + 1, timeout=5)  # type: ignore[union-attr]
        assert asked, "the desk was never asked for a keyframe"
