"""The callback sweeper: every few seconds, on every node, end the rings nobody
answered and ring (or skip, or give up on) the callbacks whose turn has come.

Two nodes sweeping at once is safe: every change is a conditional update that
one of them wins (:mod:`.changes`, :mod:`.repository`).
"""

from __future__ import annotations

from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls import repository as calls_repo
from server.db.banking import Callback
from server.routing.backend import QueueBackend

from . import repository as repo
from .changes import CallbackChanges
from .policy import (
    CallbackPolicy,
    PendingCallback,
    Verdict,
    callbacks_due,
    decide,
    give_up_at,
    rank_key,
    rings_on_local_day,
    waiting_rank_keys,
    working_specialists,
)
from .state import OPEN, AttemptOutcome, CallbackState, Outcome
from .views import timestamp

log = structlog.get_logger(__name__)

_SKIPS = {
    Verdict.NO_CONSENT: (AttemptOutcome.SKIPPED_NO_CONSENT, Outcome.CONSENT_WITHDRAWN),
    Verdict.DO_NOT_CALL: (AttemptOutcome.SKIPPED_DO_NOT_CALL, Outcome.DO_NOT_CALL),
    Verdict.OUTSIDE_HOURS: (AttemptOutcome.SKIPPED_OUTSIDE_HOURS, Outcome.GAVE_UP),
    Verdict.DAILY_LIMIT: (AttemptOutcome.SKIPPED_DAILY_LIMIT, Outcome.GAVE_UP),
}


class CallbackSweeper:
    """One sweep at a time per caller; ``backend`` says whose turn it is in the queue."""

    def __init__(
        self,
        changes: CallbackChanges,
        sessions: async_sessionmaker[AsyncSession],
        policy: CallbackPolicy,
        backend: QueueBackend,
    ) -> None:
        self.changes = changes
        self.sessions = sessions
        self.policy = policy
        self.backend = backend

    async def sweep(self, now: float) -> None:
        """End rings nobody answered, then ring (or skip) the callbacks whose turn has
        come. Run every few seconds by every node's dispatcher."""
        async with self.sessions() as session:
            open_callbacks = list(await repo.in_states(session, OPEN))
        if not open_callbacks:
            return
        ringing: list[Callback] = []
        candidates: list[Callback] = []
        zone, days = self.policy.zone, self.policy.max_days
        for callback in open_callbacks:
            next_at = timestamp(callback.next_attempt_at)
            if callback.state == CallbackState.RINGING.value:
                if next_at is not None and next_at <= now:
                    await _guarded(
                        self.changes.ring_over(
                            callback,
                            AttemptOutcome.NO_ANSWER,
                            now,
                            actor=None,
                            only_if_expired=True,
                        )
                    )
                else:
                    ringing.append(callback)
            elif now >= give_up_at(callback.requested_at.timestamp(), zone, days):
                # Its turn never came within the allowed days (say, nobody at work).
                await _guarded(
                    self.changes.close(callback, Outcome.GAVE_UP, now, actor=None, due_by=now)
                )
            elif next_at is None or next_at <= now:
                candidates.append(callback)
        if not candidates:
            return
        routing = self.backend.policy
        snapshot = await self.backend.snapshot(now)
        pending = [
            PendingCallback(
                c.callback_id,
                rank_key(c.original_enqueued_at.timestamp(), c.priority, routing),
                ringing=c.state == CallbackState.RINGING.value,
            )
            for c in ringing + candidates
        ]
        due = set(
            callbacks_due(
                pending, waiting_rank_keys(snapshot, routing), working_specialists(snapshot)
            )
        )
        for callback in candidates:
            if callback.callback_id in due:
                await _guarded(self._attempt(callback, now))

    async def _attempt(self, callback: Callback, now: float) -> None:
        """Its turn has come: ring, or record why not and when to look again."""
        async with self.sessions() as session:
            customer = await calls_repo.get_customer(session, callback.customer_id)
            open_call = await calls_repo.open_call_of(session, callback.customer_id)
            # Two days back covers the current local day in any zone.
            rings = await repo.ring_times(session, callback.customer_id, now - 2 * 86400)
        decision = decide(
            self.policy,
            now,
            consent=customer is not None and customer.contact_consent,
            do_not_call=customer is None or customer.do_not_call,
            rings_today=rings_on_local_day(rings, now, self.policy.zone),
            requested_at=callback.requested_at.timestamp(),
        )
        if decision.verdict is Verdict.GIVE_UP:
            await self.changes.close(callback, Outcome.GAVE_UP, now, actor=None, due_by=now)
        elif decision.verdict in (Verdict.NO_CONSENT, Verdict.DO_NOT_CALL):
            attempt, outcome = _SKIPS[decision.verdict]
            await self.changes.close(
                callback, outcome, now, actor=None, attempt=attempt, due_by=now
            )
        elif decision.verdict in (Verdict.OUTSIDE_HOURS, Verdict.DAILY_LIMIT):
            attempt, _ = _SKIPS[decision.verdict]
            if decision.gives_up or decision.next_attempt_at is None:
                await self.changes.close(
                    callback, Outcome.GAVE_UP, now, actor=None, attempt=attempt, due_by=now
                )
            else:
                await self.changes.postpone(callback, attempt, decision.next_attempt_at, now)
        elif open_call is not None:
            # The customer called in again meanwhile and is being looked after.
            await self.changes.close(
                callback, Outcome.CUSTOMER_CALLED_IN, now, actor=None, due_by=now
            )
        else:
            await self.changes.ring(callback, now, callback.attempts + 1)


async def _guarded(step: Any) -> None:
    """One callback's trouble (a database blip) must not stop the others."""
    try:
        await step
    except Exception:
        log.exception("callback.sweep_failed")
