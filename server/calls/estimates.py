"""Wait estimates for the waiting calls, and the handle time they are made from.

The figures come from :mod:`server.routing.estimate` (pure); what lives here is
when they are computed. One call's estimate is made from its standing (O(log n)
in the backend) and the staffing counts (O(specialists), reused for a moment),
never from a snapshot of every waiting call (the supervisor's views of the whole
queue take theirs themselves). The windowed average handle time is
read from SQL only when the dispatcher's housekeeping refreshes it, never by a
reader, who may be holding a pooled connection already (taking a second one
there would let concurrent requests starve the pool).
"""

from __future__ import annotations

import statistics
from collections.abc import Callable, Sequence

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.routing.backend import QueueBackend
from server.routing.estimate import WaitEstimate, standing_estimate
from server.routing.standing import Staffing, Standing

from . import repository as repo

# Staffing read for one call's estimate may be this old: it changes with desks,
# not with the queue, and a burst of new calls or hellos should not read it once
# each. The dispatcher reads it afresh after every change it sees.
STAFFING_MAX_AGE_S = 0.25


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
        self._staffing: tuple[float, Staffing | None] = (0.0, None)

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

    async def staffing(self, max_age_s: float = STAFFING_MAX_AGE_S) -> Staffing:
        """Working and idle specialists; reuses counts at most ``max_age_s`` old."""
        now = self.clock()
        taken_at, cached = self._staffing
        if cached is not None and now - taken_at <= max_age_s:
            return cached
        fresh = await self.backend.staffing()
        self._staffing = (now, fresh)
        return fresh

    async def of_standing(self, standing: Standing) -> WaitEstimate:
        """The estimate of a call whose standing is known (say, from its enqueue)."""
        return standing_estimate(standing, await self.staffing(), self.handle_time())

    async def of_call(self, call_id: str) -> WaitEstimate | None:
        """One call's estimate (for a GET or a new call), from its standing."""
        return (await self.of_calls([call_id])).get(call_id)

    async def of_calls(self, call_ids: Sequence[str]) -> dict[str, WaitEstimate]:
        """The estimates of those of ``call_ids`` that wait: one standings read
        (O(log n) each) and one staffing read for them all."""
        _, found = await self.backend.standings(call_ids)
        if not found:
            return {}
        staffing, aht_s = await self.staffing(), self.handle_time()
        return {s.call_id: standing_estimate(s, staffing, aht_s) for s in found}
