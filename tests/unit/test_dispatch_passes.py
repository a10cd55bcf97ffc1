"""The dispatcher's pass counter, on fakes: what tests wait on to say "nothing happened"."""

from __future__ import annotations

import asyncio

from tests.unit.fakes import branch


async def test_waiting_for_two_passes_returns_after_the_second_and_not_before(
    unit_database: str,
) -> None:
    async with branch(unit_database) as b:
        passes = b.dispatcher.passes
        waiter = asyncio.create_task(passes.wait(2))
        await asyncio.sleep(0)  # the waiter starts counting here, before any pass
        await b.tick()
        await asyncio.sleep(0)  # and sees the first pass
        assert not waiter.done()
        await b.tick()
        assert await asyncio.wait_for(waiter, timeout=5) == 2
        assert passes.completed == 2


async def test_a_change_before_the_wait_is_seen_by_a_pass_that_completes_within_it(
    unit_database: str,
) -> None:
    async with branch(unit_database) as b:
        await b.desk_available("S06")
        call_id = await b.customer_calls("C1006")
        waiter = asyncio.create_task(b.dispatcher.passes.wait(2))
        await asyncio.sleep(0)
        await b.tick()
        await b.tick()
        await asyncio.wait_for(waiter, timeout=5)
        (offer,) = b.notifier.to("S06", "call.offered")
        assert offer["call_id"] == call_id
