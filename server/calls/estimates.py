"""Wait estimates for the waiting calls, and the handle time they are made from.

The figures come from :func:`server.routing.estimate.estimate_waits` (pure); what
lives here is when they are computed. A queue snapshot reads every waiting call,
so one is reused for a moment; the windowed average handle time is read from SQL
only when the dispatcher's housekeeping refreshes it, never by a reader, who may
be holding a pooled connection already (taking a second one there would let
concurrent requests starve the pool).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.routing.backend import QueueBackend
from server.routing.estimate import WaitEstimate, estimate_waits

from . import repository as repo


class WaitEstimates:
    """Estimates for every waiting call; ``handle_time_window`` calls make the average."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        backend: QueueBackend,
        clock: Callable[[], float],
        handle_time_window: int,
    ) -> None:
        self.sessions = sessions
        self.backend = backend
        self.clock = clock
        self.handle_time_window = handle_time_window
        self._handle_time: tuple[float, float | None] = (0.0, None)
        self._estimates: tuple[float, dict[str, WaitEstimate] | None] = (0.0, None)

    def handle_time(self) -> float | None:
        """Windowed average handle time, as last refreshed (None: no data yet)."""
        return self._handle_time[1]

    async def refresh_handle_time(self) -> float | None:
        """Recompute the windowed average handle time from recent calls."""
        async with self.sessions() as session:
            samples = await repo.recent_handle_times(session, self.handle_time_window)
        value = statistics.fmean(samples) if samples else None
        self._handle_time = (self.clock(), value)
        return value

    async def all(self, max_age_s: float = 0.0) -> dict[str, WaitEstimate]:
        """Estimates for every waiting call; reuses a set at most ``max_age_s`` old."""
        now = self.clock()
        taken_at, cached = self._estimates
        if cached is not None and now - taken_at <= max_age_s:
            return cached
        snapshot = await self.backend.snapshot(now)
        fresh = estimate_waits(snapshot, self.handle_time())
        self._estimates = (now, fresh)
        return fresh

    async def of_call(self, call_id: str) -> WaitEstimate | None:
        """One call's estimate (for a GET or a new call): a recent set will do,
        unless it predates the call."""
        estimate = (await self.all(max_age_s=0.5)).get(call_id)
        if estimate is None:
            estimate = (await self.all()).get(call_id)
        return estimate
