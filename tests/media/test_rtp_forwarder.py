"""The RTP forwarder without peers: what it sends, drops and asks for, and how it
rewrites sequence numbers and timestamps into one continuous stream."""

from __future__ import annotations

from aiortc.rtp import RtpPacket

from signaling.media.forward import KEYFRAME_RETRY_S, RtpForwarder, starts_keyframe

# VP8 (RFC 7741): descriptor byte S=1, PID=0 starts a frame; the frame tag's bit 0
# is clear for a keyframe. The forwarder reads the payload and the depayloaded bytes.
KEY_START = (b"\x10\x00kkk", b"\x00kkk")
DELTA_START = (b"\x10\x01ddd", b"\x01ddd")
CONTINUATION = (b"\x00\x00ccc", b"\x00ccc")  # S=0: mid-frame, even if its byte looks "key"


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


class Sink:
    """A leg's sender: keeps what it was asked to send."""

    def __init__(self) -> None:
        self.started = False
        self.sent: list[tuple[int, int, bytes]] = []  # (seq, timestamp, payload)

    async def send(self, packet: RtpPacket, sequence_number: int, timestamp: int) -> bool:
        self.sent.append((sequence_number, timestamp, packet.payload))
        return True


def _forwarder(
    kind: str = "video", clock: Clock | None = None
) -> tuple[RtpForwarder, Sink, list[int]]:
    asked: list[int] = []
    forwarder = RtpForwarder(
        kind,
        "VP8" if kind == "video" else "opus",
        90_000 if kind == "video" else 48_000,
        want_keyframe=lambda: asked.append(1),
        clock=clock or Clock(),
    )
    sink = Sink()
    forwarder.sink = sink
    return forwarder, sink, asked


def _packet(seq: int, ts: int, part: tuple[bytes, bytes], ssrc: int = 1) -> tuple[RtpPacket, bytes]:
    packet = RtpPacket(payload_type=96, sequence_number=seq & 0xFFFF, timestamp=ts, ssrc=ssrc)
    packet.payload = part[0]
    return packet, part[1]


async def _start(forwarder: RtpForwarder, sink: Sink) -> None:
    sink.started = True
    await forwarder.sink_started()


def test_only_the_first_packet_of_a_keyframe_starts_one() -> None:
    assert starts_keyframe("VP8", *KEY_START)
    assert not starts_keyframe("VP8", *DELTA_START)
    assert not starts_keyframe("VP8", *CONTINUATION)
    # H.264 as aiortc depayloads it: a start code, then an IDR slice (5) or SPS (7).
    assert starts_keyframe("H264", b"\x65", b"\x00\x00\x00\x01\x65xx")
    assert not starts_keyframe("H264", b"\x41", b"\x00\x00\x00\x01\x41xx")
    assert not starts_keyframe("H264", b"\x7c\x05", b"xx")  # a later FU-A fragment


async def test_nothing_is_sent_before_the_sender_starts() -> None:
    forwarder, sink, asked = _forwarder()
    for i in range(5):
        await forwarder.forward(*_packet(i, i * 3000, DELTA_START))
    assert sink.sent == [] and forwarder.dropped == 5 and not forwarder.sending and not asked


async def test_a_leg_that_starts_just_after_a_keyframe_starts_with_it() -> None:
    """The keyframe asked for while the leg connected is kept until it is up; one
    that is too old (stale picture) is let go and a new one asked for."""
    clock = Clock()
    forwarder, sink, asked = _forwarder(clock=clock)
    await forwarder.forward(*_packet(1, 0, DELTA_START))
    await forwarder.forward(*_packet(2, 3000, KEY_START))
    await forwarder.forward(*_packet(3, 3000, CONTINUATION))
    await forwarder.forward(*_packet(4, 6000, DELTA_START))
    clock.now += 0.1
    await _start(forwarder, sink)
    assert [p for _, _, p in sink.sent] == [KEY_START[0], CONTINUATION[0], DELTA_START[0]]
    assert not asked and not forwarder.waiting_for_keyframe

    late, late_sink, late_asked = _forwarder(clock=clock)
    await late.forward(*_packet(2, 3000, KEY_START))
    clock.now += 1.0
    await _start(late, late_sink)
    assert late_sink.sent == [] and len(late_asked) == 1 and late.waiting_for_keyframe


