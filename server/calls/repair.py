"""Keeping Redis (what is happening now) in line with SQL (what happened).

Two jobs, both run by every node from its dispatcher loop, both idempotent and
safe on several nodes at once (every write is an idempotent script, and SQL's
conditional transitions stay the final word on who holds a call):

- **Rebuild after a loss.** The backend's *epoch* is a generation key in Redis,
  created with ``SET NX`` by the first node that finds it missing. A Redis that
  restarted empty has none, so the first node to look names a new one, and every
  node that knew the old one sees the change. Each node then rebuilds: first the
  calls specialists hold (so no busy desk is offered a call), then every waiting
  call from SQL, then the desks whose sockets it holds. Offers flow on the next
  dispatch pass.
- **Reconciliation.** Every ``repair_interval_s`` while the queue moves (and
  every twelfth interval while it stands still), a node compares the ids routing
  has (``live_calls``: not a snapshot of every call's details) with SQL's
  states and repairs what has had no owner for two passes in a row (one pass
  could be a step in flight between Redis and SQL): a waiting call missing from
  the queue is put back; a call SQL has as ``offered`` with no
  live offer goes back to ``queued``; a queued call SQL has finished is taken
  out; a specialist routing has as holding a call SQL says they do not hold is
  freed, and one SQL says holds a call gets it back. Each repair is logged.
  Pending operations of a call no longer in conversation are cancelled (the end
  of the call does that first; this catches an end whose step failed).
"""

from __future__ import annotations

import asyncio
from collections.abc import Awaitable, Callable

import structlog
from sqlalchemy.ext.asyncio import AsyncSession

from server.auth.principal import Role
from server.tasks import stop_if_cancel_requested

from . import repository as repo
from .service import CallService
from .state import HELD, IN_CONVERSATION, OPEN, WAITING, CallState

# The calls that still have an operation waiting for review or confirmation
# (server/operations/pending.py): passed in, as operations build on calls.
PendingOperationCalls = Callable[[AsyncSession], Awaitable[list[str]]]

log = structlog.get_logger(__name__)

_EPOCH_EVERY_S = 1.0
# A node renews its liveness key this often; the key lives for _NODE_TTL_S, so a
# killed node's desks are logged out within that bound (not the presence TTL).
_NODE_RENEW_EVERY_S = 2.0
_NODE_TTL_S = 8.0
# With the queue still, a reconciliation runs once in this many intervals.
_RECONCILE_IDLE_EVERY = 12


