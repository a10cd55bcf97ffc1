"""In-process queue backend: the embedded default, for one server process.

Every method runs to completion without awaiting, so on one event loop each call is
atomic by construction. Sorted containers keep dispatch, accept and position
lookups logarithmic in the number of waiting calls.
"""

from __future__ import annotations

import heapq
import itertools
import secrets
import uuid
from collections import Counter
from collections.abc import Callable, Sequence

from sortedcontainers import SortedList

from .errors import OfferExpired, SpecialistNotFound
from .memory_records import ChangeLog
from .memory_records import DispatchCandidate as _Candidate
from .memory_records import IdleTuple as _IdleTuple
from .memory_records import RankTuple as _RankTuple
from .memory_records import SpecialistRecord as _Specialist
from .memory_records import WaitingEntry as _Waiting
from .memory_records import of_step as _of_step
from .model import (
    Assignment,
    DesiredPresence,
    ExpiredOffer,
    LadderStep,
    Offer,
    QueuedCall,
    QueueSnapshot,
    RoutingPolicy,
    SpecialistProfile,
    SpecialistState,
    SpecialistView,
    WaitingCallView,
    ladder_step,
    step_after_skill,
)
from .standing import (
    ChangeKind,
    LiveCalls,
    QueueChanges,
    Staffing,
    Standing,
    staffing_of,
)

# How many changes the log keeps; a reader further behind asks for standings again.
LOG_LENGTH = 4096


