"""The ports: what a service needs from the world, as ``Protocol``\\ s, in one place.

``server/bootstrap.py`` plugs the concrete adapters in; the unit tier plugs in
fakes (``tests/unit/fakes.py``). A service types each collaborator with one of
these rather than with the concrete class, so that "what does this service use
of the hub?" has a short answer.

- :class:`Clock`: seconds since the epoch. In production the shared clock
  (``server/calls/clock.py``), in the unit tier a fake one that moves only when
  the test says so.
- :class:`Notifier`: how a service reaches a client (wherever its socket is);
  the concrete one is :class:`server.hub.hub.Hub`.
- :data:`QueueBackend`: the queue, presence and offers (in-process or Redis);
  both backends pass one contract suite (``tests/routing``).
- :data:`MessageBus`: node-to-node delivery under the notifier.
- :data:`CoreBanking` and :class:`Ledger`: the bank's core as the branch sees
  it. **Still session-bound**: each method takes the ``AsyncSession`` whose
  transaction also holds the operation's audit entries, so that an effect and
  its audit record commit together. A remote core behind this port needs that
  pairing replaced (an outbox of postings, or a two-step reserve/commit); until
  then the signature keeps the session.
"""

from __future__ import annotations

from typing import Any, Protocol

from server.auth.principal import Role
from server.banking.core import CoreBanking
from server.hub.bus import MessageBus
from server.routing.backend import QueueBackend

__all__ = ["Clock", "CoreBanking", "Ledger", "MessageBus", "Notifier", "QueueBackend"]


class Clock(Protocol):
    """Now, in seconds since the epoch; never read from anywhere else in a service."""

    def __call__(self) -> float: ...


class Notifier(Protocol):
    """Delivers a message to a client by role and subject, on whichever node its
    socket is; never fails the caller (a lost message is put right on reconnect)."""

    async def send(self, role: Role, subject: str, message: dict[str, Any]) -> None: ...


class Ledger(CoreBanking, Protocol):
    """The core banking port as implemented over the branch's own SQL ledger, which
    also says which operation kinds it executes."""

    @property
    def kinds(self) -> frozenset[str]: ...
