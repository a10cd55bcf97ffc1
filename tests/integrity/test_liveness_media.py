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
from tests.integrity.harness import AnalysedNode, customer_call, new_call_id
from tests.integrity.sources import SyntheticCamera, follow

pytestmark = [
    pytest.mark.media,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.asyncio(loop_scope="module"),  # one node for the module: conftest.shared_node
]


async def _challenge_and_verify(
    node: AnalysedNode, kind: str, replay: bool, seed: int
) -> tuple[bool, str]:
    call_id = new_call_id()
    camera = SyntheticCamera(faces=1, seed=seed)
    async with customer_call(node, camera, call_id):
        await node.wait_analysing(call_id, samples=6)
        if replay:
            await asyncio.sleep(7.0)  # some history, for the replay to play back
            camera.set_mode("replay")
            await asyncio.sleep(1.0)
        challenge = new_challenge(kind, "ch-1", time.time(), random.Random(seed))  # type: ignore[arg-type]
        await follow(camera, challenge.message(call_id))
        await asyncio.sleep(3.0)  # the last samples reach the worker and come back
        state = node.state(call_id)
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
async def test_a_client_following_the_challenge_passes(
    shared_node: AnalysedNode, kind: str
) -> None:
    passed, reason = await _challenge_and_verify(shared_node, kind, replay=False, seed=3)
    assert passed, reason
    assert reason.startswith("followed")


@pytest.mark.parametrize("kind", ["colour", "head_turn"])
async def test_a_client_replaying_earlier_frames_fails(
    shared_node: AnalysedNode, kind: str
) -> None:
    passed, reason = await _challenge_and_verify(shared_node, kind, replay=True, seed=4)
    assert not passed
    assert reason.split(":")[0] in {"colour_not_seen", "face_did_not_move"}, reason