class LiveStateRepair:
    """Owned by the dispatcher: :meth:`tick` runs on its every pass."""

    def __init__(
        self,
        service: CallService,
        node_id: str,
        interval_s: float,
        pending_operation_calls: PendingOperationCalls,
    ) -> None:
        self.service = service
        self.pending_operation_calls = pending_operation_calls
        self.node_id = node_id
        self.interval_s = interval_s
        self._epoch: str | None = None
        self._last_epoch_check = float("-inf")
        self._last_reconcile = float("-inf")
        self._suspects: set[tuple[str, str]] = set()
        self._reconciled_version = -1
        self._idle_passes = 0
        # Passes run one at a time: a pass whose snapshot predates another's must
        # not overwrite the suspects that one found.
        self._reconciling = asyncio.Lock()
        self.rebuilds = 0
        self.repairs = 0

    async def tick(self, now: float) -> None:
        """Each job is guarded on its own: one failing never stops the others."""
        if now - self._last_epoch_check >= _EPOCH_EVERY_S:
            self._last_epoch_check = now
            await self._guarded("epoch", lambda: self.check_epoch(now))
        if now - self._last_reconcile >= self.interval_s:
            self._last_reconcile = now
            await self._guarded("reconcile", lambda: self._reconcile_if_moved(now))

    async def _guarded(self, job: str, run: Callable[[], Awaitable[object]]) -> None:
        try:
            await run()
        except Exception as exc:
            log.warning("live_state.job_failed", job=job, error=type(exc).__name__)

    async def keep_alive(self, heartbeats: Callable[[float], Awaitable[None]]) -> None:
        """The node's liveness key and its desks' heartbeats, on their own loop:
        they need only Redis, so a database that stalls the dispatcher never
        makes this node look dead (which would log its desks out)."""
        while True:
            stop_if_cancel_requested("node keep-alive")
            await self._guarded("clock", self._refresh_clock)
            await self._guarded("node_alive", self._renew_node)
            await self._guarded("heartbeats", lambda: heartbeats(self.service.clock()))
            await asyncio.sleep(_NODE_RENEW_EVERY_S)

    async def _refresh_clock(self) -> None:
        refresh = getattr(self.service.clock, "refresh", None)
        if refresh is not None:
            await refresh()

    async def _renew_node(self) -> None:
        backend = self.service.backend
        await backend.node_alive(self.node_id, _NODE_TTL_S)
        for offer in await backend.reap_dead_nodes(self.service.clock()):
            await self._offer_lost(offer.call_id, "desk_node_gone")

    async def check_epoch(self, now: float) -> bool:
        """Rebuild if the live state's generation changed; True if it did."""
        epoch = await self.service.backend.epoch()
        known, self._epoch = self._epoch, epoch
        if known is None or known == epoch:
            return False
        log.warning("live_state.lost", node_id=self.node_id)
        await self.rebuild(now)
        return True

    async def rebuild(self, now: float) -> None:
        """Idempotent rebuild of the queue and the desks from SQL and the sockets
        this node holds. SQL's ``offered`` calls keep that state: the next offer
        may be recorded over it, and reconciliation withdraws any left over."""
        service = self.service
        restored = await service.restore_assignments(now)
        async with service.sessions() as session:
            waiting = await repo.calls_in_states(session, set(WAITING))
        for call in waiting:
            await service.requeue(call, now)
        desks = service.hub.local_connections(Role.SPECIALIST)
        for subject, connection in desks:
            await service.relogin_desk(subject, connection)
        self.rebuilds += 1
        log.info(
            "live_state.rebuilt",
            node_id=self.node_id,
            waiting=len(waiting),
            held=restored,
            desks=len(desks),
        )
        service.wake.set()

    async def _reconcile_if_moved(self, now: float) -> None:
        """Reconcile when the queue moved since the last pass, while suspects wait
        for their second look, and at least every ``_RECONCILE_IDLE_EVERY`` passes:
        a pass reads every waiting call (Redis and SQL), which a large queue where
        nothing happens should not pay every few seconds. A Redis step that failed
        after its SQL commit never reached the log, so it asks for a pass itself
        (``repair_due``)."""
        service = self.service
        version = await service.backend.queue_version()
        moved, self._reconciled_version = version != self._reconciled_version, version
        self._idle_passes += 1
        due = service.repair_due
        if moved or due or self._suspects or self._idle_passes >= _RECONCILE_IDLE_EVERY:
            self._idle_passes = 0
            service.repair_due = False
            await self.reconcile(now)

    async def reconcile(self, now: float) -> int:
        """One reconciliation pass; returns how many repairs it made."""
        async with self._reconciling:
            return await self._reconcile(now)

    async def _reconcile(self, now: float) -> int:
        service = self.service
        live = await service.backend.live_calls()
        async with service.sessions() as session:
            open_calls = await repo.states_of_calls_in(session, set(OPEN))
        held_in_routing = {call_id: spec for spec, call_id in live.holding.items()}
        found: set[tuple[str, str]] = set()
        for call_id, (state_value, specialist_id) in open_calls.items():
            state = CallState(state_value)
            if state in WAITING and call_id not in live.waiting:
                found.add(("requeue", call_id))
            elif state is CallState.OFFERED and call_id not in live.offered:
                found.add(("withdraw", call_id))
            elif state in HELD and specialist_id and held_in_routing.get(call_id) != specialist_id:
                found.add(("restore", call_id))
        for call_id in live.waiting:
            waiting = open_calls.get(call_id)
            if waiting is None or CallState(waiting[0]) not in WAITING:
                found.add(("dequeue", call_id))
        for specialist_id, call_id in live.holding.items():
            held = open_calls.get(call_id)
            if held is None or held[1] != specialist_id or CallState(held[0]) not in HELD:
                found.add(("free", specialist_id))
        async with service.sessions() as session:
            for call_id in await self.pending_operation_calls(session):
                owner = open_calls.get(call_id)
                if owner is None or CallState(owner[0]) not in IN_CONVERSATION:
                    found.add(("operations", call_id))
        # Only what was already wrong on the previous pass: one pass may catch a
        # step in flight between Redis and SQL.
        due, self._suspects = found & self._suspects, found
        repaired = 0
        for kind, key in sorted(due):
            if await self._repair(kind, key, now):
                repaired += 1
                log.warning("live_state.repaired", kind=kind, subject=key)
        self.repairs += repaired
        if repaired:
            service.wake.set()
        return repaired

    async def _repair(self, kind: str, key: str, now: float) -> bool:
        service = self.service
        if kind == "free":
            await service.backend.finish_wrap_up(key, now)
            return True
        if kind == "operations":
            async with service.sessions() as session:
                ended = await repo.get_call(session, key)
            if ended is None or CallState(ended.state) in IN_CONVERSATION:
                return False
            return await service.announce_end_again(ended, now)
        async with service.sessions() as session:
            call = await repo.get_call(session, key)
            if kind == "withdraw":
                done = await service.withdraw_offer(session, key, now, "repaired")
                await session.commit()
                return done
        if kind == "requeue" and call is not None and CallState(call.state) in WAITING:
            await service.requeue(call, now)
            return True
        if kind == "dequeue" and (call is None or CallState(call.state) not in WAITING):
            await service.backend.remove(key, now)
            return True
        if kind == "restore" and call is not None and CallState(call.state) in HELD:
            return await service.restore_assignments(now) > 0
        return False

    async def _offer_lost(self, call_id: str, reason: str) -> None:
        """An offer withdrawn because its desk is gone: not a miss."""
        service = self.service
        now = service.clock()
        async with service.sessions() as session:
            await service.withdraw_offer(session, call_id, now, reason)
            await repo.add_event(session, call_id, now, "offer_withdrawn", reason=reason)
            await session.commit()
        self.service.metrics.offer_outcomes.labels("withdrawn").inc()
        self.service.wake.set()
