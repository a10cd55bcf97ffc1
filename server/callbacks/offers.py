"""The callback option while a customer waits: fields added to ``queue.update``.

A hook of the call service (``CallService(queue_update_hooks=...)``), so it needs
no call service itself: the database and the policy are enough, and the call
service can be built with it.
"""

from __future__ import annotations

from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls.state import CallState

from . import repository as repo
from .messages import offer_words
from .policy import CallbackPolicy, why_not_offered

# (call state, callback allowed, customer consent, do-not-call), as offer_facts reads them.
OfferFacts = tuple[str, bool, bool, bool]


class CallbackOffers:
    """Says, in each ``queue.update``, whether the customer may ask to be called back."""

    def __init__(self, sessions: async_sessionmaker[AsyncSession], policy: CallbackPolicy) -> None:
        self.sessions = sessions
        self.policy = policy
        self._offer_words = offer_words(policy.hours).model_dump()

    async def annotate_queue_updates(self, updates: dict[str, dict[str, Any]]) -> None:
        """Add ``callback_available`` (and the words offering it) to ``queue.update``s.

        A call SQL does not show is taken out of ``updates``: a create enqueues
        before it commits, so its first standing can come before its row, and an
        update then would tell the customer no callback is possible."""
        if not updates:
            return
        async with self.sessions() as session:
            facts = await repo.offer_facts(session, updates.keys())
        for call_id in list(updates):
            found = facts.get(call_id)
            if found is None:
                del updates[call_id]
            else:
                self.annotate(updates[call_id], found)

    def annotate(self, message: dict[str, Any], facts: OfferFacts | None) -> None:
        """Add the callback option to one ``queue.update``, from its call's facts
        (:func:`~server.callbacks.repository.offer_facts`; None: no such call)."""
        available = facts is not None and (
            why_not_offered(
                queued=facts[0] == CallState.QUEUED.value,
                callback_allowed=facts[1],
                consent=facts[2],
                do_not_call=facts[3],
                estimated_wait_s=message.get("estimated_wait_s"),
                threshold_s=self.policy.threshold_s,
            )
            is None
        )
        message["callback_available"] = available
        if available:
            message["callback_message"] = self._offer_words
