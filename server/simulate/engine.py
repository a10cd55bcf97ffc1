"""The discrete-event simulation of a day.

Routing is not modelled here: every decision (who is offered which call, ladder
steps, leases running out, misses putting a specialist away, wrap-up) is made by
the real in-process backend, :class:`~server.routing.memory.MemoryQueueBackend`,
called with the simulated ``now``. Its methods never await anything, so each call
completes at once and a day of events runs in seconds. What this module adds is
the world around it: customers arriving and hanging up, specialists logging in
for their shifts, answering (or missing) offers, talking and wrapping up.

One difference from the live server, on purpose: the server dispatches every
``CLOUDBRANCH_DISPATCH_INTERVAL_S`` (0.25 s); here dispatch runs after every
event, as if that interval were zero.
"""

from __future__ import annotations

import heapq
import itertools
import random
from collections import deque
from collections.abc import Callable
from dataclasses import dataclass
from enum import Enum
from typing import NamedTuple

from server.routing.errors import OfferExpired
from server.routing.estimate import estimate_waits
from server.routing.memory import MemoryQueueBackend
from server.routing.model import (
    DesiredPresence,
    LadderStep,
    Offer,
    PriorityClass,
    QueuedCall,
    SpecialistProfile,
)

from .profile import HALF_HOUR_S, Profile, Specialist

# Progress: (simulated seconds done, simulated seconds in the day).
Progress = Callable[[float, float], None]
# Window of the handle-time average behind wait estimates, as the server keeps it.
HANDLE_TIME_WINDOW = 50


@dataclass
class CallRecord:
    """One simulated customer's call and what became of it."""

    call_id: str
    dialect: str
    priority: PriorityClass
    arrived_at: float
    interval: int
    patience_s: float | None
    callback: bool = False
    answered_at: float | None = None
    abandoned_at: float | None = None
    specialist_id: str | None = None
    step: LadderStep | None = None
    handle_s: float = 0.0

    @property
    def wait_s(self) -> float | None:
        end = self.answered_at if self.answered_at is not None else self.abandoned_at
        return None if end is None else end - self.arrived_at


@dataclass
class DeskRecord:
    """One rostered specialist's day."""

    specialist: Specialist
    logged_in_s: float = 0.0
    talk_s: float = 0.0
    wrap_up_s: float = 0.0
    handled: int = 0
    misses: int = 0
    on_shift: bool = False
    logged_in_at: float | None = None
    working: bool = False  # holding a call or wrapping up

    @property
    def occupancy(self) -> float:
        return (self.talk_s + self.wrap_up_s) / self.logged_in_s if self.logged_in_s else 0.0


@dataclass
class SimulationResult:
    profile: Profile
    calls: list[CallRecord]
    desks: list[DeskRecord]
    ended_at: float
    events: int


class _Kind(Enum):
    ARRIVE = "arrive"
    ABANDON = "abandon"
    WAKE = "wake"  # a ladder deadline: dispatch again
    ACCEPT = "accept"
    EXPIRE = "expire"
    END = "end"
    WRAPPED = "wrapped"
    RETURN = "return"
    SHIFT_START = "shift_start"
    SHIFT_END = "shift_end"


class _Event(NamedTuple):
    """Ordered by time, then by when it was scheduled (a tuple compares fast)."""

    at: float
    seq: int
    kind: _Kind
    subject: str
    offer: Offer | None


