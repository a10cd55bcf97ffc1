"""Each integrity signal from real aiortc video through a real media node.

The customer's camera is a :class:`~tests.integrity.sources.SyntheticCamera`:
live (moving, noisy, jittered) until the test switches it to an attack. The
analysis runs in its real worker process. Deadlines are generous (the machine
is shared); they bound waiting, they are not the detection-delay figures,
which ``bench/integrity.py`` measures.
"""

from __future__ import annotations

import asyncio
import time

import pytest

from signaling.integrity.state import CallIntegrity
from tests.integrity.harness import AnalysedNode, customer_call, new_call_id
from tests.integrity.sources import SyntheticCamera

pytestmark = [
    pytest.mark.media,
    pytest.mark.slow,
    pytest.mark.timeout(300),
    pytest.mark.asyncio(loop_scope="module"),  # one node for the module: conftest.shared_node
]

#: Seconds of live video each scenario starts with, and must pass without a signal.
LIVE_S = 6.0
DETECT_TIMEOUT_S = 25.0


def _has(code: str):  # type: ignore[no-untyped-def]
    def check(state: CallIntegrity) -> bool:
        return code in state.active_codes()

    return check


async def _live_then(node: AnalysedNode, camera: SyntheticCamera, call_id: str) -> None:
    """The camera's live phase: analysed, ok, no signal at all."""
    await node.wait_analysing(call_id, samples=6)
    await asyncio.sleep(LIVE_S)
    state = node.state(call_id)
    assert state.status == "ok", [e.view() for e in state.episodes]
    assert state.episodes == [], [e.view() for e in state.episodes]


@pytest.mark.parametrize(
    ("mode", "code"),
    [("frozen", "video_frozen"), ("looped", "video_looped"), ("metronome", "frame_timing_anomaly")],
)
async def test_an_attack_on_a_live_camera_is_flagged(
    shared_node: AnalysedNode, mode: str, code: str
) -> None:
    node, call_id = shared_node, new_call_id()
    camera = SyntheticCamera(faces=1)
    async with customer_call(node, camera, call_id):
        await _live_then(node, camera, call_id)
        camera.set_mode(mode)  # type: ignore[arg-type]
        switched = time.time()
        state = await node.wait_for(call_id, _has(code), DETECT_TIMEOUT_S)
        assert state.status == "suspect"
        episode = next(e for e in state.active if e.code == code)
        assert episode.since >= switched - 1.0 and 0 < episode.confidence <= 1
        assert episode.detail
        # The desk-side listener heard the change as it happened.
        assert code in node.changes.all_codes(call_id)
        # Back to live: the signal ends (a loop needs its history to move on).
        if mode != "looped":
            camera.set_mode("live")
            state = await node.wait_for(
                call_id, lambda s: code not in s.active_codes(), DETECT_TIMEOUT_S
            )
            assert episode.until is not None and episode.until > episode.since


@pytest.mark.parametrize(("faces", "code"), [(0, "face_absent"), (2, "multiple_faces")])
async def test_faces_are_counted(shared_node: AnalysedNode, faces: int, code: str) -> None:
    node, call_id = shared_node, new_call_id()
    camera = SyntheticCamera(faces=faces)
    async with customer_call(node, camera, call_id):
        state = await node.wait_for(call_id, _has(code), DETECT_TIMEOUT_S)
        assert state.status == "suspect"
        other = "multiple_faces" if code == "face_absent" else "face_absent"
        assert other not in state.active_codes()
        recent = list(state.samples)[-3:]
        assert all(len(s.faces) == faces for s in recent), recent


async def test_the_leg_going_away_makes_the_status_unknown(shared_node: AnalysedNode) -> None:
    node, call_id = shared_node, new_call_id()
    camera = SyntheticCamera(faces=1)
    async with customer_call(node, camera, call_id) as call:
        await node.wait_analysing(call_id, samples=3)
        assert node.state(call_id).status == "ok"
        await node.node.party_left(call.call_id, "customer")
        state = await node.wait_for(call_id, lambda s: s.status == "unknown", 10)
        assert not state.analysing
