"""server/tasks.py: waiting and stopping without losing a cancellation."""

from __future__ import annotations

import asyncio
import contextlib
from collections.abc import Awaitable, Callable

import pytest

from server.tasks import cancel_and_wait, cancel_requested, stop_if_cancel_requested, wait_event


async def _set_and_cancel_together(wait: Callable[[asyncio.Event], Awaitable[object]]) -> object:
    """What a task waiting with ``wait`` ends with when its event is set and it is
    cancelled in the same turn of the loop (a node's shutdown while a call comes in)."""
    event = asyncio.Event()
    task = asyncio.create_task(wait(event))
    await asyncio.sleep(0)  # the task now waits on the event
    event.set()
    task.cancel()
    (outcome,) = await asyncio.gather(task, return_exceptions=True)
    return outcome


async def test_a_cancel_that_comes_as_the_event_is_set_is_not_swallowed() -> None:
    outcome = await _set_and_cancel_together(lambda event: wait_event(event, 10))
    assert isinstance(outcome, asyncio.CancelledError), outcome


async def test_wait_event_says_whether_the_event_came() -> None:
    event = asyncio.Event()
    assert await wait_event(event, 0.01) is False
    event.set()
    assert await wait_event(event, 0.01) is True


async def test_a_loop_on_wait_event_stops_when_cancelled_as_it_is_woken() -> None:
    """The dispatcher's shape (wait, work, wait again), cancelled in the same turn
    of the loop as its wake event is set: with ``asyncio.wait_for`` in place of
    wait_event the loop swallows the cancellation and never stops."""
    wake = asyncio.Event()
    passes = 0

    async def loop() -> None:
        nonlocal passes
        while True:
            await wait_event(wake, 10)
            wake.clear()
            passes += 1

    task = asyncio.create_task(loop())
    wake.set()
    for _ in range(100):  # until the first pass is done and the loop waits again
        if passes:
            break
        await asyncio.sleep(0)
    for _ in range(5):
        await asyncio.sleep(0)
    assert passes == 1 and not wake.is_set()
    wake.set()
    task.cancel()
    await asyncio.wait_for(asyncio.gather(task, return_exceptions=True), timeout=5)
    assert task.cancelled() and passes == 1


@pytest.mark.parametrize("delay", [0.0, 0.001])
async def test_cancel_and_wait_stops_a_task_whatever_it_is_doing(delay: float) -> None:
    async def sleeper() -> None:
        await asyncio.sleep(delay)
        await asyncio.sleep(3600)

    task = asyncio.create_task(sleeper())
    await asyncio.sleep(delay)
    await cancel_and_wait(task)
    assert task.cancelled()


async def test_a_loop_that_checks_for_a_cancel_stops_though_its_work_ate_it() -> None:
    """A library that turns the cancellation into an error, caught by the loop's
    guard like any failing pass: without the check the loop would run for ever."""
    rounds = 0

    async def work() -> None:
        try:
            await asyncio.sleep(3600)
        except asyncio.CancelledError:
            raise RuntimeError("connection lost") from None

    async def loop() -> None:
        nonlocal rounds
        while True:
            stop_if_cancel_requested("test loop")
            rounds += 1
            with contextlib.suppress(Exception):  # one bad pass must not end the loop
                await work()

    task = asyncio.create_task(loop())
    await asyncio.sleep(0.01)
    assert not cancel_requested()  # this task was not asked
    await asyncio.wait_for(cancel_and_wait(task), timeout=5)
    assert task.cancelled() and rounds == 1
