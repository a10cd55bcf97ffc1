"""A call's domain events as the services write them (tests/outbox/world.py: the
call service, dispatcher, media coordinator and operations service on fakes, over
a migrated, seeded SQLite file and PostgreSQL clone):

- each is written in the transaction of its change, and the call's events are
  in the order of its changes;
- for every kind, a handler that fails twice is retried and then handles the
  event once, successfully, and the event is marked delivered;
- a call's events reach a handler in order even while one of them is retried;
- record-only kinds are written already delivered: no relay pass reads them, and
  no handler may take one;
- a node SIGKILLed after a call's changes committed and before their events were
  delivered delivers them, in order, once it is started again.
"""

from __future__ import annotations

import asyncio
import os
import signal
import sys
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.calls import repository as repo
from server.calls.state import CallAction
from server.db.banking import Operation
from server.db.outbox import OutboxDelivery
from server.operations.state import PENDING
from server.outbox.events import (
    KINDS,
    RECORD_ONLY,
    CallAccepted,
    CallActive,
    CallQueued,
    ConversationEnded,
    Event,
    OfferMade,
    OperationDecided,
)
from server.outbox.relay import Handler, Outbox, RelayTiming
from tests.plugin.waiting import until

from .world import DESK, FAST, TRANSFER, World, rows_of, world

ROOT = Path(__file__).parents[2]

# What the scenario writes, in order, for its one call.
WRITTEN = [
    CallQueued.kind,  # created
    OfferMade.kind,  # to S06
    CallQueued.kind,  # S06 declined
    OfferMade.kind,  # to S06 again
    CallAccepted.kind,
    CallActive.kind,
    OperationDecided.kind,  # a balance inquiry, executed at once
    ConversationEnded.kind,
]


async def scenario(w: World) -> str:
    """One call through every change that writes an event; returns its id."""
    call_id = await w.queued_and_offered()
    (offer,) = w.branch.notifier.to(DESK, "call.offered")
    await w.branch.calls.decline(w.desk, call_id, offer["offer_id"])
    await w.branch.tick()
    await w.accept(call_id)
    await w.media_up(call_id)
    await w.balance_inquiry(call_id)
    await w.end(call_id)
    return call_id


Seen = list[tuple[str, Event]]


def flaky(times: int, seen: Seen, attempts: list[str]) -> Callable[[Event], Awaitable[None]]:
    """Fails the first ``times`` tries of each event, then records it as handled."""
    tries: dict[tuple[str, float], int] = {}

    async def handle(event: Event) -> None:
        key = (event.kind, event.at)
        attempts.append(event.kind)
        tries[key] = tries.get(key, 0) + 1
        if tries[key] <= times:
            raise RuntimeError("downstream is not there yet")
        seen.append((event.kind, event))

    return handle


async def delivered_all(sessions: async_sessionmaker[AsyncSession], call_id: str) -> bool:
    return all(row.delivered_at is not None for row in await rows_of(sessions, call_id))


async def test_the_services_write_a_calls_events_with_its_changes_in_order(
    database_url: str, tmp_path: Path
) -> None:
    async with world(database_url, tmp_path, handlers=[]) as w:
        call_id = await scenario(w)
        rows = await rows_of(w.branch.sessions, call_id)
        assert [row.kind for row in rows] == WRITTEN
        payloads = [row.payload for row in rows]
        assert [p["cause"] for p in payloads if "cause" in p] == ["created", "declined"]
        accepted = payloads[WRITTEN.index(CallAccepted.kind)]
        assert accepted["specialist_id"] == DESK
        decided = payloads[WRITTEN.index(OperationDecided.kind)]
        assert decided["decision"] == "executed" and decided["operation_id"]
        # The call's state and its events agree: each was written with its change.
        call = await w.branch.call(call_id)
        assert call.state == "wrap_up" and call.media_started_at is not None


