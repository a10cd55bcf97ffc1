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
- :class:`CoreBanking` and :class:`Ledger`: the bank's core as the branch sees
  it. Each method takes the operation's unit of work as a :class:`Transaction`,
  opaque to the port: the branch's own SQL ledger (``server/banking/ledger.py``)
  finds the operation's database session in it and writes its postings there,
  so that money moves in the same transaction as the operation's state change
  and audit entries, and commits or rolls back with them. A remote core behind
  the port ignores the handle and makes its call idempotent by the operation id;
  what it cannot have is that shared commit (it would need a reserve and a
  confirm, or an outbox of postings).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Protocol

import risk
from server.auth.principal import Role
from server.hub.bus import MessageBus
from server.routing.backend import QueueBackend

__all__ = [
    "Clock",
    "CoreBanking",
    "Ledger",
    "MessageBus",
    "Notifier",
    "QueueBackend",
    "Transaction",
]


class Clock(Protocol):
    """Now, in seconds since the epoch; never read from anywhere else in a service."""

    def __call__(self) -> float: ...


class Notifier(Protocol):
    """Delivers a message to a client by role and subject, on whichever node its
    socket is; never fails the caller (a lost message is put right on reconnect)."""

    async def send(self, role: Role, subject: str, message: dict[str, Any]) -> None: ...


@dataclass(frozen=True)
class Transaction:
    """The operation's unit of work, handed to the core without the port saying
    what it is (the caller opens it, and commits or rolls it back)."""

    handle: object


class CoreBanking(Protocol):
    """The bank's core system as the cloud branch sees it (the contract of each
    method: ``server/banking/core.py``)."""

    async def execute(
        self,
        tx: Transaction,
        operation_id: str,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """Execute a confirmed operation within ``tx``; atomic with it, idempotent per
        operation id. Returns the JSON-ready result to store on the operation
        (money as decimal strings, times as RFC 3339). Raises ``ExecutionFailed``."""
        ...

    async def preflight(
        self,
        tx: Transaction,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Raise ``ExecutionFailed`` when starting the operation is already certain
        to be refused (a medium reported lost, an ambiguous choice)."""
        ...

    async def risk_inputs(
        self, tx: Transaction, customer_id: str, now: datetime
    ) -> tuple[risk.CustomerProfile, risk.RiskLists]:
        """What the risk engine needs to know about the customer at ``now``."""
        ...

    async def operation_facts(
        self,
        tx: Transaction,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """What the risk engine needs to know about the operation beyond its params
        (a time deposit's principal, term and the interest an early break gives
        up), as operation params; ``{}`` when there is nothing to add."""
        ...


class Ledger(CoreBanking, Protocol):
    """The core banking port as implemented over the branch's own SQL ledger, which
    also says which operation kinds it executes."""

    @property
    def kinds(self) -> frozenset[str]: ...