async def test_a_starting_sender_asks_for_a_keyframe_and_asks_again_until_one_comes() -> None:
    """A lost request (or a lost answer to it) must not freeze the picture: while
    delta frames keep being dropped, the forwarder asks again once per retry
    interval (not with every packet: each request costs the sender a keyframe)."""
    clock = Clock()
    forwarder, sink, asked = _forwarder(clock=clock)
    await _start(forwarder, sink)
    assert forwarder.sending and len(asked) == 1
    for i in range(3):
        clock.now += 0.1
        await forwarder.forward(*_packet(i, i * 3000, DELTA_START))
    assert len(asked) == 1 and sink.sent == []  # a keyframe may be on its way
    clock.now += KEYFRAME_RETRY_S
    await forwarder.forward(*_packet(3, 9000, DELTA_START))
    assert len(asked) == 2
    await forwarder.forward(*_packet(4, 12_000, KEY_START))
    await forwarder.forward(*_packet(5, 12_000, CONTINUATION))
    clock.now += 10 * KEYFRAME_RETRY_S
    await forwarder.forward(*_packet(6, 15_000, DELTA_START))
    assert [payload for _, _, payload in sink.sent] == [
        KEY_START[0],
        CONTINUATION[0],
        DELTA_START[0],
    ]
    assert len(asked) == 2 and not forwarder.waiting_for_keyframe


async def test_gaps_are_kept_and_a_late_packet_takes_its_own_place() -> None:
    """A packet lost upstream stays a gap the receiver can NACK; its
    retransmission, arriving late, gets the sequence number it would have had."""
    forwarder, sink, _ = _forwarder()
    await _start(forwarder, sink)
    await forwarder.forward(*_packet(65_534, 1000, KEY_START))  # wraps past 65535
    await forwarder.forward(*_packet(0, 1000, CONTINUATION))  # 65535 lost
    await forwarder.forward(*_packet(65_535, 1000, CONTINUATION))  # its retransmission
    await forwarder.forward(*_packet(65_533, 1000, CONTINUATION))  # from before the start
    first, ts = sink.sent[0][0], sink.sent[0][1]
    assert [(seq - first) & 0xFFFF for seq, _, _ in sink.sent] == [0, 2, 1]
    assert {t for _, t, _ in sink.sent} == {ts}
    assert forwarder.dropped == 1


async def test_a_new_source_continues_the_stream_from_a_keyframe() -> None:
    """The other party's leg reconnected: a new SSRC, its own sequence numbers
    and clock. The receiver sees the next sequence number and a timestamp the
    elapsed time later, and the picture restarts on a keyframe."""
    clock = Clock()
    forwarder, sink, asked = _forwarder(clock=clock)
    await _start(forwarder, sink)
    await forwarder.forward(*_packet(10, 3000, KEY_START))
    await forwarder.forward(*_packet(11, 6000, DELTA_START))
    last_seq, last_ts, _ = sink.sent[-1]
    clock.now += 0.5
    asked_before = len(asked)
    await forwarder.forward(*_packet(40_000, 777, DELTA_START, ssrc=2))  # not a keyframe
    assert len(asked) == asked_before + 1 and len(sink.sent) == 2
    await forwarder.forward(*_packet(40_001, 777 + 3000, KEY_START, ssrc=2))
    await forwarder.forward(*_packet(40_002, 777 + 6000, DELTA_START, ssrc=2))
    (seq1, ts1, _), (seq2, ts2, _) = sink.sent[2:]
    assert seq1 == (last_seq + 1) & 0xFFFF and seq2 == (last_seq + 2) & 0xFFFF
    assert ts1 == last_ts + 45_000 and ts2 == ts1 + 3000  # 0.5 s at 90 kHz


async def test_audio_needs_no_keyframe_and_follows_a_new_source_at_once() -> None:
    clock = Clock()
    forwarder, sink, asked = _forwarder("audio", clock)
    await _start(forwarder, sink)
    await forwarder.forward(*_packet(5, 960, (b"opus", b"opus")))
    clock.now += 0.02
    await forwarder.forward(*_packet(900, 50_000, (b"opus", b"opus"), ssrc=9))
    (seq1, ts1, _), (seq2, ts2, _) = sink.sent
    assert seq2 == (seq1 + 1) & 0xFFFF and ts2 == ts1 + 960 and not asked
