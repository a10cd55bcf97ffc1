"""Liveness challenges verified in real video through a real media node.

A client that follows the challenge (its picture takes the screen's colours, its
face moves left then right) passes; one that replays its own earlier frames,
whatever it is asked, fails.
"""

from __future__ import annotations

import asyncio
import random
import time

import pytest

from signaling.integrity.liveness import new_challenge, verify
from tests.integrity.harness import analysed_node, customer_call
from tests.integrity.sources import SyntheticCamera, follow

pytestmark = [pytest.mark.media, pytest.mark.slow, pytest.mark.timeout(300)]


async def _challenge_and_verify(kind: str, replay: bool, seed: int) -> tuple[bool, str]:
    async with analysed_node() as node:
        camera = SyntheticCamera(faces=1, seed=seed)
        async with customer_call(node, camera):
            await node.wait_analysing("call-1", samples=6)
            await asyncio.sleep(7.0)  # some history, for a replay to play back
            if replay:
                camera.set_mode("replay")
                await asyncio.sleep(1.0)
            challenge = new_challenge(kind, "ch-1", time.time(), random.Random(seed))  # type: ignore[arg-type]
            await follow(camera, challenge.message("call-1"))
            await asyncio.sleep(3.0)  # the last samples reach the worker and come back
            state = node.state("call-1")
            verdict = verify(challenge, list(state.samples))
            seen = [
                (
                    round(s.at - challenge.issued_at, 1),
                    len(s.faces),
                    s.colour and [round(c) for c in s.colour],
                )
                for s in state.samples
                if s.at >= challenge.issued_at - 3
            ]
            return verdict.passed, f"{verdict.reason}: {seen}"


@pytest.mark.parametrize("kind", ["colour", "head_turn"])
async def test_a_client_following_the_challenge_passes(kind: str) -> None:
    passed, reason = await _challenge_and_verify(kind, replay=False, seed=3)
    assert passed, reason
    assert reason.startswith("followed")


@pytest.mark.parametrize("kind", ["colour", "head_turn"])
async def test_a_client_replaying_earlier_frames_fails(kind: str) -> None:
    passed, reason = await _challenge_and_verify(kind, replay=True, seed=4)
    assert not passed
    assert reason.split(":")[0] in {"colour_not_seen", "face_did_not_move"}, reason