class Simulation:
    """A day of ``profile`` through the real routing backend, on a simulated clock."""

    def __init__(self, profile: Profile, progress: Progress | None = None) -> None:
        self.profile = profile
        self.policy = profile.routing_policy()
        self.backend = MemoryQueueBackend(self.policy)
        self.rng = random.Random(profile.seed)
        self.now = profile.start_s
        self._progress = progress
        self._events: list[_Event] = []
        self._seq = itertools.count()
        self.calls: dict[str, CallRecord] = {}
        self.desks = {s.id: DeskRecord(s) for s in profile.roster}
        mean_handle = sum(d.mean_s for d in profile.handle_time.values()) / len(profile.handle_time)
        # Yesterday's handle times, so the first estimates of the day have a figure.
        self._handle_times: deque[float] = deque([mean_handle], maxlen=HANDLE_TIME_WINDOW)
        self._count = 0

    # -- set-up ------------------------------------------------------------------
    def _schedule(self, at: float, kind: _Kind, subject: str, offer: Offer | None = None) -> None:
        heapq.heappush(self._events, _Event(at, next(self._seq), kind, subject, offer))

    def _plan_arrivals(self) -> None:
        for record in planned_calls(self.profile, self.rng):
            self.calls[record.call_id] = record
            self._schedule(record.arrived_at, _Kind.ARRIVE, record.call_id)

    async def _plan_roster(self) -> None:
        for spec in self.profile.roster:
            await self.backend.register(SpecialistProfile(spec.id, dict(spec.dialects)))
            start, end = spec.shift_seconds
            self._schedule(start, _Kind.SHIFT_START, spec.id)
            self._schedule(end, _Kind.SHIFT_END, spec.id)

    # -- the loop ------------------------------------------------------------------
    async def run(self) -> SimulationResult:
        self._plan_arrivals()
        await self._plan_roster()
        handlers = {
            _Kind.ARRIVE: self._arrive,
            _Kind.ABANDON: self._abandon,
            _Kind.WAKE: self._wake,
            _Kind.ACCEPT: self._accept,
            _Kind.EXPIRE: self._expire,
            _Kind.END: self._end,
            _Kind.WRAPPED: self._wrapped,
            _Kind.RETURN: self._return,
            _Kind.SHIFT_START: self._shift_start,
            _Kind.SHIFT_END: self._shift_end,
        }
        start = self.profile.start_s
        day = self.profile.end_s - start
        reported = -1
        while self._events:
            event = heapq.heappop(self._events)
            self.now = max(self.now, event.at)
            self._count += 1
            await handlers[event.kind](event)
            await self._dispatch()
            if self._progress is not None:
                done = min(day, self.now - start)
                step = int(done // (HALF_HOUR_S / 6))
                if step != reported:
                    reported = step
                    self._progress(done, day)
        for desk in self.desks.values():
            self._log_out(desk)
        if self._progress is not None:
            self._progress(day, day)
        return SimulationResult(
            self.profile,
            list(self.calls.values()),
            list(self.desks.values()),
            self.now,
            self._count,
        )

    async def _dispatch(self) -> None:
        for offer in await self.backend.dispatch(self.now):
            missed = self.rng.random() < self.profile.desk.miss_probability
            delay = self.profile.desk.accept_delay.sample(self.rng)
            if not missed:
                self._schedule(self.now + delay, _Kind.ACCEPT, offer.specialist_id, offer)
            if missed or self.now + delay >= offer.expires_at:
                # The lease runs out first: the backend withdraws the offer, a miss.
                self._schedule(offer.expires_at, _Kind.EXPIRE, offer.specialist_id, offer)

    # -- customers -------------------------------------------------------------------
    async def _arrive(self, event: _Event) -> None:
        record = self.calls[event.subject]
        call = QueuedCall(
            record.call_id, record.call_id, record.dialect, record.priority, record.arrived_at
        )
        await self.backend.enqueue(call, self.now)
        accepts = self.profile.callbacks.accept_probability
        if accepts > 0 and await self._would_wait_long(call) and self.rng.random() < accepts:
            record.callback = True
        if record.patience_s is not None and not record.callback:
            self._schedule(self.now + record.patience_s, _Kind.ABANDON, record.call_id)
        deadline = call.dialect_deadline(self.policy)
        if deadline > self.now:
            self._schedule(deadline, _Kind.WAKE, record.call_id)

    async def _would_wait_long(self, call: QueuedCall) -> bool:
        """The server's own estimate, as the customer would be told it."""
        snapshot = await self.backend.snapshot(self.now)
        aht = sum(self._handle_times) / len(self._handle_times)
        estimate = estimate_waits(snapshot, aht).get(call.call_id)
        seconds = None if estimate is None else estimate.seconds
        return seconds is None or seconds >= self.profile.callbacks.threshold_s

    async def _abandon(self, event: _Event) -> None:
        record = self.calls[event.subject]
        if record.answered_at is None and record.abandoned_at is None:
            await self.backend.remove(record.call_id, self.now)
            record.abandoned_at = self.now

    async def _wake(self, event: _Event) -> None:
        return None  # the dispatch after every event promotes due calls

    # -- specialists -------------------------------------------------------------------
    async def _accept(self, event: _Event) -> None:
        assert event.offer is not None
        try:
            assignment = await self.backend.accept(event.offer.offer_id, event.subject, self.now)
        except OfferExpired:
            return  # withdrawn meanwhile: the customer hung up, or the lease ran out
        record = self.calls[assignment.call_id]
        record.answered_at = self.now
        record.specialist_id = event.subject
        record.step = event.offer.step
        record.handle_s = self.profile.handle_time_for(record.dialect).sample(self.rng)
        self._handle_times.append(record.handle_s)
        desk = self.desks[event.subject]
        desk.working = True
        desk.handled += 1
        desk.talk_s += record.handle_s
        self._schedule(self.now + record.handle_s, _Kind.END, event.subject)

    async def _expire(self, event: _Event) -> None:
        for expired in await self.backend.expire_offers(self.now):
            desk = self.desks[expired.offer.specialist_id]
            desk.misses += 1
            if expired.specialist_now_away:
                self._schedule(
                    self.now + self.profile.desk.away_return_s, _Kind.RETURN, desk.specialist.id
                )

    async def _end(self, event: _Event) -> None:
        await self.backend.end_call(event.subject, self.now)
        wrap_up = self.profile.wrap_up.sample(self.rng)
        self.desks[event.subject].wrap_up_s += wrap_up
        self._schedule(self.now + wrap_up, _Kind.WRAPPED, event.subject)

    async def _wrapped(self, event: _Event) -> None:
        desk = self.desks[event.subject]
        await self.backend.finish_wrap_up(event.subject, self.now)
        desk.working = False
        if not desk.on_shift:
            await self.backend.disconnect(event.subject, self.now)
            self._log_out(desk)

    async def _return(self, event: _Event) -> None:
        if self.desks[event.subject].on_shift:
            await self.backend.set_presence(event.subject, DesiredPresence.AVAILABLE, self.now)

    async def _shift_start(self, event: _Event) -> None:
        desk = self.desks[event.subject]
        desk.on_shift = True
        if desk.logged_in_at is None:
            desk.logged_in_at = self.now
        await self.backend.connect(event.subject, self.now)
        await self.backend.set_presence(event.subject, DesiredPresence.AVAILABLE, self.now)

    async def _shift_end(self, event: _Event) -> None:
        desk = self.desks[event.subject]
        desk.on_shift = False
        if not desk.working:  # otherwise they log out after this call's wrap-up
            await self.backend.disconnect(event.subject, self.now)
            self._log_out(desk)

    def _log_out(self, desk: DeskRecord) -> None:
        if desk.logged_in_at is not None:
            desk.logged_in_s += self.now - desk.logged_in_at
            desk.logged_in_at = None


def planned_calls(profile: Profile, rng: random.Random) -> list[CallRecord]:
    """The day's customers: when each calls, in which dialect, how urgently, and
    how long they would wait before hanging up. In time order."""
    classes = list(profile.priorities)
    weights = [profile.priorities[c] for c in classes]
    numbered = itertools.count(1)
    calls = []
    for dialect, counts in sorted(profile.arrivals.items()):
        for index, count in enumerate(counts):
            for at in _arrival_times(profile, rng, profile.interval_start(index), count):
                priority = rng.choices(classes, weights)[0]
                patience = profile.patience.sample(rng) if profile.patience else None
                call_id = f"sim-{next(numbered):06d}-{dialect}"
                calls.append(CallRecord(call_id, dialect, priority, at, index, patience))
    return sorted(calls, key=lambda c: c.arrived_at)


def _arrival_times(profile: Profile, rng: random.Random, start: float, count: float) -> list[float]:
    if count <= 0:
        return []
    if profile.arrival_process == "even":
        gap = HALF_HOUR_S / count
        return [start + gap * (i + 0.5) for i in range(round(count))]
    times: list[float] = []
    at = start
    while True:
        at += rng.expovariate(count / HALF_HOUR_S)
        if at >= start + HALF_HOUR_S:
            return times
        times.append(at)


async def simulate(
    profile: Profile, progress: Progress | None = None, days: int = 1
) -> SimulationResult:
    """Simulate ``days`` independent replications of the profile's day (seeds
    ``seed``, ``seed + 1``, ...) and pool them: more days, steadier figures."""
    if days < 1:
        raise ValueError("days must be at least 1")
    calls: list[CallRecord] = []
    desks: list[DeskRecord] = []
    events = 0
    ended_at = profile.start_s
    for day in range(days):
        replica = profile.model_copy(update={"seed": profile.seed + day})

        def day_progress(done: float, total: float, day: int = day) -> None:
            if progress is not None:
                progress(day * total + done, days * total)

        result = await Simulation(replica, day_progress).run()
        calls += result.calls
        desks += result.desks
        events += result.events
        ended_at = max(ended_at, result.ended_at)
    return SimulationResult(profile, calls, desks, ended_at, events)
