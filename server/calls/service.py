"""The call lifecycle as small service functions over SQL, the queue backend and the hub.

Order of effects, and why:

- create: one SQL transaction around the enqueue, so the predicted wait is
  written with the call. Redis failing leaves the call waiting in SQL only (the
  repair pass queues it); SQL failing takes it out of the queue again; an offer
  made before the commit is given back by the dispatcher.
- accept: the queue first (the atomic reservation decides who won), then SQL with a
  conditional update; if the call was cancelled in between, the specialist is
  released and the accept refused.
- cancel: the queue first (so no new offer can be made), then SQL.

Every step that spans SQL and Redis has a compensation, and once SQL has
committed, a failing Redis step never fails the caller (it is logged, and the
repair pass in :mod:`server.calls.repair` reconciles Redis with SQL):

- accept: the call is read before the reservation, so a database that is down
  fails the accept before Redis changes; if the SQL update then fails, the call
  goes back in the queue and the specialist is freed (no miss is counted).
- end, wrap-up, leave the queue: SQL is the record; the parties are told once
  it has committed; pending operations are cancelled by every way a call ends.
"""

from __future__ import annotations

from server.auth.principal import Principal, Role

from .base import (
    CallRequest,
    CallServiceBase,
    QueueUpdateHook,
    TicketGrant,
    TicketResolver,
)
from .conversation import ConversationCommands
from .messages import queue_update
from .offers import OfferCommands
from .queueing import QueueCommands
from .resume import SocketResume
from .state import IN_CONVERSATION, WAITING, CallState, EndReason


class CallService(QueueCommands, OfferCommands, ConversationCommands, SocketResume):
    """Everything that changes a call, and the messages each change sends.

    Every collaborator is given here and fixed for the service's life (the
    bootstrap, ``server/bootstrap.py``, decides them): ``outbox`` takes each
    change's domain events in its transaction (their handlers are the list in the
    bootstrap), ``ticket_resolver`` redeems redirect tickets,
    ``queue_update_hooks`` add fields to ``queue.update`` messages.

    Its parts, one module each: :mod:`.base` (collaborators, reading, rendering),
    :mod:`.queueing` (create, leave the queue, rebuild), :mod:`.offers` (presence,
    accept, decline), :mod:`.conversation` (end, wrap-up), :mod:`.resume` (a desk's
    socket hello and close).
    """

    async def hang_up(self, principal: Principal, call_id: str) -> None:
        """The customer leaves the queue or hangs up; idempotent once ended."""
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            call = await self.load_visible(session, principal, call_id)
        state = CallState(call.state)
        if state in WAITING:
            await self.leave_queue(call_id, EndReason.CANCELLED, now, actor=principal)
        elif state in IN_CONVERSATION:
            await self.end_conversation(call_id, EndReason.COMPLETED, now, actor=principal)


__all__ = [
    "CallRequest",
    "CallService",
    "CallServiceBase",
    "QueueUpdateHook",
    "TicketGrant",
    "TicketResolver",
    "queue_update",
]
