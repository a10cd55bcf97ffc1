"""The outbox on real databases (a migrated SQLite file and a PostgreSQL clone):
at-least-once delivery, retries with backoff, isolation of handlers, order per
call, and delivery after a node was killed between commit and delivery."""

from __future__ import annotations

import asyncio
import os
import signal
import sys
import time
from collections.abc import Awaitable, Callable
from pathlib import Path

import pytest
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.db.outbox import OutboxDelivery, OutboxEvent
from server.outbox.events import CallAccepted, ConversationEnded, Event
from server.outbox.relay import Handler, Outbox, RelayTiming

ROOT = Path(__file__).parents[2]
FAST = RelayTiming(poll_s=0.05, retry_base_s=0.05, retry_cap_s=0.2, handler_timeout_s=5.0)
KINDS = frozenset({ConversationEnded.kind, CallAccepted.kind})


async def commit_events(outbox: Outbox, *events: Event) -> list[str]:
    async with outbox.sessions() as session:
        ids = [outbox.append(session, event) for event in events]
        await session.commit()
    return ids


async def until(check: Callable[[], Awaitable[bool]], what: str, deadline_s: float = 20.0) -> None:
    """Poll ``check`` (generous bound for a loaded machine)."""
    end = time.monotonic() + deadline_s
    while not await check():
        if time.monotonic() > end:
            raise AssertionError(f"timed out waiting for {what}")
        await asyncio.sleep(0.02)


async def undelivered(sessions: async_sessionmaker[AsyncSession]) -> int:
    async with sessions() as session:
        rows = await session.execute(select(OutboxEvent).where(OutboxEvent.delivered_at.is_(None)))
        return len(rows.scalars().all())


def failing(times: int, seen: list[str]) -> Callable[[Event], Awaitable[None]]:
    """A handler that raises on its first ``times`` calls for each call id."""
    failures: dict[str | None, int] = {}

    async def handle(event: Event) -> None:
        count = failures.get(event.call_id, 0)
        if count < times:
            failures[event.call_id] = count + 1
            raise RuntimeError("downstream is not there yet")
        seen.append(f"{event.call_id}:{event.kind}:{event.at}")

    return handle


def recording(seen: list[str]) -> Callable[[Event], Awaitable[None]]:
    async def handle(event: Event) -> None:
        seen.append(f"{event.call_id}:{event.kind}:{event.at}")

    return handle


