"""A customer's leg drops and comes back: the desk hears "unknown", then the status again.

Unit tier: the worker's results are handed to the tap directly (what the pool
would deliver), and a recorder stands in for the desk's notices.
"""

from __future__ import annotations

from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalyserTap
from signaling.integrity.worker import SampleResult


class _Pool:
    running = True
    dropped = 0

    def __init__(self) -> None:
        self.handler: object = None

    def subscribe(self, track: str, handler: object) -> None:
        self.handler = handler

    def unsubscribe(self, track: str) -> None:
        return None


def _result(at: float) -> SampleResult:
    face = ((0.3, 0.1, 0.4, 0.5),)
    return SampleResult("call-1", at, 5, 0, (), face, (120.0, 110.0, 100.0), 0.01)


def test_the_first_result_after_a_gap_is_a_change_the_desk_is_told_of() -> None:
    told: list[str] = []
    tap = AnalyserTap(
        "call-1",
        _Pool(),  # type: ignore[arg-type]
        CallIntegrity(),
        sample_interval_s=1 / 3,
        changed=lambda _call, state: told.append(state.status),
    )
    tap._result(_result(1.0))
    tap._result(_result(1.3))
    assert told == ["ok"]  # unknown -> ok once; an unchanged status is not repeated
    tap.track_gap("customer", since=2.0)
    assert told == ["ok", "unknown"]
    tap._result(_result(5.0))  # the new leg's first analysed sample
    assert told == ["ok", "unknown", "ok"]
