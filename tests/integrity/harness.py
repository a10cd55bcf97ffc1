"""A real media node with the integrity analyser, and real aiortc peers through it.

The app (customer) peer sends a :class:`~tests.integrity.sources.SyntheticCamera`;
the desk peer sends the usual moving pattern. The analysis runs in a real
worker process behind the node's tap, as in the server.
"""

from __future__ import annotations

import asyncio
import itertools
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field

from signaling.integrity.detectors import Thresholds
from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalysingTaps
from signaling.integrity.worker import AnalysisPool
from signaling.media.node import MediaNode
from tests.integrity.sources import SyntheticCamera
from tests.media.node_harness import NodeRouter, RelayedCall, peer_sender
from tests.media.peer import MediaPeer

SAMPLE_INTERVAL_S = 1 / 3
_call_numbers = itertools.count(1)


def new_call_id() -> str:
    """A call id not used before in this test run (tests may share one node)."""
    return f"call-{next(_call_numbers)}"


@dataclass
class Changes:
    """Every status change the analyser reported, per call, with when it was seen."""

    seen: dict[str, list[tuple[float, str, tuple[str, ...]]]] = field(default_factory=dict)
    event: asyncio.Event = field(default_factory=asyncio.Event)

    def integrity_changed(self, call_id: str, state: CallIntegrity) -> None:
        status, codes = state.key()
        self.seen.setdefault(call_id, []).append((time.time(), status, codes))
        self.event.set()

    def all_codes(self, call_id: str) -> set[str]:
        return {code for _, _, codes in self.seen.get(call_id, []) for code in codes}


@dataclass
class AnalysedNode:
    node: MediaNode
    taps: AnalysingTaps
    router: NodeRouter
    changes: Changes

    def state(self, call_id: str) -> CallIntegrity:
        state = self.taps.state(call_id)
        assert state is not None, f"no analysis of {call_id}"
        return state

    async def wait_for(
        self, call_id: str, check: Callable[[CallIntegrity], bool], timeout: float
    ) -> CallIntegrity:
        deadline = time.monotonic() + timeout
        while True:
            state = self.taps.state(call_id)
            if state is not None and check(state):
                return state
            if time.monotonic() > deadline:
                tap = self.taps.taps.get(call_id)
                raise AssertionError(
                    f"{call_id}: condition not met in {timeout} s; "
                    f"status {state.key() if state else None}, "
                    f"analysed {state.analysed if state else 0}, "
                    f"pool dropped {self.taps.pool.dropped}, errors {self.taps.pool.errors}, "
                    f"tap {tap.counters if tap else None}, "
                    f"signals {[e.view() for e in state.episodes] if state else None}"
                )
            await asyncio.sleep(0.2)

    async def wait_analysing(self, call_id: str, samples: int = 6, timeout: float = 60) -> None:
        await self.wait_for(call_id, lambda s: s.analysed >= samples, timeout)


@asynccontextmanager
async def analysed_node(
    thresholds: Thresholds | None = None, workers: int = 1, queue_samples: int = 8
) -> AsyncIterator[AnalysedNode]:
    router = NodeRouter()
    changes = Changes()
    pool = AnalysisPool(thresholds or Thresholds(), workers=workers, queue_samples=queue_samples)
    taps = AnalysingTaps(None, pool, sample_interval_s=SAMPLE_INTERVAL_S, listener=changes)
    node = MediaNode("integrity-test", router.send, lambda _call: [], taps)
    taps.request_keyframe = node.request_keyframe
    try:
        yield AnalysedNode(node, taps, router, changes)
    finally:
        await node.close()
        await taps.close()


@asynccontextmanager
async def customer_call(
    analysed: AnalysedNode, camera: SyntheticCamera, call_id: str = "call-1"
) -> AsyncIterator[RelayedCall]:
    node, router = analysed.node, analysed.router
    # The desk's own video is not analysed: a small, slow picture keeps the test cheap.
    desk = MediaPeer(
        "offerer",
        [],
        peer_sender(router, node, call_id, "specialist"),
        name=f"desk-{call_id}",
        width=160,
        height=120,
        fps=5,
    )
    app = MediaPeer(
        "answerer",
        [],
        peer_sender(router, node, call_id, "customer"),
        name=f"app-{call_id}",
        video=lambda: camera,
    )
    call = RelayedCall(call_id, desk, app, node)
    router.calls[call_id] = call
    try:
        await call.start()
        await app.wait_connected(timeout=30)
        yield call
    finally:
        await desk.close()
        await app.close()
        await node.close_call(call_id)
