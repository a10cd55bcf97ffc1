"""The changes of a callback's state that the customer's commands and the sweeper share.

Each is a conditional update that exactly one caller wins (see
:mod:`.repository`); the attempt row and the audit entry commit with it, and
only then is the customer's app told.
"""

from __future__ import annotations

from collections.abc import Iterable
from datetime import datetime
from typing import Any

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal, Role
from server.calls import repository as calls_repo
from server.calls.views import iso
from server.db.banking import Callback
from server.hub.hub import Hub

from . import repository as repo
from .messages import RINGING_WORDS, CallbackRingEnded, CallbackRinging, RingEndReason
from .policy import CallbackPolicy, retry_at
from .state import OPEN, AttemptOutcome, CallbackState, Outcome

log = structlog.get_logger(__name__)


class CallbackChanges:
    """Closing, ringing, ending a ring and postponing a callback; ``hub`` reaches the app."""

    def __init__(
        self, sessions: async_sessionmaker[AsyncSession], policy: CallbackPolicy, hub: Hub
    ) -> None:
        self.sessions = sessions
        self.policy = policy
        self.hub = hub

    async def close(
        self,
        callback: Callback,
        outcome: Outcome,
        now: float,
        *,
        actor: Principal | None,
        attempt: AttemptOutcome | None = None,
        due_by: float | None = None,
    ) -> bool:
        """Open → cancelled (or failed, for giving up); True if this caller did it."""
        state = CallbackState.FAILED if outcome is Outcome.GAVE_UP else CallbackState.CANCELLED
        sources = {CallbackState.SCHEDULED} if due_by is not None else OPEN
        async with self.sessions() as session:
            won = await repo.move(
                session,
                callback.callback_id,
                sources,
                due_by=due_by,
                state=state.value,
                outcome=outcome.value,
                completed_at=calls_repo.utc(now),
                next_attempt_at=None,
            )
            if not won:
                await session.rollback()
                return False
            role = actor.role.value if actor else None
            subject = actor.subject if actor else None
            if attempt is not None:
                await repo.add_attempt(
                    session,
                    callback,
                    now,
                    attempt,
                    self.policy.zone,
                    actor_role=role,
                    actor_id=subject,
                )
            kind = "failed" if state is CallbackState.FAILED else "cancelled"
            await repo.record(
                session,
                kind,
                callback,
                now,
                actor_role=role,
                actor_id=subject,
                outcome=outcome.value,
            )
            await session.commit()
        log.info("callback.closed", callback_id=callback.callback_id, outcome=outcome.value)
        if callback.state == CallbackState.RINGING.value:
            await self.tell_ring_ended(callback, "cancelled", None)
        return True

    async def ring_over(
        self,
        callback: Callback,
        outcome: AttemptOutcome,
        now: float,
        *,
        actor: Principal | None,
        only_if_expired: bool,
    ) -> bool:
        """Ringing → scheduled for a retry (or failed, past the last allowed day)."""
        next_at = retry_at(self.policy, now, callback.requested_at.timestamp())
        values: dict[str, Any]
        if next_at is None:
            values = {
                "state": CallbackState.FAILED.value,
                "outcome": Outcome.GAVE_UP.value,
                "completed_at": calls_repo.utc(now),
                "next_attempt_at": None,
            }
        else:
            values = {
                "state": CallbackState.SCHEDULED.value,
                "next_attempt_at": calls_repo.utc(next_at),
            }
        async with self.sessions() as session:
            won = await repo.move(
                session,
                callback.callback_id,
                {CallbackState.RINGING},
                due_by=now if only_if_expired else None,
                **values,
            )
            if not won:
                await session.rollback()
                return False
            role = actor.role.value if actor else None
            subject = actor.subject if actor else None
            await repo.add_attempt(
                session,
                callback,
                now,
                outcome,
                self.policy.zone,
                actor_role=role,
                actor_id=subject,
            )
            if next_at is None:
                await repo.record(session, "failed", callback, now, outcome=Outcome.GAVE_UP.value)
            await session.commit()
        await self.tell_ring_ended(
            callback, "declined" if outcome is AttemptOutcome.DECLINED else "no_answer", next_at
        )
        return True

    async def postpone(
        self, callback: Callback, attempt: AttemptOutcome, next_at: float, now: float
    ) -> None:
        async with self.sessions() as session:
            won = await repo.move(
                session,
                callback.callback_id,
                {CallbackState.SCHEDULED},
                due_by=now,
                next_attempt_at=calls_repo.utc(next_at),
            )
            if not won:
                await session.rollback()
                return
            local_next = datetime.fromtimestamp(next_at, self.policy.zone)
            await repo.add_attempt(
                session,
                callback,
                now,
                attempt,
                self.policy.zone,
                detail=f"next attempt at {local_next.isoformat(timespec='seconds')}",
            )
            await session.commit()

    async def ring(self, callback: Callback, now: float, ring_number: int) -> None:
        async with self.sessions() as session:
            won = await repo.move(
                session,
                callback.callback_id,
                {CallbackState.SCHEDULED},
                due_by=now,
                state=CallbackState.RINGING.value,
                next_attempt_at=calls_repo.utc(now + self.policy.ring_s),
                attempts=Callback.attempts + 1,
            )
            if not won:
                await session.rollback()
                return
            await repo.add_attempt(
                session,
                callback,
                now,
                AttemptOutcome.RANG,
                self.policy.zone,
                detail=f"ring {ring_number}",
            )
            await session.commit()
        log.info("callback.ringing", callback_id=callback.callback_id)
        await self.hub.send(
            Role.CUSTOMER,
            callback.customer_id,
            ringing_message(callback.callback_id, self.policy.ring_s),
        )

    async def tell_ring_ended(
        self, callback: Callback, reason: RingEndReason, next_at: float | None
    ) -> None:
        message = CallbackRingEnded(
            callback_id=callback.callback_id,
            reason=reason,
            next_attempt_at=iso(calls_repo.utc(next_at)) if next_at is not None else None,
        )
        await self.hub.send(Role.CUSTOMER, callback.customer_id, message.model_dump())


def ringing_replay(ringing: Iterable[tuple[str, float | None]], now: float) -> list[dict[str, Any]]:
    """``callback.ringing`` for each (callback id, ring ends at) still ringing at ``now``:
    what a customer's app that (re)connects during the ring is told."""
    return [
        ringing_message(callback_id, until - now)
        for callback_id, until in ringing
        if until is not None and until > now
    ]


def ringing_message(callback_id: str, expires_in_s: float) -> dict[str, Any]:
    return CallbackRinging(
        callback_id=callback_id,
        expires_in_s=round(max(0.0, expires_in_s), 1),
        message=RINGING_WORDS,
    ).model_dump()