async def test_a_lost_accept_writes_no_event(database_url: str, tmp_path: Path) -> None:
    """The accept's conditional update loses (the caller left meanwhile): the
    transaction that would have held CallAccepted rolls back, and none is written."""
    async with world(database_url, tmp_path, handlers=[]) as w:
        call_id = await w.queued_and_offered()
        (offer,) = w.branch.notifier.to(DESK, "call.offered")
        async with w.branch.sessions() as session:
            await repo.transition(session, call_id, CallAction.LEAVE_QUEUE, end_reason="cancelled")
            await session.commit()
        with pytest.raises(Exception, match="already left"):
            await w.branch.calls.accept(w.desk, call_id, offer["offer_id"])
        kinds = [row.kind for row in await rows_of(w.branch.sessions, call_id)]
        assert CallAccepted.kind not in kinds


async def test_an_offer_the_start_up_takes_back_is_recorded_like_any_other(
    database_url: str, tmp_path: Path
) -> None:
    """Every way an offer goes back to the queue writes CallQueued with its cause
    (the call service's withdraw_offer): here a node restarting with an offer open."""
    async with world(database_url, tmp_path, handlers=[]) as w:
        call_id = await w.queued_and_offered()
        assert (await w.branch.call(call_id)).state == "offered"
        await w.branch.calls.rebuild_queue()
        assert (await w.branch.call(call_id)).state == "queued"
        causes = [
            row.payload["cause"]
            for row in await rows_of(w.branch.sessions, call_id)
            if row.kind == CallQueued.kind
        ]
        assert causes == ["created", "node_restarted"]


@pytest.mark.parametrize("kind", sorted(KINDS))
async def test_each_kinds_handler_failing_twice_is_retried_and_handles_it_once(
    kind: str, database_url: str, tmp_path: Path
) -> None:
    seen: Seen = []
    attempts: list[str] = []
    handler = Handler("flaky", frozenset({kind}), flaky(2, seen, attempts))
    async with world(database_url, tmp_path, handlers=[handler]) as w:
        w.outbox.start()
        call_id = await scenario(w)
        sessions = w.branch.sessions
        await until(
            lambda: delivered_all(sessions, call_id), 30, every_s=0.02, what=f"{kind} delivered"
        )
        written = [row for row in await rows_of(sessions, call_id) if row.kind == kind]
        assert written, f"the scenario writes {kind}"
        # Each event of the kind: two failures, then handled once, as it was written.
        assert attempts == [kind] * 3 * len(written)
        assert [event for _, event in seen] == [KINDS[kind](**row.payload) for row in written]
        async with sessions() as session:
            marks = (await session.execute(select(OutboxDelivery))).scalars().all()
        assert sorted((m.handler, m.failures) for m in marks) == [("flaky", 2)] * len(written)


async def test_a_calls_events_reach_a_handler_in_order_while_one_is_retried(
    database_url: str, tmp_path: Path
) -> None:
    """One handler takes every kind and fails each event twice: every later event
    of the call waits for the one before it, so it sees them as they were written."""
    seen: Seen = []
    attempts: list[str] = []
    handler = Handler("everything", frozenset(KINDS), flaky(2, seen, attempts))
    async with world(database_url, tmp_path, handlers=[handler]) as w:
        w.outbox.start()
        call_id = await scenario(w)
        sessions = w.branch.sessions
        await until(
            lambda: delivered_all(sessions, call_id), 30, every_s=0.02, what="all delivered"
        )
    assert [kind for kind, _ in seen] == WRITTEN
    # Never a later event's try before an earlier one was handled.
    assert attempts == [kind for kind in WRITTEN for _ in range(3)]


