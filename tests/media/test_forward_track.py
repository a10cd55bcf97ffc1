"""The forwarding track's keyframe discipline, without peers: what it queues,
drops and asks for."""

from __future__ import annotations

import asyncio

from signaling.media.forward import KEYFRAME_RETRY_S, VIDEO_QUEUE_FRAMES, ForwardTrack

KEY = (b"\x00" + b"k" * 20, True)  # VP8: bit 0 of the first byte clear
DELTA = (b"\x01" + b"d" * 20, False)


class Clock:
    def __init__(self) -> None:
        self.now = 100.0

    def __call__(self) -> float:
        return self.now


def _track(clock: Clock | None = None) -> tuple[ForwardTrack, list[int]]:
    asked: list[int] = []
    track = ForwardTrack(
        "video", 90_000, want_keyframe=lambda: asked.append(1), clock=clock or Clock()
    )
    return track, asked


async def test_nothing_is_queued_before_the_sender_takes_frames() -> None:
    """Frames pushed while the leg connects would reach the receiver late."""
    track, _ = _track()
    for i in range(5):
        track.push(KEY[0], i * 3000, KEY[1])
    assert track.pushed == 0 and track.dropped == 5 and not track.sending
    track.stop()


async def test_a_starting_sender_asks_for_a_keyframe_and_asks_again_until_one_comes() -> None:
    """A lost request (or a lost answer to it) must not freeze the picture: while
    delta frames keep being dropped, the track asks again once per retry interval
    (not with every frame: each request costs the sender a large keyframe)."""
    clock = Clock()
    track, asked = _track(clock)
    track.push(KEY[0], 0, KEY[1])  # before the sender starts: dropped
    receiving = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    assert track.sending and len(asked) == 1
    for i in range(3):
        clock.now += 0.1
        track.push(DELTA[0], (i + 1) * 3000, DELTA[1])
    assert len(asked) == 1 and track.pushed == 0  # a keyframe may be on its way
    clock.now += KEYFRAME_RETRY_S
    track.push(DELTA[0], 12_000, DELTA[1])
    assert len(asked) == 2
    track.push(KEY[0], 15_000, KEY[1])
    packet = await receiving
    assert bytes(packet) == KEY[0] and packet.pts == 15_000
    clock.now += 10 * KEYFRAME_RETRY_S
    track.push(DELTA[0], 18_000, DELTA[1])
    assert track.pushed == 2 and len(asked) == 2
    track.stop()


async def test_an_overflowing_queue_restarts_from_a_keyframe() -> None:
    clock = Clock()
    track, asked = _track(clock)
    receiving = asyncio.ensure_future(track.recv())
    await asyncio.sleep(0)
    track.push(KEY[0], 0, KEY[1])
    await receiving
    for i in range(VIDEO_QUEUE_FRAMES):
        track.push(DELTA[0], (i + 1) * 3000, DELTA[1])
    before = len(asked)
    track.push(DELTA[0], 999_000, DELTA[1])  # full: cleared, waits for a keyframe
    assert track.waiting_for_keyframe and len(asked) == before + 1
    track.push(KEY[0], 1_005_000, KEY[1])
    assert not track.waiting_for_keyframe
    track.stop()
