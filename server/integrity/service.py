"""A call's video integrity for the rest of the server.

:class:`IntegrityService` listens to the media node's analysis
(:class:`signaling.integrity.tap.AnalysingTaps`) and, on every status change,
tells the desk (``video.integrity``), writes an audit entry and a recording
marker. It runs liveness challenges (before sensitive operations, and at
unpredictable moments when configured) and reports their results to the desk
(``liveness.result``), bound to the operation that asked, which waits for the
verdict (server/operations/liveness.py). It gives the risk
engine the call's integrity as data (:meth:`risk_input`).

Effects leave the loop callback through one bounded queue drained by one owned
task; a full queue loses a notice (counted and logged), never blocks the media.
"""

from __future__ import annotations

import asyncio
import contextlib
import random
import time
import uuid
from collections.abc import Awaitable, Callable, Coroutine
from dataclasses import dataclass, replace
from decimal import Decimal, InvalidOperation
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import risk
from server import audit
from server.auth.principal import Role
from server.calls import repository as repo
from server.recordings.index import add_marker
from server.settings import Settings
from server.tasks import cancel_and_wait
from signaling.integrity.detectors import Thresholds
from signaling.integrity.liveness import Challenge, Verdict, new_challenge, verify
from signaling.integrity.state import CallIntegrity
from signaling.integrity.tap import AnalysingTaps, IntegrityFeed, IntegrityListener, StateSource
from signaling.integrity.worker import AnalysisPool
from signaling.media.tap import MediaTapFactory, Party

if TYPE_CHECKING:
    from server.ports import Notifier

# Asks the media node for a party's keyframe: (call_id, party).
KeyframeRequest = Callable[[str, Party], None]

log = structlog.get_logger(__name__)

#: told a challenge's verdict (the operation that waits for it)
VerdictListener = Callable[[Verdict], Awaitable[None]]

NOTICE_QUEUE = 256
SIGNALS_SENT = 20  # the most recent episodes a desk notice carries


def thresholds_from(settings: Settings) -> Thresholds:
    s = settings
    return Thresholds(
        frozen_hash_distance=s.integrity_frozen_hash_distance,
        frozen_pixel_delta=s.integrity_frozen_pixel_delta,
        frozen_after_s=s.integrity_frozen_after_s,
        loop_run_frames=s.integrity_loop_run_frames,
        loop_distance_ratio=s.integrity_loop_distance_ratio,
        loop_min_lag_s=s.integrity_loop_min_lag_s,
        loop_history_s=s.integrity_loop_history_s,
        loop_min_change=s.integrity_loop_min_change,
        timing_window_frames=s.integrity_timing_window_frames,
        timing_min_jitter_ms=s.integrity_timing_min_jitter_ms,
        timing_jump_s=s.integrity_timing_jump_s,
        face_absent_after_s=s.integrity_face_absent_after_s,
        multiple_faces_samples=s.integrity_multiple_faces_samples,
    )


def integrity_applies(settings: Settings) -> bool:
    return settings.integrity_enabled and settings.media_mode == "relay"


def _iso(at: float) -> str:
    return time.strftime("%Y-%m-%dT%H:%M:%S", time.gmtime(at)) + f".{int(at % 1 * 1000):03d}Z"


def analysing_taps(
    settings: Settings,
    inner: MediaTapFactory | None,
    listener: IntegrityListener,
    *,
    request_keyframe: KeyframeRequest | None = None,
    feed: IntegrityFeed | None = None,
    remote: StateSource | None = None,
) -> AnalysingTaps | None:
    """The analyser composed with ``inner`` (relay mode, enabled), else None: what
    a server's embedded node and a media-node process (with its ``feed``) both use."""
    if not integrity_applies(settings):
        return None
    s = settings
    pool = AnalysisPool(
        thresholds_from(s),
        workers=s.integrity_workers,
        queue_samples=s.integrity_queue_samples,
        face_width=s.integrity_face_width,
    )
    return AnalysingTaps(
        inner,
        pool,
        sample_interval_s=1.0 / s.integrity_sample_fps,
        listener=listener,
        request_keyframe=request_keyframe,
        feed=feed,
        remote=remote,
    )


