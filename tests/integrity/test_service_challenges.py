"""Which calls an operation's liveness challenge is drawn for (unit tier).

No database, hub or workers are reached: the call's state is set as an analysed
call's would be, and nothing is sent.
"""

from __future__ import annotations

import time
from typing import Any

from server.integrity.service import IntegrityService
from server.settings import Settings
from signaling.integrity.detectors import Thresholds
from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalysingTaps
from signaling.integrity.worker import AnalysisPool


def _service() -> IntegrityService:
    sessions: Any = None
    hub: Any = None
    service = IntegrityService(Settings(dev_mode=True), sessions, hub)
    service.taps = AnalysingTaps(
        None, AnalysisPool(Thresholds()), sample_interval_s=1.0, listener=service
    )
    return service


def test_an_operation_gets_its_challenge_even_while_the_video_shows_no_result() -> None:
    service = _service()
    assert service.taps is not None
    state = CallIntegrity()
    state.update(time.time(), (), None)
    state.stop(time.time())  # the customer's leg just dropped: "unknown" for now
    service.taps.calls["call-1"] = state
    assert state.status == "unknown"
    # A random check would only fail for the gap: none is drawn.
    assert service.challenge("call-1", why="random") is None
    # A password reset still waits for one (it fails safe if the video stays away).
    drawn = service.liveness_challenge("call-1", "password_reset", {})
    assert drawn is not None and drawn.steps
    assert service.verdict_due(drawn) > drawn.issued_at + drawn.deadline_s
    # A small transfer needs none; a large one does; nothing analysed here: none.
    assert service.liveness_challenge("call-1", "transfer", {"amount": "800.00"}) is None
    assert service.liveness_challenge("call-1", "transfer", {"amount": "60000.00"}) is not None
    assert service.liveness_challenge("call-2", "password_reset", {}) is None
