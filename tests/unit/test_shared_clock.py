"""The shared clock follows the server's time and never runs backwards."""

from __future__ import annotations

import time

from server.calls.clock import SharedClock


async def test_the_clock_follows_the_server_and_never_goes_back() -> None:
    skew = [120.0]

    async def server_time() -> float:
        return time.time() + skew[0]

    clock = SharedClock(server_time)
    assert abs(clock() - time.time()) < 1.0  # before any measurement: the node's clock
    await clock.refresh()
    assert abs(clock.offset_s - 120.0) < 0.5
    ahead = clock()
    assert abs(ahead - (time.time() + 120.0)) < 0.5
    skew[0] = 60.0  # the server's clock was corrected backwards
    await clock.refresh()
    assert clock() >= ahead


async def test_without_a_server_it_is_the_nodes_clock() -> None:
    clock = SharedClock()
    await clock.refresh()
    assert clock.offset_s == 0.0 and abs(clock() - time.time()) < 1.0