async def test_record_only_kinds_are_written_delivered_and_never_read_by_a_pass(
    database_url: str, tmp_path: Path
) -> None:
    seen: Seen = []
    handler = Handler("handled", frozenset(KINDS) - RECORD_ONLY, flaky(0, seen, []))
    async with world(database_url, tmp_path, handlers=[handler], record_only=RECORD_ONLY) as w:
        call_id = await w.queued_and_offered()
        rows = await rows_of(w.branch.sessions, call_id)
        assert [row.kind for row in rows] == [CallQueued.kind, OfferMade.kind]
        assert all(row.delivered_at == row.created_at for row in rows)
        assert await w.outbox.deliver_pending() == 0
        await w.accept(call_id)
        await w.media_up(call_id)
        await w.balance_inquiry(call_id)
        await w.end(call_id)
        rows = await rows_of(w.branch.sessions, call_id)
        assert all(row.delivered_at is not None for row in rows)
        # Only the handled kinds reached the handler (flushed by their writers).
        handled_kinds = [CallAccepted.kind, CallActive.kind, ConversationEnded.kind]
        assert [kind for kind, _ in seen] == handled_kinds
        async with w.branch.sessions() as session:
            marks = (await session.execute(select(OutboxDelivery))).scalars().all()
        handled = {row.event_id for row in rows if row.kind not in RECORD_ONLY}
        assert {m.event_id for m in marks} == handled
    with pytest.raises(ValueError, match="record-only"):
        Outbox(
            w.branch.sessions,
            "node-a",
            handlers=[Handler("x", RECORD_ONLY, flaky(0, [], []))],
            record_only=RECORD_ONLY,
        )


@pytest.mark.slow
async def test_a_node_killed_after_its_calls_commits_delivers_their_events_after_restart(
    sessions: async_sessionmaker[AsyncSession], database_url: str, tmp_path: Path
) -> None:
    """A real process runs a call through accept, media up and the end of the
    conversation and is SIGKILLed with none of those events delivered; the node,
    started again, delivers each once, in the call's order. Bound: the child
    commits within 90 s; delivery after restart within 30 s."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.outbox.crash_call_child",
        database_url,
        "node-k",
        str(tmp_path),
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        call_id = await asyncio.wait_for(_committed(child.stdout), 90)
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 30)
    assert child.returncode == -signal.SIGKILL
    rows = await rows_of(sessions, call_id)
    assert [row.kind for row in rows] == [
        CallQueued.kind,
        OfferMade.kind,
        CallAccepted.kind,
        CallActive.kind,
        ConversationEnded.kind,
    ]
    # The record-only kinds were written delivered; the handled ones wait.
    assert [row.kind for row in rows if row.delivered_at is None] == [
        CallAccepted.kind,
        CallActive.kind,
        ConversationEnded.kind,
    ]
    seen: Seen = []
    restarted = Outbox(
        sessions,
        "node-k",
        FAST,
        handlers=[Handler("probe", frozenset(KINDS) - RECORD_ONLY, flaky(0, seen, []))],
        record_only=RECORD_ONLY,
    )
    restarted.start()
    try:
        await until(lambda: delivered_all(sessions, call_id), 30, every_s=0.02, what="delivery")
    finally:
        await restarted.stop()
    assert [(kind, event.call_id) for kind, event in seen] == [
        (CallAccepted.kind, call_id),
        (CallActive.kind, call_id),
        (ConversationEnded.kind, call_id),
    ]


async def _committed(stdout: asyncio.StreamReader) -> str:
    """The call id the child prints once its last change committed (its logs may
    come before it on the same stream)."""
    while line := (await stdout.readline()).decode():
        if line.startswith("committed "):
            return line.split()[1]
    raise AssertionError("the child ended without committing")


async def test_a_calls_flush_does_not_wait_for_another_calls_slow_handler(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Each call's deliveries are serialized on their own: the media.start of a new
    call goes out while another call's handler hangs (bound: 20 s, for a loaded
    machine; it would be never if the flush waited for the hanging handler)."""
    entered = asyncio.Event()
    release = asyncio.Event()
    seen: list[str | None] = []

    async def handle(event: Event) -> None:
        if event.call_id == "call-slow":
            entered.set()
            await release.wait()
        seen.append(event.call_id)

    kinds = frozenset({CallAccepted.kind})
    # The hanging handler's bound is well past the test's, so it is never cut short.
    timing = RelayTiming(handler_timeout_s=120.0)
    outbox = Outbox(sessions, "node-a", timing, handlers=[Handler("media", kinds, handle)])

    async def accepted(call_id: str) -> None:
        async with sessions() as session:
            outbox.append(session, CallAccepted(call_id, 1.0, DESK))
            await session.commit()

    await accepted("call-slow")
    slow = asyncio.create_task(outbox.flush("call-slow"))
    await asyncio.wait_for(entered.wait(), 20)
    await accepted("call-fast")
    assert await asyncio.wait_for(outbox.flush("call-fast"), 20) == 1
    assert seen == ["call-fast"]
    release.set()
    assert await slow == 1
    assert seen == ["call-fast", "call-slow"]


