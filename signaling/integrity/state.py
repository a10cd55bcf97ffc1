"""A call's integrity as the loop side keeps it: signal episodes, status, samples.

Pure: fed the worker's :class:`~signaling.integrity.worker.SampleResult` values
and ``now``; says when the status (or the set of active signals) changed.
"""

from __future__ import annotations

from collections import deque
from dataclasses import dataclass, field
from typing import Literal

Status = Literal["ok", "suspect", "unknown"]

__all__ = ["CallIntegrity", "Sample", "SignalEpisode", "Status"]

_EPISODES_KEPT = 200
_SAMPLES_KEPT = 600  # a few minutes at 3 samples a second: what liveness checks look back on


@dataclass
class SignalEpisode:
    code: str
    since: float
    until: float | None
    confidence: float
    detail: str

    def view(self) -> dict[str, object]:
        out: dict[str, object] = {
            "code": self.code,
            "since": self.since,
            "detail": self.detail,
            "confidence": self.confidence,
        }
        if self.until is not None:
            out["until"] = self.until
        return out


@dataclass(frozen=True, slots=True)
class Sample:
    """What a liveness check reads: the sample's time, face boxes and mean colour."""

    at: float
    faces: tuple[tuple[float, float, float, float], ...]
    colour: tuple[float, float, float] | None


@dataclass
class CallIntegrity:
    """Signals of one call's customer video, open episodes first to end."""

    analysing: bool = True
    episodes: list[SignalEpisode] = field(default_factory=list)
    samples: deque[Sample] = field(default_factory=lambda: deque(maxlen=_SAMPLES_KEPT))
    liveness: str | None = None  # "passed" / "failed": the latest challenge's result
    liveness_failed_at: float | None = None
    analysed: int = 0
    last_result_at: float | None = None

    @property
    def active(self) -> list[SignalEpisode]:
        return [e for e in self.episodes if e.until is None]

    @property
    def status(self) -> Status:
        if not self.analysing or self.last_result_at is None:
            return "unknown"
        if self.active or self.liveness == "failed":
            return "suspect"
        return "ok"

    def key(self) -> tuple[str, tuple[str, ...]]:
        """What a change is: the status, or which signals are active (a failed
        liveness check counts as one)."""
        codes = {e.code for e in self.active}
        if self.liveness == "failed":
            codes.add("liveness_failed")
        return self.status, tuple(sorted(codes))

    def update(
        self,
        at: float,
        signals: tuple[tuple[str, float, float, str], ...],
        sample: Sample | None,
    ) -> bool:
        """Take one sample's findings; True when :meth:`key` changed. A result is
        what shows the analysis running again after :meth:`stop`, so the first one
        after a gap turns ``unknown`` back into ``ok`` or ``suspect`` and says so."""
        before = self.key()
        self.analysing = True
        self.analysed += 1
        self.last_result_at = at
        if sample is not None:
            self.samples.append(sample)
        now_active = {
            code: (since, confidence, detail) for code, since, confidence, detail in signals
        }
        for episode in self.active:
            if episode.code not in now_active:
                episode.until = at
            else:
                _, episode.confidence, episode.detail = now_active.pop(episode.code)
        for code, (since, confidence, detail) in now_active.items():
            self.episodes.append(SignalEpisode(code, since, None, confidence, detail))
        if len(self.episodes) > _EPISODES_KEPT:
            closed = [e for e in self.episodes if e.until is not None]
            drop = set(map(id, closed[: len(self.episodes) - _EPISODES_KEPT]))
            self.episodes = [e for e in self.episodes if id(e) not in drop]
        return self.key() != before

    def stop(self, at: float) -> bool:
        """Analysis stopped (the customer's leg is gone): status unknown, episodes end."""
        before = self.key()
        for episode in self.active:
            episode.until = at
        self.analysing = False
        return self.key() != before

    def liveness_result(self, passed: bool, at: float) -> bool:
        before = self.key()
        self.liveness = "passed" if passed else "failed"
        self.liveness_failed_at = None if passed else at
        return self.key() != before

    def signals_view(self) -> list[dict[str, object]]:
        views = [e.view() for e in self.episodes]
        if self.liveness == "failed" and self.liveness_failed_at is not None:
            views.append(
                {
                    "code": "liveness_failed",
                    "since": self.liveness_failed_at,
                    "detail": "the latest liveness check did not pass",
                    "confidence": 1.0,
                }
            )
        return views

    def active_codes(self) -> tuple[str, ...]:
        return tuple(sorted({e.code for e in self.active}))