def integrity_message(call_id: str, state: CallIntegrity) -> dict[str, Any]:
    """The desk's ``video.integrity`` for the call's state now."""
    status, _ = state.key()
    return {
        "type": "video.integrity",
        "call_id": call_id,
        "status": status,
        "signals": signals_out(state),
    }


def signals_out(state: CallIntegrity | None) -> list[dict[str, Any]]:
    """The contract's ``signals``: ``{code, since, until?, detail}``, times in RFC 3339."""
    if state is None:
        return []
    out = []
    for view in state.signals_view()[-SIGNALS_SENT:]:
        item: dict[str, Any] = {
            "code": view["code"],
            "since": _iso(float(view["since"])),  # type: ignore[arg-type]
            "detail": view["detail"],
            "confidence": view["confidence"],
        }
        if "until" in view:
            item["until"] = _iso(float(view["until"]))  # type: ignore[arg-type]
        out.append(item)
    return out


@dataclass(frozen=True)
class _Notice:
    call_id: str
    at: float
    message: dict[str, Any]
    audit_kind: str
    marker: str
    operation_id: str | None
    data: dict[str, Any]


class IntegrityService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        hub: Notifier,
        clock: Callable[[], float] = time.time,
        rng: random.Random | None = None,
        *,
        large_amount: float = 50_000.0,
        recorder: MediaTapFactory | None = None,
        request_keyframe: KeyframeRequest | None = None,
        remote: StateSource | None = None,
    ) -> None:
        """``large_amount``: the risk ruleset's large transfer (a liveness challenge
        before one); ``recorder``: the media node's other taps, which the analyser
        is composed with; ``request_keyframe``: asks the node for a keyframe;
        ``remote``: the states of calls analysed by media-node processes."""
        self.settings = settings
        self.sessions = sessions
        self.hub = hub
        self.clock = clock
        self.rng = rng or random.SystemRandom()
        self.large_amount = large_amount
        self.taps: AnalysingTaps | None = analysing_taps(
            settings, recorder, self, request_keyframe=request_keyframe, remote=remote
        )
        # What the media node hands each forwarded frame to: the analyser composed
        # with the recorder when analysis applies, the recorder alone otherwise.
        self.tap_factory: MediaTapFactory | None = self.taps if self.taps is not None else recorder
        self.notices_lost = 0
        self._queue: asyncio.Queue[_Notice] = asyncio.Queue(NOTICE_QUEUE)
        self._notifier: asyncio.Task[None] | None = None
        # Pending challenge verifications, by call: a call's end cancels its own
        # (its samples are dropped then: a late check would read none and fail).
        self._verifying: dict[str, set[asyncio.Task[None]]] = {}
        self._random: dict[str, asyncio.Task[None]] = {}
        self._closed = False

    # -- reading ----------------------------------------------------------------------------
    def state(self, call_id: str) -> CallIntegrity | None:
        return self.taps.state(call_id) if self.taps is not None else None

    def view(self, call_id: str) -> dict[str, Any]:
        state = self.state(call_id)
        return {
            "call_id": call_id,
            "status": state.status if state is not None else "unknown",
            "signals": signals_out(state),
            "liveness": state.liveness if state is not None else None,
        }

    def risk_input(self, call_id: str) -> risk.VideoIntegrity | None:
        """What the risk engine is told; None when the video is not analysed (unknown)."""
        state = self.state(call_id)
        if state is None or state.status == "unknown":
            return None
        return risk.VideoIntegrity(
            status=state.status, signals=state.active_codes(), liveness=state.liveness
        )

    # -- analysis events (on the loop, from the media node) --------------------------------
    def integrity_changed(self, call_id: str, state: CallIntegrity) -> None:
        now = self.clock()
        status, codes = state.key()
        message = integrity_message(call_id, state)
        self._enqueue(
            _Notice(
                call_id,
                now,
                message,
                "integrity.changed",
                f"integrity_{status}",
                None,
                {"status": status, "signals": list(codes)},
            )
        )

    def _enqueue(self, notice: _Notice) -> None:
        try:
            self._queue.put_nowait(notice)
        except asyncio.QueueFull:
            self.notices_lost += 1
            log.warning("integrity.notice_lost", call_id=notice.call_id, lost=self.notices_lost)

    async def _deliver_forever(self) -> None:
        while True:
            notice = await self._queue.get()
            try:
                await self._deliver(notice)
            except Exception:
                log.exception("integrity.notice_failed", call_id=notice.call_id)

    async def _deliver(self, notice: _Notice) -> None:
        async with self.sessions() as session:
            call = await repo.get_call(session, notice.call_id)
            if call is None:
                return
            await audit.record(
                session,
                notice.audit_kind,
                at=notice.at,
                subject_type="operation" if notice.operation_id else "call",
                subject_id=notice.operation_id or notice.call_id,
                data={"call_id": notice.call_id, **notice.data},
            )
            await add_marker(
                session, notice.call_id, notice.marker, notice.at, notice.operation_id, notice.data
            )
            await session.commit()
            specialist, customer = call.specialist_id, call.customer_id
        if notice.message["type"] == "liveness.challenge":
            await self.hub.send(Role.CUSTOMER, customer, notice.message)
        elif specialist:
            await self.hub.send(Role.SPECIALIST, specialist, notice.message)

    # -- liveness -----------------------------------------------------------------------------
    def needs_liveness(self, kind: str, params: dict[str, Any]) -> bool:
        for rule in self.settings.liveness_before:
            name, _, condition = rule.partition(":")
            if name != kind:
                continue
            if condition != "large":
                return True
            amount = params.get("amount") if kind == "transfer" else params.get("new_limit")
            try:
                if amount is not None and Decimal(str(amount)) >= Decimal(str(self.large_amount)):
                    return True
            except InvalidOperation:
                return True  # an amount that cannot be read is treated as large
        return False

    def liveness_challenge(
        self, call_id: str, kind: str, params: dict[str, Any]
    ) -> Challenge | None:
        """The challenge a sensitive operation must wait for, drawn but not sent yet (the
        operation is bound to it first); None when none is needed or nothing here
        analyses the call's video (direct media, analysis off, another node's call).

        A call whose video is analysed here but shows no result at this moment (its
        leg just dropped, the analysis is only starting) still gets a challenge: the
        operation then waits, and a check the video cannot show fails safe, rather
        than a gap in the video letting the operation skip its check."""
        if not self.needs_liveness(kind, params):
            return None
        return self._draw(call_id, while_unknown=True)

    def _draw(self, call_id: str, *, while_unknown: bool = False) -> Challenge | None:
        state = self.state(call_id)
        if self._closed or state is None or (state.status == "unknown" and not while_unknown):
            return None  # nothing analyses the video: a challenge could not be checked
        kind = self.rng.choice(list(self.settings.liveness_kinds))
        return new_challenge(kind, uuid.uuid4().hex, self.clock(), self.rng)

    def verdict_due(self, challenge: Challenge) -> float:
        """When the verdict on ``challenge`` is given (wall clock): after its deadline,
        the latency allowed, and one more sample."""
        return challenge.issued_at + challenge.deadline_s + self._verify_delay_s()

    def _verify_delay_s(self) -> float:
        return self.settings.liveness_latency_s + 1.0 / max(self.settings.integrity_sample_fps, 0.1)

    def challenge(self, call_id: str, *, operation_id: str | None = None, why: str) -> str | None:
        """Send the customer a challenge now; verified once its deadline has passed."""
        drawn = self._draw(call_id)
        if drawn is None:
            return None
        sent = self.send_challenge(call_id, drawn, why=why, operation_id=operation_id)
        return sent.challenge_id if sent is not None else None

    def send_challenge(
        self,
        call_id: str,
        challenge: Challenge,
        *,
        why: str,
        operation_id: str | None = None,
        on_result: VerdictListener | None = None,
    ) -> Challenge | None:
        """Send ``challenge`` to the customer, timed from now, and verify it once its
        deadline has passed; ``on_result`` is then awaited with the verdict (in the
        verification's own task, which the call's end cancels). None: not sent."""
        if self._closed or self.state(call_id) is None:
            return None
        now = self.clock()
        challenge = replace(challenge, issued_at=now)
        data = {"challenge_id": challenge.challenge_id, "kind": challenge.kind, "why": why}
        self._enqueue(
            _Notice(
                call_id,
                now,
                challenge.message(call_id),
                "liveness.challenge_sent",
                "liveness_challenge",
                operation_id,
                data,
            )
        )
        wait = challenge.deadline_s + self._verify_delay_s()
        self._spawn(call_id, self._verify_later(call_id, challenge, operation_id, wait, on_result))
        return challenge

    async def _verify_later(
        self,
        call_id: str,
        challenge: Challenge,
        operation_id: str | None,
        wait: float,
        on_result: VerdictListener | None = None,
    ) -> None:
        await asyncio.sleep(wait)
        state = self.state(call_id)
        s = self.settings
        verdict = verify(
            challenge,
            list(state.samples) if state is not None else [],
            latency_s=s.liveness_latency_s,
            colour_shift=s.liveness_colour_shift,
            turn_shift=s.liveness_turn_shift,
        )
        now = self.clock()
        if state is not None and state.liveness_result(verdict.passed, now):
            self.integrity_changed(call_id, state)
        message: dict[str, Any] = {
            "type": "liveness.result",
            "call_id": call_id,
            "challenge_id": challenge.challenge_id,
            "passed": verdict.passed,
            "reason": verdict.reason,
        }
        if operation_id is not None:
            message["operation_id"] = operation_id
        data = {
            "challenge_id": challenge.challenge_id,
            "kind": challenge.kind,
            "passed": verdict.passed,
            "reason": verdict.reason,
        }
        self._enqueue(
            _Notice(call_id, now, message, "liveness.result", "liveness_result", operation_id, data)
        )
        log.info("liveness.result", call_id=call_id, passed=verdict.passed, reason=verdict.reason)
        if on_result is not None:
            try:
                await on_result(verdict)
            except Exception:
                # The operation's own deadline (its sweep) still decides it, failing safe.
                log.exception("liveness.result_not_applied", call_id=call_id)

    # -- random challenges over a call -----------------------------------------------------
    def call_started(self, call_id: str) -> None:
        interval = self.settings.liveness_random_interval_s
        if interval > 0 and call_id not in self._random and not self._closed:
            task = asyncio.create_task(self._at_random(call_id, interval), name="liveness-random")
            self._random[call_id] = task

    async def _at_random(self, call_id: str, interval: float) -> None:
        while True:
            await asyncio.sleep(self.rng.expovariate(1.0 / interval))
            self.challenge(call_id, why="random")

    async def call_ended(self, call_id: str) -> None:
        await cancel_and_wait(self._random.pop(call_id, None))
        for task in list(self._verifying.pop(call_id, ())):
            await cancel_and_wait(task)
        if self.taps is not None:
            self.taps.forget(call_id)

    # -- lifecycle ------------------------------------------------------------------------------
    def _spawn(self, call_id: str, work: Coroutine[Any, Any, None]) -> None:
        task = asyncio.create_task(work, name="liveness-verify")
        tasks = self._verifying.setdefault(call_id, set())
        tasks.add(task)

        def done(finished: asyncio.Task[None]) -> None:
            tasks.discard(finished)
            if not tasks and self._verifying.get(call_id) is tasks:
                del self._verifying[call_id]

        task.add_done_callback(done)

    async def start(self) -> None:
        if self._notifier is None:
            self._notifier = asyncio.create_task(self._deliver_forever(), name="integrity-notices")

    async def stop(self) -> None:
        """Stop the challenges, the notices and the analysis workers; safe twice."""
        self._closed = True
        tasks = [*self._random.values(), *(t for ts in self._verifying.values() for t in ts)]
        for task in tasks:
            task.cancel()
        await asyncio.gather(*tasks, return_exceptions=True)
        self._random.clear()
        self._verifying.clear()
        await cancel_and_wait(self._notifier)
        self._notifier = None
        if self.taps is not None:
            with contextlib.suppress(Exception):
                await self.taps.close()
