"""The queue backend interface.

Two implementations satisfy it: :mod:`server.routing.memory` (one process, the
embedded default) and :mod:`server.routing.redis_backend` (several nodes sharing one
Redis). Both pass the same contract suite in ``tests/routing/``.

Invariants every implementation keeps, whatever the interleaving of callers:

- a waiting call stays in the queue structure until it is accepted or removed, so a
  crash between "offer" and "accept" never loses it (the lease expires and it is
  offered again, in its old place);
- a call is offered to at most one specialist at a time, and held by at most one;
- a specialist has at most one offer or call at a time;
- among the waiting calls a specialist is eligible for, the one with the best
  rank key is offered first, and among the eligible available specialists the one
  idle the longest gets it.

All methods take ``now`` from the caller; backends never read the clock.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Protocol

from .model import (
    Assignment,
    DesiredPresence,
    ExpiredOffer,
    Offer,
    QueuedCall,
    QueueSnapshot,
    RoutingPolicy,
    SpecialistProfile,
    SpecialistState,
    SpecialistView,
)
from .standing import LiveCalls, QueueChanges, Staffing, Standing


class QueueBackend(Protocol):
    """Live routing state: who waits, who works, which offers are out."""

    policy: RoutingPolicy

    async def close(self) -> None:
        """Release connections; safe to call twice."""

    # -- calls ---------------------------------------------------------------
    async def enqueue(self, call: QueuedCall, now: float) -> int:
        """Add a waiting call (idempotent by ``call_id``); return its 1-based position."""

    async def remove(self, call_id: str, now: float) -> Offer | None:
        """Take a waiting call out (cancelled, abandoned). Returns the offer it
        withdrew, if one was out; the specialist of that offer is available again
        and it does not count as a miss. Unknown calls are ignored (returns None)."""

    async def enqueue_standing(self, call: QueuedCall, now: float) -> Standing:
        """:meth:`enqueue`, answered with the call's whole standing (position and
        the calls ahead of it by step), from the same atomic step."""

    async def position(self, call_id: str) -> int | None:
        """1-based place among all waiting calls, or None if not waiting."""

    async def standings(self, call_ids: Sequence[str]) -> tuple[int, list[Standing]]:
        """The standings of those of ``call_ids`` that wait (O(log n) each, from the
        sorted sets), with the change-log version they reflect."""

    async def queue_changes(self, since: int) -> QueueChanges:
        """The change-log entries after version ``since`` (calls that arrived, left
        or moved to a later step), in order; cheap when nothing changed."""

    async def queue_version(self) -> int:
        """The change log's version now (one read; it moves with every change)."""

    async def staffing(self) -> Staffing:
        """Working and idle specialists per pool (O(specialists))."""

    # -- specialists -----------------------------------------------------------
    async def register(self, profile: SpecialistProfile) -> None:
        """Create or update what routing knows of a specialist (idempotent)."""

    async def connect(
        self, specialist_id: str, now: float, connection: str = ""
    ) -> SpecialistState:
        """The desk's socket ``connection`` is up: the specialist is logged in, and
        that connection is now the one their presence belongs to."""

    async def heartbeat(self, specialist_id: str, now: float, connection: str = "") -> bool:
        """The desk's socket is still alive. Never logs a desk in by itself: returns
        False when routing lost the desk (unknown, or reaped while ``connection``
        lived), and the caller registers and connects it again."""

    async def disconnect(
        self, specialist_id: str, now: float, connection: str = ""
    ) -> Offer | None:
        """The desk's socket is gone: no more offers. Returns an offer it withdrew.
        A named ``connection`` that is no longer the desk's live one changes nothing
        (the desk came back through another socket or node)."""

    async def set_presence(
        self, specialist_id: str, desired: DesiredPresence, now: float
    ) -> SpecialistState:
        """Record what the specialist asked for; return the resulting state.

        While reserved, busy or in wrap-up the state is unchanged and the desired
        presence applies when the specialist is free again. Choosing ``available``
        resets the count of consecutive misses.
        """

    async def specialist(self, specialist_id: str) -> SpecialistView | None: ...

    async def restore_assignment(
        self, specialist_id: str, call_id: str, wrap_up: bool, now: float
    ) -> bool:
        """Routing lost what a specialist holds; SQL says they hold ``call_id``
        (``wrap_up``: the conversation is over). Idempotent; a specialist who holds
        or is offered another call is left alone. True if it changed anything."""

    async def epoch(self) -> str:
        """The live state's generation: changes when the state was lost (Redis
        restarted empty), so every node knows to rebuild it from SQL."""

    async def node_alive(self, node_id: str, ttl_s: float) -> None:
        """``node_id`` is alive for ``ttl_s`` more seconds (renewed by each node)."""

    async def reap_dead_nodes(self, now: float) -> list[Offer]:
        """Log out desks connected through a node that stopped renewing its
        liveness; returns offers this withdrew (not misses)."""

    async def reap_stale(self, now: float) -> list[Offer]:
        """Disconnect specialists whose desks have not been seen for
        ``policy.presence_ttl_s``; return offers this withdrew."""

    # -- offers ----------------------------------------------------------------
    async def dispatch(self, now: float) -> list[Offer]:
        """Advance ladders and atomically reserve as many call/specialist pairs as
        the rules allow. Safe to run concurrently from several nodes."""

    async def expire_offers(self, now: float) -> list[ExpiredOffer]:
        """Withdraw offers whose lease ended; each counts as a miss, and
        ``policy.max_consecutive_misses`` in a row puts the specialist away."""

    async def accept(self, offer_id: str, specialist_id: str, now: float) -> Assignment:
        """Turn an offer into an assignment; the call leaves the queue.

        Raises :class:`~server.routing.errors.OfferExpired` if the offer is not
        live or was made to someone else."""

    async def decline(self, offer_id: str, specialist_id: str, now: float) -> Offer:
        """Give the call back in its place; not a miss. The specialist goes to the
        back of the idle order. Raises ``OfferExpired`` like :meth:`accept`."""

    async def pending_offer(self, specialist_id: str) -> Offer | None: ...

    # -- after accept ----------------------------------------------------------
    async def end_call(self, specialist_id: str, now: float) -> None:
        """The held call ended: the specialist moves to wrap-up."""

    async def finish_wrap_up(self, specialist_id: str, now: float) -> SpecialistState:
        """Wrap-up done: the specialist is available (or away, if they asked)."""

    async def live_calls(self) -> LiveCalls:
        """The ids of the waiting calls (and of those offered) and who holds which
        call: one consistent read, for repair."""

    async def snapshot(self, now: float) -> QueueSnapshot:
        """All waiting calls in queue order and all known specialists: O(n), for
        the supervisor's views and for repair, never for a routine update."""
