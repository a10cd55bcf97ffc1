"""The end of a conversation and the wrap-up after it: SQL is the record, the
parties are told once it has committed, and what reacts to the end runs from the
outbox (server/bootstrap.py lists the handlers)."""

from __future__ import annotations

from typing import Any

from server.auth.principal import Principal, Role
from server.db.models import Call
from server.errors import Conflict
from server.outbox.events import ConversationEnded

from . import repository as repo
from .base import CallServiceBase
from .messages import call_ended
from .state import IN_CONVERSATION, CallAction, CallState, EndReason


class ConversationCommands(CallServiceBase):
    """A conversation ends (by a party, the media sweep or a callback), then wrap-up."""

    async def end_by_specialist(self, principal: Principal, call_id: str) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            if CallState(call.state) not in IN_CONVERSATION:
                raise Conflict(f"call is {call.state}; cannot end", code="illegal_state")
        await self.end_conversation(call_id, EndReason.COMPLETED, now, actor=principal)
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            return await self.render(session, call, Role.SPECIALIST)

    async def end_conversation(
        self, call_id: str, reason: EndReason, now: float, actor: Principal | None = None
    ) -> bool:
        """Connecting or active → wrap-up; both parties are told the call ended."""
        done, call = await self._step(
            call_id,
            CallAction.END_CONVERSATION,
            {"end_reason": reason.value, "conversation_ended_at": repo.utc(now)},
            "conversation_ended",
            now,
            actor,
            ConversationEnded(call_id, now, reason.value),
            end_reason=reason.value,
        )
        if not done or call is None:
            return False
        # SQL has committed: every step below runs whatever the others do.
        # The handlers go first (pending operations first among them: money moves
        # only inside a live call), each isolated and retried by the outbox.
        await self.deliver(call_id)
        ended = call_ended(call_id, reason.value)
        if call.specialist_id:
            await self._deferrable(
                "end_call", self.backend.end_call(call.specialist_id, now), call_id
            )
            await self.hub.send(Role.SPECIALIST, call.specialist_id, ended)
        await self.hub.send(Role.CUSTOMER, call.customer_id, ended)
        return True

    async def announce_end_again(self, call: Call, now: float) -> bool:
        """The repair pass found the call's end not acted on (its operations still
        pending): its handlers, idempotent, run again from a fresh event. Not while
        an earlier event of its end is still being delivered (the relay retries
        that one). Returns whether an event was written."""
        outbox = self.outbox
        if outbox is None or await outbox.has_pending(call.call_id, ConversationEnded.kind):
            return False
        async with self.sessions() as session:
            reason = call.end_reason or EndReason.COMPLETED.value
            outbox.append(session, ConversationEnded(call.call_id, now, reason))
            await session.commit()
        await outbox.flush(call.call_id)
        return True

    async def wrap_up(
        self, principal: Principal, call_id: str, code: str, note: str | None
    ) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            if CallState(call.state) is not CallState.WRAP_UP:
                raise Conflict(f"call is {call.state}; cannot wrap up", code="illegal_state")
        await self.finish_wrap_up(call_id, code, note, now, actor=principal)
        async with self.sessions() as session:
            call = await self._held_call(session, principal, call_id)
            return await self.render(session, call, Role.SPECIALIST)

    async def finish_wrap_up(
        self, call_id: str, code: str, note: str | None, now: float, actor: Principal | None
    ) -> bool:
        done, call = await self._step(
            call_id,
            CallAction.FINISH_WRAP_UP,
            {"wrap_up_code": code, "wrap_up_note": note, "ended_at": repo.utc(now)},
            "wrapped_up",
            now,
            actor,
            code=code,
        )
        if done and call is not None:
            self.metrics.calls_ended.labels(call.end_reason or "completed").inc()
            if call.specialist_id:
                await self._deferrable(
                    "finish_wrap_up", self.backend.finish_wrap_up(call.specialist_id, now), call_id
                )
            self.wake.set()
        return done
