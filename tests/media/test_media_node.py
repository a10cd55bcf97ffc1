"""The media node with real aiortc peers over loopback (no server in between):
media both ways, the node as each party's peer, nothing decoded, keyframes on demand."""

from __future__ import annotations

import threading
import time
from collections.abc import Iterator
from typing import Any

import aiortc.rtcrtpreceiver
import pytest
from aiortc.sdp import SessionDescription

from signaling.media.node import MediaNode
from signaling.media.tap import EncodedFrame, NullTap, Party
from tests.media.node_harness import NodeRouter, RelayedCall, relayed_calls
from tests.media.peer import MediaPeer

pytestmark = pytest.mark.media


class RecordingTap(NullTap):
    """Keeps what the node hands to a call's tap (the recorder's seam)."""

    def __init__(self) -> None:
        self.frames: list[EncodedFrame] = []
        self.gaps: list[tuple[Party, float]] = []

    def write(self, frame: EncodedFrame) -> None:
        self.frames.append(frame)

    def track_gap(self, party: Party, *, since: float) -> None:
        self.gaps.append((party, since))


class RecordingTaps:
    def __init__(self) -> None:
        self.taps: dict[str, RecordingTap] = {}

    async def open(self, call_id: str, *, started_at: float) -> RecordingTap:
        self.taps[call_id] = RecordingTap()
        return self.taps[call_id]


@pytest.fixture
def decoder_threads(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[threading.Thread]]:
    """Every thread in this process that made an aiortc decoder (peers and node alike)."""
    seen: list[threading.Thread] = []
    original = aiortc.rtcrtpreceiver.get_decoder

    def counting(codec: Any) -> Any:
        seen.append(threading.current_thread())
        return original(codec)

    monkeypatch.setattr(aiortc.rtcrtpreceiver, "get_decoder", counting)
    yield seen


def _identity(sdp: str) -> tuple[str, str]:
    """(DTLS fingerprint, ICE ufrag) of the first media section of an SDP."""
    media = SessionDescription.parse(sdp).media[0]
    return media.dtls.fingerprints[0].value, media.ice.usernameFragment


def _local(peer: MediaPeer) -> str:
    assert peer._conn is not None
    return str(peer._conn.pc.localDescription.sdp)


async def _flowing(call: RelayedCall, n: int = 10) -> None:
    for peer in (call.app, call.desk):
        await peer.wait_for_frames(n, timeout=20)
        await peer.wait_for_frames(n, timeout=20, kind="audio")


async def test_media_flows_both_ways_through_the_node_without_decoding(
    decoder_threads: list[threading.Thread],
) -> None:
    router, taps = NodeRouter(), RecordingTaps()
    node = MediaNode("n1", router.send, lambda call_id: [], taps)
    async with relayed_calls(node, router) as (call,):
        await _flowing(call, 15)
        for peer in (call.app, call.desk):
            stats = peer.stats
            assert stats is not None and stats.video_size == (320, 240)
            assert stats.changed_video_frames > 5 and stats.audio_peak > 1000
        bridge = node.bridge(call.call_id)
        assert bridge is not None and not call.errors
        node_threads = {
            receiver.decoder_thread
            for party in ("customer", "specialist")
            for receiver in bridge.leg(party).incoming.values()  # type: ignore[union-attr]
        }
        assert None not in node_threads and len(node_threads) == 4
        # Peers decode (so the spy works); the node's four receivers never made a decoder.
        assert decoder_threads and not node_threads & set(decoder_threads)
        stats = node.stats()
        assert stats.decoded_frames == 0 and stats.forwarded_packets > 60
        # The tap got each party's frames as received, keyframes marked.
        frames = taps.taps[call.call_id].frames
        kinds = {(f.party, f.kind, f.codec) for f in frames}
        assert kinds == {
            ("customer", "video", "VP8"),
            ("customer", "audio", "opus"),
            ("specialist", "video", "VP8"),
            ("specialist", "audio", "opus"),
        }
        assert next(f for f in frames if f.kind == "video").keyframe
    await node.close()


async def test_each_party_sees_the_node_as_its_peer() -> None:
    router = NodeRouter()
    node = MediaNode("n1", router.send, lambda call_id: [])
    async with relayed_calls(node, router) as (call,):
        await _flowing(call, 3)
        bridge = node.bridge(call.call_id)
        assert bridge is not None
        offer_to_app = next(m["sdp"] for _, p, m in router.sent if m["type"] == "webrtc.offer")
        answer_to_desk = next(m["sdp"] for _, p, m in router.sent if m["type"] == "webrtc.answer")
        app_leg, desk_leg = bridge.leg("customer"), bridge.leg("specialist")
        assert app_leg is not None and desk_leg is not None
        # What the app got is the node's app leg, not the desk; and the other way round.
        assert _identity(offer_to_app) == _identity(app_leg.pc.localDescription.sdp)
        assert _identity(offer_to_app) != _identity(_local(call.desk))
        assert _identity(answer_to_desk) == _identity(desk_leg.pc.localDescription.sdp)
        assert _identity(answer_to_desk) != _identity(_local(call.app))
    await node.close()