class MemoryQueueBackend:
    """Single-process implementation of :class:`~server.routing.backend.QueueBackend`."""

    def __init__(self, policy: RoutingPolicy | None = None) -> None:
        self.policy = policy or RoutingPolicy()
        self._seq = itertools.count()
        self._calls: dict[str, _Waiting] = {}
        self._order: SortedList = SortedList()  # every waiting call, offered or not
        self._dialect_queues: dict[str, SortedList] = {}  # unoffered, on the dialect step
        self._skill_queues: dict[str, SortedList] = {}  # unoffered, on the skill step
        self._any_queue: SortedList = SortedList()  # unoffered, on the any step
        # Every waiting call (offered or not) by its step: ranks for standings.
        self._on_any: SortedList = SortedList()
        self._on_dialect: dict[str, SortedList] = {}
        self._on_skill: dict[str, SortedList] = {}
        self._log = ChangeLog(LOG_LENGTH)
        # Heap of skill- and dialect-step deadlines, cleaned lazily.
        self._promotions: list[tuple[float, str]] = []
        self._specialists: dict[str, _Specialist] = {}
        self._idle_by_dialect: dict[str, SortedList] = {}
        self._idle_by_skill: dict[str, SortedList] = {}
        self._idle_any: SortedList = SortedList()
        self._logged_in_by_dialect: Counter[str] = Counter()
        self._logged_in_by_skill: Counter[str] = Counter()
        self._offers: dict[str, Offer] = {}
        self._offer_expiries: list[tuple[float, str]] = []  # heap, lazily cleaned
        # This state's generation: it lives and dies with the process.
        self._epoch = secrets.token_hex(8)

    async def close(self) -> None:
        return None

    # -- calls ---------------------------------------------------------------
    async def enqueue(self, call: QueuedCall, now: float) -> int:
        return (await self.enqueue_standing(call, now)).position

    async def enqueue_standing(self, call: QueuedCall, now: float) -> Standing:
        if call.call_id not in self._calls:
            rank: _RankTuple = (call.rank_key(self.policy), next(self._seq), call.call_id)
            has_speaker = call.dialect is not None and self._logged_in_by_dialect[call.dialect] > 0
            key = call.skill_key
            has_skilled = key is not None and self._logged_in_by_skill[key] > 0
            step = ladder_step(call, self.policy, now, has_speaker, has_skilled)
            entry = _Waiting(call=call, rank=rank, step=step)
            self._calls[call.call_id] = entry
            self._order.add(rank)
            self._queue_unoffered(entry)
            self._watch_deadline(entry)
            self._place(entry)
            self._log_change(ChangeKind.ADDED, entry)
        return self._standing(self._calls[call.call_id])

    async def remove(self, call_id: str, now: float) -> Offer | None:
        entry = self._calls.pop(call_id, None)
        if entry is None:
            return None
        self._order.discard(entry.rank)
        self._unqueue_unoffered(entry)
        self._unplace(entry)
        self._log_change(ChangeKind.LEFT, entry)
        if entry.offer_id is None:
            return None
        offer = self._offers.pop(entry.offer_id)
        spec = self._specialists[offer.specialist_id]
        spec.offer_id = None
        self._make_idle(spec, now)
        return offer

    async def position(self, call_id: str) -> int | None:
        return self._position(call_id)

    def _position(self, call_id: str) -> int | None:
        entry = self._calls.get(call_id)
        if entry is None:
            return None
        return int(self._order.index(entry.rank)) + 1

    async def standings(self, call_ids: Sequence[str]) -> tuple[int, list[Standing]]:
        found = [self._standing(self._calls[c]) for c in call_ids if c in self._calls]
        return self._log.version, found

    async def queue_changes(self, since: int) -> QueueChanges:
        return self._log.after(since, self._epoch)

    async def queue_version(self) -> int:
        return self._log.version

    async def staffing(self) -> Staffing:
        return staffing_of(s.view() for s in self._specialists.values())

    def _standing(self, entry: _Waiting) -> Standing:
        call, rank = entry.call, entry.rank
        dialect = self._on_dialect.get(call.dialect) if call.dialect else None
        key = call.skill_key
        skill = self._on_skill.get(key) if key else None
        return Standing(
            call_id=call.call_id,
            customer_id=call.customer_id,
            rank=(rank[0], rank[1]),
            step=entry.step,
            dialect=call.dialect,
            skill_key=key,
            position=int(self._order.index(rank)) + 1,
            ahead_any=int(self._on_any.bisect_left(rank)),
            ahead_dialect=int(dialect.bisect_left(rank)) if dialect is not None else 0,
            ahead_skill=int(skill.bisect_left(rank)) if skill is not None else 0,
            as_of=self._log.version,
        )

    def _on_step_of(self, entry: _Waiting) -> SortedList:
        """Every waiting call on the entry's step (and pool), offered or not."""
        return _of_step(entry, self._on_skill, self._on_dialect, self._on_any)

    def _place(self, entry: _Waiting) -> None:
        self._on_step_of(entry).add(entry.rank)

    def _unplace(self, entry: _Waiting) -> None:
        self._on_step_of(entry).discard(entry.rank)

    def _log_change(
        self, kind: ChangeKind, entry: _Waiting, old_step: LadderStep | None = None
    ) -> None:
        self._log.append(kind, entry.call, entry.rank, entry.step, old_step)

    def _queue(self, entry: _Waiting) -> SortedList:
        """The unoffered queue of the entry's current step."""
        return _of_step(entry, self._skill_queues, self._dialect_queues, self._any_queue)

    def _queue_unoffered(self, entry: _Waiting) -> None:
        self._queue(entry).add(entry.rank)

    def _unqueue_unoffered(self, entry: _Waiting) -> None:
        self._queue(entry).discard(entry.rank)

    def _deadline(self, entry: _Waiting) -> float | None:
        """When the entry's current step ends by time (None on the last step)."""
        if entry.step is LadderStep.SKILL:
            return entry.call.skill_deadline(self.policy)
        if entry.step is LadderStep.DIALECT:
            return entry.call.dialect_deadline(self.policy)
        return None

    def _watch_deadline(self, entry: _Waiting) -> None:
        deadline = self._deadline(entry)
        if deadline is not None:
            heapq.heappush(self._promotions, (deadline, entry.call.call_id))

    def _move(self, entry: _Waiting, step: LadderStep) -> None:
        """Put the call on a later ladder step (offered or not)."""
        if entry.step is step:
            return
        old = entry.step
        self._unplace(entry)
        if entry.offer_id is None:
            self._unqueue_unoffered(entry)
            entry.step = step
            self._queue_unoffered(entry)
        else:
            entry.step = step
        self._place(entry)
        self._log_change(ChangeKind.STEPPED, entry, old)
        self._watch_deadline(entry)

    def _step_after_skill(self, entry: _Waiting) -> LadderStep:
        dialect = entry.call.dialect
        speakers = dialect is not None and self._logged_in_by_dialect[dialect] > 0
        return step_after_skill(entry.call, speakers)

    def _promote_due(self, now: float) -> None:
        while self._promotions and self._promotions[0][0] <= now:
            _, call_id = heapq.heappop(self._promotions)
            entry = self._calls.get(call_id)
            # The heap is cleaned lazily: an entry may belong to an earlier call
            # with the same id (removed, then enqueued again), or to a step the
            # call has left, so check the current step's deadline.
            if entry is None:
                continue
            deadline = self._deadline(entry)
            if deadline is None or deadline > now:
                continue
            if entry.step is LadderStep.SKILL:
                self._move(entry, self._step_after_skill(entry))
            else:
                self._move(entry, LadderStep.ANY)

    def _on_step(self, step: LadderStep, matches: Callable[[QueuedCall], bool]) -> list[_Waiting]:
        return [e for e in self._calls.values() if e.step is step and matches(e.call)]

    def _promote_dialect(self, dialect: str) -> None:
        """Nobody who speaks ``dialect`` is logged in: skip that step at once."""
        for entry in self._on_step(LadderStep.DIALECT, lambda c: c.dialect == dialect):
            self._move(entry, LadderStep.ANY)

    def _promote_skill(self, key: str) -> None:
        """Nobody in the skill pool ``key`` is logged in: skip that step at once."""
        for entry in self._on_step(LadderStep.SKILL, lambda c: c.skill_key == key):
            self._move(entry, self._step_after_skill(entry))

    def _promote_unserved(self, dialects: frozenset[str], keys: frozenset[str]) -> None:
        """Skip the steps of ``dialects`` and skill pools ``keys`` that lost their
        last logged-in specialist."""
        for dialect in dialects:
            if self._logged_in_by_dialect[dialect] <= 0:
                self._promote_dialect(dialect)
        for key in keys:
            if self._logged_in_by_skill[key] <= 0:
                self._promote_skill(key)

    # -- specialists -----------------------------------------------------------
    async def register(self, profile: SpecialistProfile) -> None:
        spec = self._specialists.get(profile.specialist_id)
        fluent = profile.fluent_dialects(self.policy)
        keys = profile.skill_keys(self.policy)
        intents = profile.intents()
        if spec is None:
            self._specialists[profile.specialist_id] = _Specialist(
                profile=profile, fluent=fluent, skill_keys=keys, intents=intents
            )
            return
        was_idle = spec.idle_entry is not None
        if was_idle:
            self._remove_idle(spec)
        old, old_keys = spec.fluent, spec.skill_keys
        if spec.connected:
            self._logged_in_by_dialect.subtract(old)
            self._logged_in_by_dialect.update(fluent)
            self._logged_in_by_skill.subtract(old_keys)
            self._logged_in_by_skill.update(keys)
        spec.profile, spec.fluent, spec.skill_keys = profile, fluent, keys
        spec.intents = intents
        if was_idle:
            self._add_idle(spec)
        if spec.connected:
            # A dialect or skill this specialist lost may have lost its last speaker.
            self._promote_unserved(old - fluent, old_keys - keys)

    async def connect(
        self, specialist_id: str, now: float, connection: str = ""
    ) -> SpecialistState:
        spec = self._get(specialist_id)
        spec.last_seen = now
        spec.connection = connection
        if not spec.connected:
            spec.connected = True
            self._logged_in_by_dialect.update(spec.fluent)
            self._logged_in_by_skill.update(spec.skill_keys)
            self._make_idle(spec, now)
        return spec.state

    async def heartbeat(self, specialist_id: str, now: float, connection: str = "") -> bool:
        spec = self._specialists.get(specialist_id)
        if spec is None:
            return False
        if connection and spec.connection and spec.connection != connection:
            return True  # the desk's live connection is another one
        if spec.connected:
            spec.last_seen = max(spec.last_seen, now)
            return True
        # Reaped while this very connection was alive: the caller connects it again.
        return not (connection and spec.connection == connection)

    async def disconnect(
        self, specialist_id: str, now: float, connection: str = ""
    ) -> Offer | None:
        spec = self._specialists.get(specialist_id)
        if spec is None or not spec.connected:
            return None
        if connection and spec.connection != connection:
            return None  # an older socket's late close: the desk is back elsewhere
        spec.connection = ""
        spec.connected = False
        self._remove_idle(spec)
        self._logged_in_by_dialect.subtract(spec.fluent)
        self._logged_in_by_skill.subtract(spec.skill_keys)
        withdrawn = self._withdraw_offer(spec) if spec.offer_id else None
        self._promote_unserved(spec.fluent, spec.skill_keys)
        return withdrawn

    async def set_presence(
        self, specialist_id: str, desired: DesiredPresence, now: float
    ) -> SpecialistState:
        spec = self._get(specialist_id)
        if desired is DesiredPresence.AVAILABLE and spec.desired is not DesiredPresence.AVAILABLE:
            spec.misses = 0
        spec.desired = desired
        self._make_idle(spec, now)
        return spec.state

    async def specialist(self, specialist_id: str) -> SpecialistView | None:
        spec = self._specialists.get(specialist_id)
        return None if spec is None else spec.view()

    async def reap_stale(self, now: float) -> list[Offer]:
        cutoff = now - self.policy.presence_ttl_s
        stale = [s for s in self._specialists.values() if s.connected and s.last_seen < cutoff]
        withdrawn: list[Offer] = []
        for spec in stale:
            # A reap keeps the connection's name, so that connection's next
            # heartbeat can report the desk lost and log it in again.
            connection = spec.connection
            offer = await self.disconnect(spec.profile.specialist_id, now)
            spec.connection = connection
            if offer is not None:
                withdrawn.append(offer)
        return withdrawn

    async def restore_assignment(
        self, specialist_id: str, call_id: str, wrap_up: bool, now: float
    ) -> bool:
        spec = self._specialists.get(specialist_id)
        if spec is None:
            return False
        if spec.call_id == call_id:
            spec.in_wrap_up = spec.in_wrap_up or wrap_up
            return False
        if spec.call_id is not None or spec.offer_id is not None:
            return False
        spec.call_id, spec.in_wrap_up = call_id, wrap_up
        self._make_idle(spec, now)
        return True

    async def epoch(self) -> str:
        return self._epoch

    async def node_alive(self, node_id: str, ttl_s: float) -> None:
        return None  # one process: its desks live and die with it

    async def reap_dead_nodes(self, now: float) -> list[Offer]:
        return []

    def _get(self, specialist_id: str) -> _Specialist:
        spec = self._specialists.get(specialist_id)
        if spec is None:
            raise SpecialistNotFound(specialist_id)
        return spec

    def _make_idle(self, spec: _Specialist, now: float) -> None:
        """Keep the idle lists in step with the specialist's state: idle since
        ``now`` if they just became available, out of the lists otherwise."""
        available = spec.state is SpecialistState.AVAILABLE
        if available and spec.idle_entry is None:
            spec.idle_since = now
            self._add_idle(spec)
        elif not available and spec.idle_entry is not None:
            self._remove_idle(spec)

    def _add_idle(self, spec: _Specialist) -> None:
        entry: _IdleTuple = (spec.idle_since, spec.profile.specialist_id)
        spec.idle_entry = entry
        self._idle_any.add(entry)
        for dialect in spec.fluent:
            self._idle_by_dialect.setdefault(dialect, SortedList()).add(entry)
        for key in spec.skill_keys:
            self._idle_by_skill.setdefault(key, SortedList()).add(entry)

    def _remove_idle(self, spec: _Specialist) -> None:
        entry = spec.idle_entry
        if entry is None:
            return
        spec.idle_entry = None
        self._idle_any.discard(entry)
        for dialect in spec.fluent:
            self._idle_by_dialect[dialect].discard(entry)
        for key in spec.skill_keys:
            self._idle_by_skill[key].discard(entry)

    # -- offers ----------------------------------------------------------------
    async def dispatch(self, now: float) -> list[Offer]:
        self._promote_due(now)
        made: list[Offer] = []
        # Each unoffered queue with someone idle in its pool, as in the Redis
        # script: while dispatching, queues and pools only lose members, so a head
        # changes only when its call is offered and an emptied pool stays empty.
        pairs = [(q, self._idle_by_skill.get(k)) for k, q in self._skill_queues.items()]
        pairs += [(q, self._idle_by_dialect.get(d)) for d, q in self._dialect_queues.items()]
        pairs.append((self._any_queue, self._idle_any))
        candidates = [_Candidate(queue[0], queue, pool) for queue, pool in pairs if queue and pool]
        while True:
            best: _Candidate | None = None
            live = []
            for candidate in candidates:
                if candidate.pool:
                    live.append(candidate)
                    if best is None or candidate.head < best.head:
                        best = candidate
            candidates = live
            if best is None:
                return made
            made.append(self._reserve(self._calls[best.head[2]], best.pool[0][1], now))
            if best.queue:
                best.head = best.queue[0]
            else:
                candidates.remove(best)

    def _reserve(self, entry: _Waiting, specialist_id: str, now: float) -> Offer:
        spec = self._specialists[specialist_id]
        offer = Offer(
            offer_id=uuid.uuid4().hex,
            call_id=entry.call.call_id,
            specialist_id=specialist_id,
            step=entry.step,
            created_at=now,
            expires_at=now + self.policy.offer_lease_s,
        )
        self._unqueue_unoffered(entry)
        entry.offer_id = offer.offer_id
        self._remove_idle(spec)
        spec.offer_id = offer.offer_id
        self._offers[offer.offer_id] = offer
        heapq.heappush(self._offer_expiries, (offer.expires_at, offer.offer_id))
        return offer

    def _withdraw_offer(self, spec: _Specialist) -> Offer:
        """Return the specialist's offered call to its place in the queue."""
        assert spec.offer_id is not None
        offer = self._offers.pop(spec.offer_id)
        spec.offer_id = None
        entry = self._calls.get(offer.call_id)
        if entry is not None:
            entry.offer_id = None
            self._queue_unoffered(entry)
        return offer

    async def expire_offers(self, now: float) -> list[ExpiredOffer]:
        expired: list[ExpiredOffer] = []
        while self._offer_expiries and self._offer_expiries[0][0] <= now:
            _, offer_id = heapq.heappop(self._offer_expiries)
            live = self._offers.get(offer_id)
            if live is None:
                continue
            spec = self._specialists[live.specialist_id]
            offer = self._withdraw_offer(spec)
            spec.misses += 1
            now_away = spec.misses >= self.policy.max_consecutive_misses
            if now_away:
                spec.desired = DesiredPresence.AWAY
            self._make_idle(spec, now)
            expired.append(ExpiredOffer(offer=offer, specialist_now_away=now_away))
        return expired

    def _live_offer(self, offer_id: str, specialist_id: str, now: float) -> Offer:
        offer = self._offers.get(offer_id)
        if offer is None or offer.specialist_id != specialist_id or offer.expires_at <= now:
            raise OfferExpired(offer_id)
        return offer

    async def accept(self, offer_id: str, specialist_id: str, now: float) -> Assignment:
        offer = self._live_offer(offer_id, specialist_id, now)
        del self._offers[offer_id]
        spec = self._specialists[specialist_id]
        entry = self._calls.pop(offer.call_id)
        self._order.discard(entry.rank)
        self._unplace(entry)
        self._log_change(ChangeKind.LEFT, entry)
        spec.offer_id = None
        spec.call_id = offer.call_id
        spec.in_wrap_up = False
        spec.misses = 0
        return Assignment(call_id=offer.call_id, specialist_id=specialist_id, accepted_at=now)

    async def decline(self, offer_id: str, specialist_id: str, now: float) -> Offer:
        self._live_offer(offer_id, specialist_id, now)
        spec = self._specialists[specialist_id]
        offer = self._withdraw_offer(spec)
        self._make_idle(spec, now)
        return offer

    async def pending_offer(self, specialist_id: str) -> Offer | None:
        spec = self._specialists.get(specialist_id)
        if spec is None or spec.offer_id is None:
            return None
        return self._offers.get(spec.offer_id)

    # -- after accept ----------------------------------------------------------
    async def end_call(self, specialist_id: str, now: float) -> None:
        spec = self._get(specialist_id)
        if spec.call_id is not None:
            spec.in_wrap_up = True

    async def finish_wrap_up(self, specialist_id: str, now: float) -> SpecialistState:
        spec = self._get(specialist_id)
        spec.call_id = None
        spec.in_wrap_up = False
        self._make_idle(spec, now)
        return spec.state

    async def live_calls(self) -> LiveCalls:
        return LiveCalls(
            waiting=frozenset(self._calls),
            offered=frozenset(c for c, e in self._calls.items() if e.offer_id is not None),
            holding={i: s.call_id for i, s in self._specialists.items() if s.call_id},
        )

    async def snapshot(self, now: float) -> QueueSnapshot:
        self._promote_due(now)
        waiting = tuple(
            WaitingCallView(
                call=self._calls[rank[2]].call,
                position=index + 1,
                step=self._calls[rank[2]].step,
                offered=self._calls[rank[2]].offer_id is not None,
            )
            for index, rank in enumerate(self._order)
        )
        specialists = tuple(s.view() for s in self._specialists.values())
        return QueueSnapshot(taken_at=now, waiting=waiting, specialists=specialists)
