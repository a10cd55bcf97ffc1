"""Domain events: what happened, as frozen data, with no I/O.

Each event has a stable ``kind`` (what the outbox stores) and the call it belongs
to, if any (delivery is ordered per call). :func:`encode` and :func:`decode` turn
one into the JSON the outbox keeps and back.

Written to the outbox today: :class:`ConversationEnded` (server/calls/service.py).
The other kinds are the vocabulary the relay and its tests use; a change that
starts writing one adds its handlers to the list in server/bootstrap.py.
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
    kind: ClassVar[str] = "call_queued"


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
class ConversationEnded(Event):
    """A call left conversation (connecting or active) for wrap-up."""

    kind: ClassVar[str] = "conversation_ended"
    reason: str = ""


@dataclass(frozen=True)
class OperationDecided(Event):
    kind: ClassVar[str] = "operation_decided"
    operation_id: str = ""
    decision: str = ""


KINDS: dict[str, type[Event]] = {
    cls.kind: cls
    for cls in (CallQueued, OfferMade, CallAccepted, ConversationEnded, OperationDecided)
}


def encode(event: Event) -> dict[str, Any]:
    """The event's fields as JSON-ready data (without ``kind``, stored beside it)."""
    return dataclasses.asdict(event)


def decode(kind: str, payload: dict[str, Any]) -> Event:
    """The event ``encode`` made; ``KeyError`` for a kind this code does not know."""
    cls = KINDS[kind]
    names = {field.name for field in dataclasses.fields(cls)}
    return cls(**{name: value for name, value in payload.items() if name in names})
