"""The aiortc internals the media node relies on are still there.

If this fails after an aiortc upgrade, read ``signaling/media/passthrough.py``
against the new aiortc before widening ``TESTED_AIORTC_VERSIONS`` and the pin in
``pyproject.toml``: the node would otherwise decode every call, or drop its media.
"""

from __future__ import annotations

from importlib.metadata import version

import pytest
from aiortc.rtcrtpsender import RTCRtpSender

from signaling.media import passthrough
from signaling.media.passthrough import AiortcInternalsChanged, check_internals


def test_installed_aiortc_has_the_internals_the_node_uses() -> None:
    check_internals()
    assert version("aiortc").startswith(passthrough.TESTED_AIORTC_VERSIONS)


def test_a_moved_internal_is_named(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delattr(RTCRtpSender, "_send_keyframe")
    with pytest.raises(AiortcInternalsChanged, match="_send_keyframe"):
        check_internals()


def test_an_untested_aiortc_release_is_refused(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(passthrough.aiortc, "__version__", "2.0.0")
    with pytest.raises(AiortcInternalsChanged, match=r"aiortc 2\.0\.0"):
        check_internals()


class Overusing:
    """An estimator on an overused link: a new (lower) estimate on every packet."""

    def __init__(self) -> None:
        self.packets: list[dict[str, int]] = []

    def add(self, **packet: int) -> tuple[int, list[int]]:
        self.packets.append(packet)
        return 1_000_000 - len(self.packets), [packet["ssrc"]]


ONE_MS = 262  # abs-send-time is 6.18 fixed-point seconds


def test_a_video_receivers_remb_is_paced_while_its_estimate_still_follows_every_packet() -> None:
    from signaling.media.passthrough import REMB_INTERVAL_MS, PacedEstimator

    inner = Overusing()
    paced = PacedEstimator(inner)
    sent = [
        at
        for at in range(0, 1000, 5)  # a packet every 5 ms for one second
        if paced.add(arrival_time_ms=at, abs_send_time=at * ONE_MS, payload_size=1200, ssrc=7)
        is not None
    ]
    # Each packet reached the estimator (the last one with the next packet).
    assert [p["arrival_time_ms"] for p in inner.packets] == list(range(0, 995, 5))
    # One REMB per interval, asked for when the estimator took the packet.
    assert sent == [at + 5 for at in range(0, 995, REMB_INTERVAL_MS)]
    assert paced.held == 199 - len(sent)


def test_a_burst_reaches_the_estimator_as_one_packet_with_all_its_bytes() -> None:
    """A frame's packets, sent together, are one group for the estimator anyway."""
    from signaling.media.passthrough import PacedEstimator

    inner = Overusing()
    paced = PacedEstimator(inner)
    for frame in range(3):  # 33 ms apart, three packets sent within a few microseconds
        for packet in range(3):
            send_time = (frame * 33 * ONE_MS + packet) & 0xFFFFFF
            paced.add(
                arrival_time_ms=frame * 33 + packet,
                abs_send_time=send_time,
                payload_size=1000,
                ssrc=7,
            )
    assert inner.packets == [
        {
            "arrival_time_ms": f * 33 + 2,
            "abs_send_time": f * 33 * ONE_MS + 2,
            "payload_size": 3000,
            "ssrc": 7,
        }
        for f in range(2)
    ]


async def test_a_diverted_video_receiver_paces_its_remb() -> None:
    from aiortc import RTCPeerConnection

    from signaling.media.passthrough import PacedEstimator, divert_receiver

    pc = RTCPeerConnection()
    transceiver = pc.addTransceiver("video", direction="recvonly")
    divert_receiver(transceiver.receiver, "video", lambda codec, frame: None)
    try:
        estimator = getattr(transceiver.receiver, passthrough._ESTIMATOR)
        assert isinstance(estimator, PacedEstimator)
    finally:
        await pc.close()


def test_a_sender_that_no_longer_answers_nacks_from_its_history_is_named(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    """Forwarded packets are put in the sender's history so that aiortc answers
    the leg's NACKs; a sender that stopped reading it would leave them unanswered."""

    async def retransmit(self: RTCRtpSender, sequence_number: int) -> None:
        return None

    monkeypatch.setattr(RTCRtpSender, "_retransmit", retransmit)
    with pytest.raises(AiortcInternalsChanged, match="NACKs"):
        check_internals()
