"""One clock for every node: Redis's.

Lease expiry, presence reaping and ladder promotion compare times written by
different nodes, so with skew between the nodes' clocks offers were withdrawn
early (false misses) or desks reaped wrongly. Each node therefore reads time as
its own clock plus the offset to Redis's ``TIME``, measured every couple of
seconds on the node's keep-alive loop (half the round trip is the error, well
under a millisecond on a LAN). Without Redis (one node) it is the node's clock.

The routing backends still never read a clock: callers pass this ``now`` in.
"""

from __future__ import annotations

import time
from collections.abc import Awaitable, Callable

ServerTime = Callable[[], Awaitable[float]]


class SharedClock:
    """``clock()`` is the shared time; :meth:`refresh` re-measures the offset."""

    def __init__(self, server_time: ServerTime | None = None) -> None:
        self._server_time = server_time
        self._offset = 0.0
        self._last = 0.0

    def __call__(self) -> float:
        # Never backwards, even when a new measurement moves the offset down.
        self._last = max(self._last, time.time() + self._offset)
        return self._last

    @property
    def offset_s(self) -> float:
        return self._offset

    async def refresh(self) -> None:
        if self._server_time is None:
            return
        before = time.time()
        server = await self._server_time()
        after = time.time()
        self._offset = server - (before + after) / 2


def redis_time(client: object) -> ServerTime:
    """Redis's ``TIME`` as epoch seconds."""

    async def read() -> float:
        seconds, micros = await client.time()  # type: ignore[attr-defined]
        return float(seconds) + float(micros) / 1e6

    return read