async def test_reconnected_receiver_gets_a_keyframe_within_a_second() -> None:
    """The desk's encoder is mid-stream (aiortc sends a keyframe only every 3000
    frames); a new app leg must ask the desk for one (PLI) to show anything."""
    router, taps = NodeRouter(), RecordingTaps()
    node = MediaNode("n1", router.send, lambda call_id: [], taps)
    async with relayed_calls(node, router) as (call,):
        await _flowing(call, 20)
        bridge = node.bridge(call.call_id)
        assert bridge is not None
        requests_before = bridge.keyframe_requests
        await call.app.handle({"type": "media.restart", "call_id": call.call_id})
        await bridge.reconnect_app()
        connected = await call.app.wait_connected(timeout=20)
        stats = await call.app.wait_for_frames(1, timeout=20)
        assert connected.connected_at is not None and stats.first_video_at is not None
        assert stats.generation == 2
        assert stats.first_video_at - connected.connected_at < 1.0
        assert bridge.keyframe_requests > requests_before
        assert ("customer", pytest.approx(time.time(), abs=30)) in [
            (p, t) for p, t in taps.taps[call.call_id].gaps
        ]
    await node.close()


async def test_the_desk_sees_one_continuous_stream_across_the_apps_reconnect() -> None:
    """The app's new leg is a new source (its own SSRC, sequence numbers and
    clock); the desk's leg stays up and its receiver sees the same stream go on:
    one source, no jump in sequence numbers (which it would count as packets
    lost), and its picture resumes."""
    router = NodeRouter()
    node = MediaNode("n1", router.send, lambda call_id: [])
    async with relayed_calls(node, router) as (call,):
        await _flowing(call, 15)
        bridge = node.bridge(call.call_id)
        assert bridge is not None and call.desk.stats is not None
        before = call.desk.stats.video_frames
        await call.app.handle({"type": "media.restart", "call_id": call.call_id})
        await bridge.reconnect_app()
        await call.app.wait_for_frames(5, timeout=20)
        await call.desk.wait_for_frames(before + 15, timeout=20)
        assert call.desk._conn is not None
        receiver = next(
            t.receiver for t in call.desk._conn.pc.getTransceivers() if t.kind == "video"
        )
        inbound = [s for s in (await receiver.getStats()).values() if s.type == "inbound-rtp"]
        assert len(inbound) == 1 and 0 <= inbound[0].packetsLost < 20
        assert node.stats().decoded_frames == 0
    await node.close()


async def test_each_leg_answers_its_receivers_nacks_from_what_it_forwarded() -> None:
    """A packet lost between the node and a party is resent by that party's leg
    (over RTX, from the leg's own history), not asked for again upstream."""
    from aiortc.rtp import RtpPacket

    router = NodeRouter()
    node = MediaNode("n1", router.send, lambda call_id: [])
    async with relayed_calls(node, router) as (call,):
        await _flowing(call, 10)
        bridge = node.bridge(call.call_id)
        leg = bridge.leg("customer") if bridge is not None else None
        assert leg is not None
        forwarder = leg.outgoing["video"]
        lost = forwarder.last_sequence_number
        sender = next(t.sender for t in leg.pc.getTransceivers() if t.kind == "video")
        sent: list[bytes] = []
        transport = sender.transport
        original = transport._send_rtp

        async def spy(data: bytes) -> None:
            sent.append(data)
            await original(data)

        transport._send_rtp = spy  # type: ignore[method-assign]
        try:
            assert lost is not None
            await sender._retransmit(lost)
        finally:
            transport._send_rtp = original  # type: ignore[method-assign]
        resent = [RtpPacket.parse(data) for data in sent]
        assert [p.ssrc for p in resent] == [sender._rtx_ssrc]
        assert int.from_bytes(resent[0].payload[:2], "big") == lost  # RTX: the original's number
    await node.close()


async def test_h264_when_the_desk_puts_it_first(monkeypatch: pytest.MonkeyPatch) -> None:
    """Both legs carry the desk's first codec; here H.264 (aiortc's list reordered)."""
    import aiortc.codecs

    video = aiortc.codecs.CODECS["video"]
    h264_first = sorted(video, key=lambda c: c.mimeType.lower() != "video/h264")
    monkeypatch.setitem(aiortc.codecs.CODECS, "video", h264_first)
    router, taps = NodeRouter(), RecordingTaps()
    node = MediaNode("n1", router.send, lambda call_id: [], taps)
    async with relayed_calls(node, router) as (call,):
        await _flowing(call, 10)
        codecs = {(f.party, f.codec) for f in taps.taps[call.call_id].frames if f.kind == "video"}
        assert codecs == {("customer", "H264"), ("specialist", "H264")}
        offer_to_app = next(m["sdp"] for _, _, m in router.sent if m["type"] == "webrtc.offer")
        video_codecs = {
            c.mimeType
            for m in SessionDescription.parse(offer_to_app).media
            if m.kind == "video"
            for c in m.rtp.codecs
        }
        assert video_codecs <= {"video/H264", "video/rtx"}  # only the one codec
        assert node.stats().decoded_frames == 0
    await node.close()