async def test_a_handler_failing_twice_is_retried_and_delivered_once_without_holding_others(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    outbox = Outbox(sessions, "node-a", FAST)
    (event_id,) = await commit_events(outbox, ConversationEnded("call-1", 100.0, "completed"))
    calls = 0
    flaky_seen: list[str] = []
    steady_seen: list[str] = []
    flaky = failing(2, flaky_seen)

    async def counted(event: Event) -> None:
        nonlocal calls
        calls += 1
        await flaky(event)

    relay = Outbox(
        sessions,
        "node-a",
        FAST,
        handlers=[
            Handler("flaky", KINDS, counted),
            Handler("steady", KINDS, recording(steady_seen)),
        ],
    )
    relay.start()
    try:
        await until(lambda: _is_delivered(sessions, event_id), "the event to be delivered")
    finally:
        await relay.stop()
    assert calls == 3
    assert flaky_seen == ["call-1:conversation_ended:100.0"]
    # The steady handler was not held back by the failing one, nor run again.
    assert steady_seen == ["call-1:conversation_ended:100.0"]
    async with sessions() as session:
        marks = {
            row.handler: row.failures
            for row in (await session.execute(select(OutboxDelivery))).scalars()
            if row.event_id == event_id
        }
    assert marks == {"flaky": 2, "steady": 0}
    # A second relay on the same table finds nothing left to deliver.
    again = Outbox(
        sessions,
        "node-a",
        FAST,
        handlers=[Handler("flaky", KINDS, counted), Handler("steady", KINDS, counted)],
    )
    again.start()
    try:
        assert await again.deliver_pending() == 0
    finally:
        await again.stop()
    assert calls == 3


async def _is_delivered(sessions: async_sessionmaker[AsyncSession], event_id: str) -> bool:
    async with sessions() as session:
        row = (
            await session.execute(select(OutboxEvent).where(OutboxEvent.event_id == event_id))
        ).scalar_one()
        return row.delivered_at is not None


async def test_events_of_a_call_are_delivered_in_order_while_another_call_goes_on(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    outbox = Outbox(sessions, "node-a", FAST)
    events: list[Event] = []
    for step in range(4):
        events.append(CallAccepted("call-a", float(step), "chen.li"))
        events.append(CallAccepted("call-b", float(step), "huang.wei"))
    await commit_events(outbox, *events)
    seen: list[str] = []
    # Fails call-a's first event twice: call-a's later events must wait for it.
    relay = Outbox(
        sessions,
        "node-a",
        FAST,
        handlers=[Handler("ordered", KINDS, failing_for("call-a", 2, seen))],
    )
    relay.start()
    try:
        await until(lambda: _none_left(sessions), "every event to be delivered")
    finally:
        await relay.stop()
    a = [entry for entry in seen if entry.startswith("call-a")]
    b = [entry for entry in seen if entry.startswith("call-b")]
    assert a == [f"call-a:call_accepted:{float(step)}" for step in range(4)]
    assert b == [f"call-b:call_accepted:{float(step)}" for step in range(4)]
    # call-b did not wait for call-a's retries.
    assert seen.index("call-b:call_accepted:3.0") < seen.index("call-a:call_accepted:0.0")


def failing_for(call_id: str, times: int, seen: list[str]) -> Callable[[Event], Awaitable[None]]:
    left = times

    async def handle(event: Event) -> None:
        nonlocal left
        if event.call_id == call_id and left > 0:
            left -= 1
            raise RuntimeError("not yet")
        seen.append(f"{event.call_id}:{event.kind}:{event.at}")

    return handle


async def _none_left(sessions: async_sessionmaker[AsyncSession]) -> bool:
    return await undelivered(sessions) == 0


async def test_an_event_written_in_a_rolled_back_transaction_is_never_delivered(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    outbox = Outbox(sessions, "node-a", FAST)
    async with sessions() as session:
        outbox.append(session, ConversationEnded("call-x", 1.0, "completed"))
        await session.rollback()
    assert await undelivered(sessions) == 0


async def test_flush_delivers_a_calls_events_in_the_callers_task(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    seen: list[str] = []
    outbox = Outbox(
        sessions,
        "node-a",
        RelayTiming(poll_s=30.0),
        handlers=[Handler("now", KINDS, recording(seen))],
    )
    outbox.start()
    try:
        # The relay's first pass is over (it found nothing), so only flush can deliver.
        await asyncio.wait_for(outbox.between_passes(), 20)
        await commit_events(outbox, ConversationEnded("call-f", 5.0, "completed"))
        assert await outbox.flush("call-f") == 1
        assert seen == ["call-f:conversation_ended:5.0"]
    finally:
        await outbox.stop()


@pytest.mark.slow
async def test_a_node_killed_between_commit_and_delivery_delivers_after_restart(
    sessions: async_sessionmaker[AsyncSession],
    database_url: str,
) -> None:
    """Bound: the child starts and commits within 60 s; delivery after restart within 20 s."""
    child = await asyncio.create_subprocess_exec(
        sys.executable,
        "-m",
        "tests.outbox.crash_child",
        database_url,
        "node-k",
        "call-k",
        cwd=ROOT,
        stdout=asyncio.subprocess.PIPE,
        start_new_session=True,
    )
    try:
        assert child.stdout is not None
        line = await asyncio.wait_for(child.stdout.readline(), 60)
        assert line.decode().strip() == "committed"
        await asyncio.sleep(0.2)  # the child's relay is inside the (hanging) handler
    finally:
        os.killpg(child.pid, signal.SIGKILL)
        await asyncio.wait_for(child.wait(), 30)
    assert child.returncode == -signal.SIGKILL
    assert await undelivered(sessions) == 1
    seen: list[str] = []
    # The same node, started again.
    restarted = Outbox(
        sessions, "node-k", FAST, handlers=[Handler("probe", KINDS, recording(seen))]
    )
    restarted.start()
    try:
        await until(lambda: _none_left(sessions), "the event to be delivered after restart")
    finally:
        await restarted.stop()
    assert seen == ["call-k:conversation_ended:1700000000.0"]


async def test_delivered_events_are_pruned_after_the_keeping_time_and_pending_ones_never(
    sessions: async_sessionmaker[AsyncSession],
) -> None:
    now = [1_700_000_000.0]
    seen: list[str] = []
    # call-q's event keeps failing: it stays pending however old it gets.
    outbox = Outbox(
        sessions,
        "node-a",
        RelayTiming(keep_delivered_s=100.0),
        clock=lambda: now[0],
        handlers=[Handler("probe", KINDS, failing_for("call-q", 1_000, seen))],
    )
    await commit_events(outbox, ConversationEnded("call-p", now[0], "completed"))
    outbox.start()
    try:
        assert await outbox.flush("call-p") == 1
        await commit_events(outbox, CallAccepted("call-q", now[0], "chen.li"))
        assert await outbox.flush("call-q") == 0
        now[0] += 99.0
        assert await outbox.prune() == 0
        now[0] += 2.0
        assert await outbox.prune() == 1
    finally:
        await outbox.stop()
    async with sessions() as session:
        left = [
            (row.call_id, row.delivered_at)
            for row in (await session.execute(select(OutboxEvent))).scalars()
        ]
        marks = (await session.execute(select(OutboxDelivery))).scalars().all()
    assert left == [("call-q", None)] and marks == []
