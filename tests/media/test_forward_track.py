"""The forwarding track's keyframe discipline, without peers: what it queues,
drops and asks for."""

from __future__ import annotations

import asyncio

from signaling.media.forward import VIDEO_QUEUE_FRAMES, ForwardTrack

KEY = (b"\x00" + b"k" * 20, True)  # VP8: bit 0 of the first byte clear
DELTA = (b"\x01" + b"d" * 20, False)


def _track() -> tuple[ForwardTrack, list[int]]:
    asked: list[int] = []
    track = ForwardTrack("video", 90_000, want_keyframe=lambda: asked.append(1))
    return track, asked


async def test_nothing_is_queued_before_the_sender_takes_frames() -> None:
    """Frames pushed while the leg connects would reach the receiver late."""
    track, _ = _track()
    for i in range(5):
        track.push(KEY[0], i * 3000, KEY[1])
    assert track.pushed == 0 and track.dropped == 5 and not track.sending
    track.stop()


async def test_a_starting_sender_asks_for_a_keyframe_and_keeps_asking_until_one_comes() -> None:
    """A lost request (or a lost answer to it) must not freeze the picture: every
    dropped delta frame asks again (its owner rate-limits the requests)."""
    track, asked = _track()
    # The sender's first recv() starts the track; a frame then wakes it up.
    track.push(KEY[0], 0, KEY[1])  # before the start: dropped
    receiving = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert track.sending and len(asked) == 1
    for i in range(3):
        track.push(DELTA[0], (i + 1) * 3000, DELTA[1])
    assert len(asked) == 4 and track.pushed == 0
    track.push(KEY[0], 12_000, KEY[1])
    packet = await receiving
    assert bytes(packet) == KEY[0] and packet.pts == 12_000
    track.push(DELTA[0], 15_000, DELTA[1])
    assert track.pushed == 2 and len(asked) == 4
    track.stop()


async def test_an_overflowing_queue_restarts_from_a_keyframe() -> None:
    track, asked = _track()
    receiving = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.push(KEY[0], 0, KEY[1])
    await receiving
    for i in range(VIDEO_QUEUE_FRAMES):
        track.push(DELTA[0], (i + 1) * 3000, DELTA[1])
    before = len(asked)
    track.push(DELTA[0], 999_000, DELTA[1])  # full: cleared, waits for a keyframe
    assert track.waiting_for_keyframe and len(asked) > before
    track.push(DELTA[0], 1_002_000, DELTA[1])
    assert len(asked) > before + 1  # still asking
    track.push(KEY[0], 1_005_000, KEY[1])
    assert not track.waiting_for_keyframe
    track.stop()
