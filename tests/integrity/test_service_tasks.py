"""The integrity service's own tasks: who owns a pending liveness check, and when it stops.

Unit tier: no database, hub or workers are reached (the notices stay queued,
the analysis pool is never started); the call's state is set as an analysed
call's would be.
"""

from __future__ import annotations

import asyncio
import time
from typing import Any

from server.integrity.service import IntegrityService
from server.settings import Settings
from signaling.integrity.detectors import Thresholds
from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalysingTaps
from signaling.integrity.worker import AnalysisPool


def _service_with_an_analysed_call(call_id: str) -> IntegrityService:
    sessions: Any = None
    hub: Any = None
    service = IntegrityService(Settings(dev_mode=True), sessions, hub)
    service.taps = AnalysingTaps(
        None, AnalysisPool(Thresholds()), sample_interval_s=1.0, listener=service
    )
    state = CallIntegrity()
    state.update(time.time(), (), None)  # one sample analysed: status "ok"
    service.taps.calls[call_id] = state
    return service


def _verifications() -> list[asyncio.Task[Any]]:
    return [t for t in asyncio.all_tasks() if t.get_name() == "liveness-verify" and not t.done()]


async def test_a_calls_end_stops_its_pending_liveness_checks() -> None:
    service = _service_with_an_analysed_call("call-1")
    other = "call-2"
    assert service.taps is not None
    service.taps.calls[other] = service.taps.calls["call-1"]
    assert service.challenge("call-1", why="test") is not None
    assert service.challenge(other, why="test") is not None
    assert len(_verifications()) == 2
    # The call's samples are dropped at its end: a check after it would read none.
    await service.call_ended("call-1")
    assert len(_verifications()) == 1  # the other call's check still runs
    await service.stop()
    assert _verifications() == []