class PendingCloser:
    """What the operations service does on ConversationEnded (close the call's
    pending operations), as a handler with switches: ``on`` (else it does nothing)
    and ``fail`` (it raises, so the relay retries it)."""

    def __init__(self, on: bool) -> None:
        self.on = on
        self.fail = False
        self.world: World | None = None

    def handler(self) -> Handler:
        return Handler("operations.close_pending", frozenset({ConversationEnded.kind}), self)

    async def __call__(self, event: Event) -> None:
        if self.fail:
            raise RuntimeError("the database blinked")
        w = self.world
        if self.on and w is not None and event.call_id is not None:
            await w.operations.call_ended(await w.branch.call(event.call_id))


async def test_the_repair_pass_announces_an_unhandled_end_again_but_not_a_pending_one(
    database_url: str, tmp_path: Path
) -> None:
    """A call in wrap-up whose operation is still pending (its end was delivered to
    a handler that did nothing) gets a fresh ConversationEnded, whose handler closes
    the operation; while an end event is still being retried, none is added."""
    closing = PendingCloser(on=False)
    async with world(database_url, tmp_path, handlers=[closing.handler()]) as w:
        closing.world = w
        call_id = await w.queued_and_offered()
        await w.accept(call_id)
        await w.media_up(call_id)
        await w.operations.start(w.desk, call_id, "transfer", TRANSFER, None)
        await w.end(call_id)
        assert await pending_operations(w, call_id) == 1
        calls = w.branch.calls
        closing.on = True
        assert await calls.announce_end_again(await w.branch.call(call_id), w.branch.clock())
        assert await pending_operations(w, call_id) == 0
        closing.fail = True
        assert await calls.announce_end_again(await w.branch.call(call_id), w.branch.clock())
        # That one is still being retried: the next pass adds no other.
        assert not await calls.announce_end_again(await w.branch.call(call_id), w.branch.clock())
        kinds = [row.kind for row in await rows_of(w.branch.sessions, call_id)]
        assert kinds.count(ConversationEnded.kind) == 3


async def pending_operations(w: World, call_id: str) -> int:
    async with w.branch.sessions() as session:
        rows = await session.execute(
            select(Operation.state).where(
                Operation.call_id == call_id,
                Operation.state.in_([state.value for state in PENDING]),
            )
        )
        return len(rows.all())


async def test_a_blocked_operation_and_one_abandoned_with_the_call_are_decisions_too(
    database_url: str, tmp_path: Path
) -> None:
    """The record of an operation's end is complete: besides executed, failed and
    refused, a block (here by the engine: the payee is on the fraud list) and an
    operation still pending when the conversation ended each write OperationDecided."""
    closing = PendingCloser(on=True)
    async with world(database_url, tmp_path, handlers=[closing.handler()]) as w:
        closing.world = w
        call_id = await w.queued_and_offered()
        await w.accept(call_id)
        await w.media_up(call_id)
        fraud = {**TRANSFER, "payee_account": "6222020200199887766"}
        await w.operations.block_payee(w.desk, fraud["payee_account"], "mule account", None)
        blocked = await w.operations.start(w.desk, call_id, "transfer", fraud, None)
        assert blocked["state"] == "blocked", blocked
        pending = await w.operations.start(w.desk, call_id, "transfer", TRANSFER, None)
        assert pending["state"] != "blocked", pending
        await w.end(call_id)

        async def none_pending() -> bool:
            return await pending_operations(w, call_id) == 0

        await until(none_pending, 10, what="the pending transfer closed with the call")
        rows = await rows_of(w.branch.sessions, call_id)
        decisions = {
            row.payload["operation_id"]: row.payload["decision"]
            for row in rows
            if row.kind == OperationDecided.kind
        }
        assert decisions == {
            blocked["operation_id"]: "blocked",
            pending["operation_id"]: "abandoned",
        }
