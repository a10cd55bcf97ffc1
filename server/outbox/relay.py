"""The outbox: the writer the services append events with, and the relay that
delivers them after the commit.

Guarantee: every event committed to the outbox reaches every handler that takes
its kind **at least once**, also after the process died between the commit and
the delivery (pending events are read from the table at start and on every
pass). Handlers must therefore be idempotent. For each handler, the events of
one call are delivered in the order they were written: a later event of a call
waits while an earlier one is failing for that handler. Handlers are isolated:
one that fails (or overruns its bound) is logged with the event id and retried
with exponential backoff, and never keeps another handler from its delivery.

Kinds written as a record only (:data:`server.outbox.events.RECORD_ONLY`, no
handler takes them) are inserted already delivered: no relay pass reads them.
:class:`OutboxWriter` is the writing half alone, for a service that only writes
such kinds (it is built before the relay, whose handlers may need that service).

The relay is owned by :class:`Outbox`: :meth:`Outbox.start` begins the delivery
task, :meth:`Outbox.stop` cancels and awaits it. :meth:`Outbox.flush` delivers a
call's pending events at once, in the caller's task (used right after a commit so
that effects follow the change as promptly as before the outbox existed). One
call's events are delivered by one task at a time (a flush and the loop take the
call's lock), and calls never wait for each other: a handler hanging for one call
delays no other call's flush.
"""

from __future__ import annotations

import asyncio
import contextlib
import time
from collections.abc import AsyncIterator, Awaitable, Callable, Sequence
from dataclasses import dataclass

import structlog
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.failures import dependency_failure
from server.tasks import cancel_and_wait, stop_if_cancel_requested

from . import store
from .events import Event, decode

log = structlog.get_logger(__name__)


@dataclass(frozen=True)
class Handler:
    """What reacts to events of ``kinds``. ``name`` is stored with each delivery:
    keep it stable, or events already handled are handled again."""

    name: str
    kinds: frozenset[str]
    handle: Callable[[Event], Awaitable[None]]


@dataclass(frozen=True)
class RelayTiming:
    poll_s: float = 1.0  # a pass at least this often (retries, adopted events)
    handler_timeout_s: float = 30.0  # one handler call's bound
    retry_base_s: float = 0.5  # first retry after this; doubles per failure
    retry_cap_s: float = 60.0
    adopt_after_s: float = 60.0  # another node's undelivered event is taken over after this
    batch: int = 200
    keep_delivered_s: float = 7 * 86400.0  # delivered events are kept this long (for audit)
    prune_every_s: float = 3600.0


class OutboxWriter:
    """Appends events in the caller's transaction; ``record_only`` kinds are written
    as delivered (nothing would ever deliver them)."""

    def __init__(self, node_id: str, record_only: frozenset[str] = frozenset()) -> None:
        self.node_id = node_id
        self.record_only = record_only

    def append(self, session: AsyncSession, event: Event) -> str:
        """Write ``event`` in the caller's transaction (delivered once it commits)."""
        return store.append(session, event, self.node_id, delivered=event.kind in self.record_only)


