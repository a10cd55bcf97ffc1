"""Fakes for the unit tier: a clock the test moves, a notifier that records what
services send, and the call service with its dispatcher on the in-process queue
backend and a local SQLite copy of a migrated, seeded template (no HTTP, no
sockets, no sleeping: time passes when the test moves the clock)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterable, Sequence
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Principal, Role
from server.calls.dispatcher import Dispatcher
from server.calls.service import CallRequest, CallService
from server.db.engine import make_engine, make_sessionmaker
from server.db.models import Call, CallEvent
from server.metrics import Metrics
from server.operations.pending import calls_with_pending_operations
from server.outbox.relay import Handler, Outbox, RelayTiming
from server.routing.memory import MemoryQueueBackend
from server.routing.model import DesiredPresence
from server.settings import Settings

START = 1_767_225_600.0  # 2026-01-01 00:00 UTC


class FakeClock:
    """``clock()`` is whatever the test says; :meth:`advance` moves it forward.

    Each reading also moves it on by a microsecond, as a real clock would have:
    the services rely on time passing between two readings (a cache "at most
    0 s old" is fresh only then), and a microsecond never crosses a deadline a
    test sets.
    """

    TICK_S = 1e-6

    def __init__(self, now: float = START) -> None:
        self.now = now

    def __call__(self) -> float:
        self.now += self.TICK_S
        return self.now

    def advance(self, seconds: float) -> float:
        self.now += seconds
        return self.now


@dataclass
class FakeNotifier:
    """Stands in for the hub: records every message, holds a set of connected parties."""

    sent: list[tuple[Role, str, dict[str, Any]]] = field(default_factory=list)
    connected: set[tuple[Role, str]] = field(default_factory=set)

    async def start(self) -> None:
        return None

    async def close(self) -> None:
        return None

    async def send(self, role: Role, subject: str, message: dict[str, Any]) -> None:
        self.sent.append((role, subject, message))

    def send_local(self, role: Role, subject: str, message: dict[str, Any]) -> None:
        self.sent.append((role, subject, message))

    async def publish(self, role: Role, subject: str, message: dict[str, Any]) -> None:
        """To other nodes: there are none (what ``send_local`` got is all)."""

    def is_connected_here(self, role: Role, subject: str) -> bool:
        return (role, subject) in self.connected

    def local_subjects(self, role: Role) -> list[str]:
        return sorted(subject for r, subject in self.connected if r is role)

    def local_connections(self, role: Role) -> Iterable[tuple[str, str]]:
        return [(subject, f"conn-{subject}") for r, subject in self.connected if r is role]

    def to(self, subject: str, kind: str) -> list[dict[str, Any]]:
        """Messages of type ``kind`` sent to ``subject``, oldest first."""
        return [m for _, s, m in self.sent if s == subject and m.get("type") == kind]


@dataclass
class Branch:
    """The call service and dispatcher of one node, on fakes."""

    settings: Settings
    clock: FakeClock
    notifier: FakeNotifier
    sessions: async_sessionmaker[AsyncSession]
    calls: CallService
    dispatcher: Dispatcher
    # The outbox the call service writes its events to, when the test gave handlers.
    outbox: Outbox | None = None

    async def tick(self, seconds: float = 0.0) -> None:
        """Move the clock, then run one dispatcher pass (as its loop would)."""
        self.clock.advance(seconds)
        await self.dispatcher.run_once()

    async def customer_calls(self, customer_id: str, **request: Any) -> str:
        self.notifier.connected.add((Role.CUSTOMER, customer_id))
        view, _created = await self.calls.create_call(
            Principal(Role.CUSTOMER, customer_id),
            CallRequest(
                dialect=request.get("dialect"),
                intent=request.get("intent"),
                ticket=None,
                callback_allowed=request.get("callback_allowed", False),
            ),
        )
        call_id: str = view["call_id"]
        return call_id

    async def desk_available(
        self, specialist_id: str, presence: DesiredPresence = DesiredPresence.AVAILABLE
    ) -> None:
        """The desk's socket is up (here) and it asks for ``presence``."""
        self.notifier.connected.add((Role.SPECIALIST, specialist_id))
        await self.calls.desk_connected(specialist_id, f"conn-{specialist_id}")
        await self.calls.set_presence(Principal(Role.SPECIALIST, specialist_id), presence)

    async def call(self, call_id: str) -> Call:
        async with self.sessions() as session:
            found = await session.get(Call, call_id)
            assert found is not None
            return found

    async def timeline(self, call_id: str) -> list[str]:
        from sqlalchemy import select

        async with self.sessions() as session:
            rows = await session.execute(
                select(CallEvent.kind)
                .where(CallEvent.call_id == call_id)
                .order_by(CallEvent.event_id)
            )
            return [kind for (kind,) in rows.all()]


@asynccontextmanager
async def branch(
    database_url: str,
    *,
    outbox_handlers: Sequence[Handler] | None = None,
    outbox_timing: RelayTiming | None = None,
    record_only: frozenset[str] = frozenset(),
    **overrides: Any,
) -> AsyncIterator[Branch]:
    """The services over ``database_url`` (a migrated, seeded SQLite copy), on a fake clock.

    With ``outbox_handlers`` the call service writes its events to an outbox with
    those handlers (its relay is not started: the test starts it if it wants one).
    Its retries follow real time, so that a backoff is not waiting for the fake clock."""
    settings = Settings(dev_mode=True, database_url=database_url, log_level="WARNING", **overrides)
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    clock = FakeClock()
    notifier = FakeNotifier()
    backend = MemoryQueueBackend(settings.routing_policy())
    # The notifier stands in for the hub: it has the methods the services call.
    outbox = (
        Outbox(
            sessions,
            settings.node_id,
            outbox_timing,
            handlers=outbox_handlers,
            record_only=record_only,
        )
        if outbox_handlers is not None
        else None
    )
    calls = CallService(
        settings, sessions, backend, notifier, Metrics(), clock=clock, outbox=outbox
    )  # type: ignore[arg-type]
    dispatcher = Dispatcher(calls, calls_with_pending_operations)
    try:
        yield Branch(settings, clock, notifier, sessions, calls, dispatcher, outbox)
    finally:
        if outbox is not None:
            await outbox.stop()
        await backend.close()
        await engine.dispose()
