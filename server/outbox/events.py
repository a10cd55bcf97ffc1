"""Domain events: what happened, as frozen data, with no I/O.

Each event has a stable ``kind`` (what the outbox stores) and the call it belongs
to, if any (delivery is ordered per call). :func:`encode` and :func:`decode` turn
one into the JSON the outbox keeps and back. Every event is written to the outbox
in the transaction of the change it reports; what reacts to it is the list of
handlers in ``server/bootstrap.py`` (``outbox_handlers``).

=====================  ===========================================  =====================
event                  written when (module)                        for
=====================  ===========================================  =====================
CallQueued             a call joins the queue: created, answered    the record (no
                       from a callback, or back after an offer      handler)
                       withdrawn (server/calls/queueing.py,
                       base.py ``withdraw_offer``,
                       server/callbacks/service.py)
OfferMade              an offer is recorded (server/calls/           the record (no
                       dispatcher.py)                               handler)
CallAccepted           a specialist wins the call                   media set-up, the
                       (server/calls/offers.py)                     recording notice
CallActive             the call's media is up for the first time    a redirect's transfer,
                       (server/media/signals.py)                    random liveness checks
ConversationEnded      the conversation ends                        pending operations,
                       (server/calls/conversation.py)               media, recording,
                                                                    integrity clean-up
OperationDecided       an operation is executed, fails, is refused  the record (no
                       by the customer, blocked, or abandoned with  handler)
                       the call (server/operations/service.py,
                       liveness.py)
=====================  ===========================================  =====================

"The record": the kinds in :data:`RECORD_ONLY` have nothing to do outside their
transaction; they are written already delivered (one insert, no relay pass), so
that the outbox table holds these steps of each call, in order, for the time it
keeps delivered events (a feed for whatever reads it later; the tamper-evident
record of every step is the audit chain).
A kind that gains a handler leaves :data:`RECORD_ONLY`, and its writer then
flushes the call's events after the commit, as the others do.
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass
from typing import Any, ClassVar


@dataclass(frozen=True)
class Event:
    kind: ClassVar[str] = "event"
    call_id: str | None
    at: float


@dataclass(frozen=True)
class CallQueued(Event):
    """The call waits in the queue; ``cause``: ``created``, ``callback`` (a
    customer answered a callback), or why an offer went back: ``declined``,
    ``offer_missed``, ``offer_stale``, ``desk_disconnected``, ``desk_node_gone``,
    ``repaired`` (the repair pass) or ``node_restarted``."""

    kind: ClassVar[str] = "call_queued"
    cause: str = "created"


@dataclass(frozen=True)
class OfferMade(Event):
    kind: ClassVar[str] = "offer_made"
    specialist_id: str = ""
    offer_id: str = ""


@dataclass(frozen=True)
class CallAccepted(Event):
    kind: ClassVar[str] = "call_accepted"
    specialist_id: str = ""


@dataclass(frozen=True)
class CallActive(Event):
    """Both parties' media connected for the first time (connecting → active)."""

    kind: ClassVar[str] = "call_active"


@dataclass(frozen=True)
class ConversationEnded(Event):
    """A call left conversation (connecting or active) for wrap-up."""

    kind: ClassVar[str] = "conversation_ended"
    reason: str = ""


@dataclass(frozen=True)
class OperationDecided(Event):
    """``decision``: ``executed``, ``failed``, ``rejected`` (by the customer),
    ``blocked`` (by the risk engine or a specialist's review) or ``abandoned``
    (still pending when the conversation ended)."""

    kind: ClassVar[str] = "operation_decided"
    operation_id: str = ""
    decision: str = ""


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (
        CallQueued,
        OfferMade,
        CallAccepted,
        CallActive,
        ConversationEnded,
        OperationDecided,
    )
}

# Written already delivered: no handler takes them (see the module doc).
RECORD_ONLY: frozenset[str] = frozenset({CallQueued.kind, OfferMade.kind, OperationDecided.kind})


def encode(event: Event) -> dict[str, Any]:
    """The event's fields as JSON-ready data (without ``kind``, stored beside it)."""
    return dataclasses.asdict(event)


def decode(kind: str, payload: dict[str, Any]) -> Event:
    """The event ``encode`` made; ``KeyError`` for a kind this code does not know."""
    cls = KINDS[kind]
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in payload.items() if name in names})