class Outbox:
    """Appends events in the caller's transaction and delivers them (see module doc)."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        node_id: str,
        timing: RelayTiming | None = None,
        clock: Callable[[], float] = time.time,
        handlers: Sequence[Handler] = (),
        record_only: frozenset[str] = frozenset(),
    ) -> None:
        """``handlers``: every handler of the events, in delivery order (per event);
        fixed for the outbox's life. Without any, events are written and kept.
        ``record_only``: kinds written as delivered; no handler may take one."""
        names = [handler.name for handler in handlers]
        if len(set(names)) != len(names):
            raise ValueError(f"outbox handler names must be unique: {names}")
        taken = sorted(kind for handler in handlers for kind in handler.kinds & record_only)
        if taken:
            raise ValueError(f"record-only kinds have no handler: {taken}")
        self.writer = OutboxWriter(node_id, record_only)
        self.sessions = sessions
        self.node_id = node_id
        self.timing = timing or RelayTiming()
        self.clock = clock
        self._handlers: tuple[Handler, ...] = tuple(handlers)
        self._task: asyncio.Task[None] | None = None
        self._wake = asyncio.Event()
        # Set while the relay waits between passes (none running).
        self._between_passes = asyncio.Event()
        # One delivery at a time per call (or per event without a call), so that a
        # flush and the loop never deliver the same event twice, while a flush
        # never waits for another call's slow handler: lock and how many hold or
        # wait for it (the entry goes once none does).
        self._call_locks: dict[str, tuple[asyncio.Lock, int]] = {}
        # (event id, handler) -> (failures so far, not before this clock reading)
        self._retries: dict[tuple[str, str], tuple[int, float]] = {}
        self._last_prune = float("-inf")

    # -- writing -----------------------------------------------------------------
    def append(self, session: AsyncSession, event: Event) -> str:
        """Write ``event`` in the caller's transaction (delivered once it commits)."""
        return self.writer.append(session, event)

    async def has_pending(self, call_id: str, kind: str) -> bool:
        """Whether ``call_id`` has an undelivered event of ``kind``."""
        async with self.sessions() as session:
            return await store.has_pending(session, call_id, kind)

    # -- delivering --------------------------------------------------------------
    @property
    def handlers(self) -> tuple[Handler, ...]:
        return self._handlers

    def start(self) -> None:
        """Deliver to the handlers from now on (also what an earlier run left)."""
        if self._task is not None:
            raise RuntimeError("the outbox relay is already running")
        self._task = asyncio.create_task(self._run(), name="outbox-relay")

    async def stop(self) -> None:
        """Cancel the relay and wait for it; safe to call twice. Undelivered events
        stay in the table and are delivered by the next start."""
        task, self._task = self._task, None
        if task is not None:
            await cancel_and_wait(task)

    def wake(self) -> None:
        self._wake.set()

    async def between_passes(self) -> None:
        """Return once the relay has finished a pass and waits for the next."""
        await self._between_passes.wait()

    async def flush(self, call_id: str) -> int:
        """Deliver ``call_id``'s pending events now; failures are left to the relay.
        Returns how many events were completely delivered."""
        if not self._handlers:
            return 0
        try:
            return await self.deliver_pending(call_id=call_id)
        except Exception as exc:
            # The change has committed; the relay delivers once the database is back.
            log.warning(
                "outbox.flush_failed",
                call_id=call_id,
                error=type(exc).__name__,
                dependency=dependency_failure(exc) is not None,
            )
            self.wake()
            return 0

    async def deliver_pending(self, call_id: str | None = None) -> int:
        """One pass over pending events (all, or ``call_id``'s); how many it
        completely delivered."""
        now = self.clock()
        async with self.sessions() as session:
            rows = await store.pending(
                session,
                node_id=self.node_id,
                adopt_before=now - self.timing.adopt_after_s,
                call_id=call_id,
                limit=self.timing.batch,
            )
            events = [(row.event_id, row.call_id, row.kind, dict(row.payload)) for row in rows]
        by_call: dict[str, list[tuple[str, str | None, str, dict[str, object]]]] = {}
        for event in events:
            by_call.setdefault(event[1] or event[0], []).append(event)
        complete = 0
        for key, of_call in by_call.items():
            async with self._lock_of(key):
                complete += await self._deliver_call(of_call)
        return complete

    async def _deliver_call(
        self, events: list[tuple[str, str | None, str, dict[str, object]]]
    ) -> int:
        """One call's pending events, in order; how many are now complete. What is
        already delivered is read under the call's lock (a flush may have delivered
        some since the pass read them), and what this delivered is recorded in one
        transaction at the end: every handler that succeeded, every event that is
        complete. A process that dies before that commit runs those handlers again
        (they are idempotent); one that dies after it never does."""
        async with self.sessions() as session:
            done = await store.delivered_handlers(session, [e[0] for e in events])
        # (call id or event id, handler) whose earlier event is still pending:
        # that handler gets none of the call's later events in this pass.
        blocked: set[tuple[str, str]] = set()
        handled: list[tuple[str, str, int]] = []
        complete: list[str] = []
        for event_id, event_call, kind, payload in events:
            if await self._deliver_one(event_id, event_call, kind, payload, done, blocked, handled):
                complete.append(event_id)
        if handled or complete:
            at = self.clock()
            async with self.sessions() as session:
                await store.mark_handled(session, handled, at)
                if complete:
                    await store.mark_delivered(session, complete, at)
                await session.commit()
        return len(complete)

    @contextlib.asynccontextmanager
    async def _lock_of(self, key: str) -> AsyncIterator[None]:
        lock, users = self._call_locks.get(key, (asyncio.Lock(), 0))
        self._call_locks[key] = (lock, users + 1)
        try:
            async with lock:
                yield
        finally:
            lock, users = self._call_locks[key]
            if users == 1:
                del self._call_locks[key]
            else:
                self._call_locks[key] = (lock, users - 1)

    async def _deliver_one(
        self,
        event_id: str,
        event_call: str | None,
        kind: str,
        payload: dict[str, object],
        done: set[tuple[str, str]],
        blocked: set[tuple[str, str]],
        handled: list[tuple[str, str, int]],
    ) -> bool:
        try:
            event = decode(kind, payload)
        except (KeyError, TypeError):
            log.error("outbox.unknown_event", event_id=event_id, kind=kind)
            return False
        complete = True
        for handler in self._handlers:
            if kind not in handler.kinds or (event_id, handler.name) in done:
                continue
            order_key = (event_call or event_id, handler.name)
            retry = self._retries.get((event_id, handler.name))
            if order_key in blocked or (retry is not None and retry[1] > self.clock()):
                blocked.add(order_key)
                complete = False
                continue
            failures = retry[0] if retry else 0
            if await self._call(handler, event, event_id, failures):
                handled.append((event_id, handler.name, failures))
            else:
                blocked.add(order_key)
                complete = False
        return complete

    async def _call(self, handler: Handler, event: Event, event_id: str, failures: int) -> bool:
        key = (event_id, handler.name)
        try:
            async with asyncio.timeout(self.timing.handler_timeout_s):
                await handler.handle(event)
        except Exception as exc:
            failures += 1
            delay = min(self.timing.retry_base_s * 2 ** (failures - 1), self.timing.retry_cap_s)
            self._retries[key] = (failures, self.clock() + delay)
            log.warning(
                "outbox.handler_failed",
                event_id=event_id,
                kind=event.kind,
                call_id=event.call_id,
                handler=handler.name,
                failures=failures,
                retry_in_s=delay,
                error=type(exc).__name__,
                exc_info=dependency_failure(exc) is None,
            )
            return False
        self._retries.pop(key, None)
        return True

    async def prune(self) -> int:
        """Delete events delivered longer ago than ``keep_delivered_s``; how many."""
        self._last_prune = self.clock()
        async with self.sessions() as session:
            pruned = await store.prune(session, self._last_prune - self.timing.keep_delivered_s)
            await session.commit()
        return pruned

    async def _run(self) -> None:
        while True:
            stop_if_cancel_requested("outbox relay")
            try:
                await self.deliver_pending()
                if self.clock() - self._last_prune >= self.timing.prune_every_s:
                    await self.prune()
            except Exception as exc:
                if dependency_failure(exc) is None:
                    log.exception("outbox.pass_failed")
                else:
                    log.warning("outbox.pass_failed", error=type(exc).__name__)
            self._between_passes.set()
            try:
                async with asyncio.timeout(self.timing.poll_s):
                    await self._wake.wait()
            except TimeoutError:
                pass
            self._between_passes.clear()
            self._wake.clear()
