"""Stateful property tests: random interleavings keep the backend invariants.

:class:`RoutingMachine` drives one backend through arrivals, cancellations, desk
log-ins and log-outs, presence changes, time passing (leases and ladders), dispatch,
racing accepts, declines and wrap-ups, and after every step checks that

- no call is lost: every call that arrived and was neither cancelled nor accepted
  is waiting, with a position;
- no call is offered or held by two specialists, and no specialist has two offers
  or calls (or an offer and a call);
- dispatch respects the order: afterwards no unoffered waiting call is left with an
  idle specialist eligible for it, and no specialist got a call while a better
  ranked unoffered call they were eligible for was left waiting.

For Redis the two "nodes" are two backends on two clients of the same server,
racing with ``asyncio.gather``; for the in-process backend both nodes are the same
object, so racing calls simply run one after the other.

:class:`LockstepMachine` runs the same operations on both backends at once and
checks that they answer alike: the Redis backend is held to the in-process
reference, not only to the invariants.

Each example gets its own event loop (rules are synchronous) and, for Redis, its
own key prefix; the keys are deleted when the example ends.
"""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Awaitable, Callable, Coroutine, Sequence
from operator import methodcaller
from typing import Any, ClassVar, TypeVar

import pytest
from hypothesis import HealthCheck, event, settings
from hypothesis import strategies as st
from hypothesis.stateful import (
    RuleBasedStateMachine,
    initialize,
    invariant,
    precondition,
    rule,
    run_state_machine_as_test,
)

from server.routing.backend import QueueBackend
from server.routing.errors import OfferExpired, RoutingError
from server.routing.memory import MemoryQueueBackend
from server.routing.model import (
    DesiredPresence,
    ExpiredOffer,
    LadderStep,
    Offer,
    PriorityClass,
    QueuedCall,
    QueueSnapshot,
    SpecialistProfile,
    SpecialistState,
    SpecialistView,
    WaitingCallView,
)
from server.routing.redis_backend import RedisQueueBackend
from tests.routing.support import POLICY

T = TypeVar("T")

# Fluent (proficiency 3 or more): s0 cmn; s1 wuu, cmn; s2 yue; s3 wuu; s4 yue, cmn; s5 none.
SPECIALISTS: dict[str, dict[str, int]] = {
    "s0": {"cmn": 5},
    "s1": {"wuu": 4, "cmn": 3},
    "s2": {"yue": 5},
    "s3": {"cmn": 2, "wuu": 5},
    "s4": {"yue": 3, "cmn": 4},
    "s5": {"wuu": 1},
}
# Skills (intents covered): s0 transfer; s1 deposit, loss_report (passbook);
# s2 transfer; s3 none; s4 password, deposit; s5 pension_certification.
SKILLS: dict[str, frozenset[str]] = {
    "s0": frozenset({"transfer"}),
    "s1": frozenset({"time_deposit", "passbook"}),
    "s2": frozenset({"transfer"}),
    "s3": frozenset(),
    "s4": frozenset({"password", "deposit"}),
    "s5": frozenset({"pension"}),
}
SPECIALIST = st.sampled_from(sorted(SPECIALISTS))
DIALECT = st.sampled_from((None, "cmn", "wuu", "yue", "hak"))  # nobody speaks Hakka
# "other" and None never have a skill step; s1 covers "loss_report" through passbook.
INTENT = st.sampled_from(
    (None, "other", "transfer", "deposit", "loss_report", "password", "pension_certification")
)
PRIORITY = st.sampled_from(tuple(PriorityClass))
NODE = st.integers(0, 1)
STEP_S = st.sampled_from((0.5, 2.0, 5.0, 10.0, 16.0, 31.0, 50.0))
AT_DESKS = st.lists(SPECIALIST, min_size=2, unique=True)
ARRIVALS = st.lists(st.tuples(DIALECT, PRIORITY, INTENT), min_size=3, max_size=10)
PROFICIENCIES = st.dictionaries(st.sampled_from(("cmn", "wuu", "yue")), st.integers(1, 5))
SKILL_SETS = st.frozensets(
    st.sampled_from(("transfer", "passbook", "password", "deposit", "pension", "card")),
    max_size=3,
)

SETTINGS = settings(
    max_examples=50,
    stateful_step_count=40,
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
# Every step on Redis is several round trips, and the machine running the suite is
# shared: fewer examples there keep each Redis test inside its bound below (42 s
# and 58 s measured on a loaded machine; 50 examples ran past the suite's default
# 120 s during a full run under heavy load).
REDIS_SETTINGS = settings(SETTINGS, max_examples=35)
REDIS_BOUND_S = 300


def eligible(waiting: WaitingCallView, specialist: SpecialistView) -> bool:
    """Who may take a call on its current step, spelled out from the ladder's
    definition (not derived from the backends' pools)."""
    call = waiting.call
    if waiting.step is LadderStep.ANY:
        return True
    if waiting.step is LadderStep.DIALECT:
        return call.dialect in specialist.fluent_dialects
    return call.intent in specialist.intents and (
        call.dialect is None or call.dialect in specialist.fluent_dialects
    )


def ladder_order_kept(
    waiting: WaitingCallView, specialists: Sequence[SpecialistView], now: float
) -> bool:
    """A call is never on a step its ladder has passed (by time), nor on the skill
    step without an intent that needs one, nor on a step nobody logged in serves
    (a logged-in specialist is never ``offline``)."""
    call = waiting.call
    if waiting.step is LadderStep.SKILL:
        if call.skill_key is None or now >= call.skill_deadline(POLICY):
            return False
    elif waiting.step is LadderStep.DIALECT:
        if call.dialect is None or now >= call.dialect_deadline(POLICY):
            return False
    else:
        return True
    return any(s.state is not SpecialistState.OFFLINE and eligible(waiting, s) for s in specialists)


class Harness:
    """A private event loop and the backends (nodes) of one example."""

    def __init__(self, redis_url: str | None) -> None:
        self.loop = asyncio.new_event_loop()
        self.redis_url = redis_url
        self.prefix = f"sm:{uuid.uuid4().hex[:12]}:"
        self.owned: list[QueueBackend] = []

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.loop.run_until_complete(coro)

    def memory(self) -> QueueBackend:
        backend = MemoryQueueBackend(POLICY)
        self.owned.append(backend)
        return backend

    def redis(self) -> QueueBackend:
        assert self.redis_url is not None
        backend = RedisQueueBackend.from_url(self.redis_url, POLICY, prefix=self.prefix)
        self.owned.append(backend)
        return backend

    def close(self) -> None:
        async def _close() -> None:
            redis_nodes = [b for b in self.owned if isinstance(b, RedisQueueBackend)]
            if redis_nodes:
                await redis_nodes[0].clear()
            for backend in self.owned:
                await backend.close()

        try:
            self.run(_close())
        finally:
            self.loop.close()


class RoutingMachine(RuleBasedStateMachine):
    """Invariants of one backend under random operations from two nodes.

    The machine keeps its own record of what must be true (calls waiting, offers
    out, calls held) from what the operations answered, and compares the backend
    with it after every step.
    """

    kind: ClassVar[str] = "memory"
    redis_url: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.harness = Harness(self.redis_url)
        if self.kind == "memory":
            node = self.harness.memory()
            self.nodes = [node, node]
        else:
            self.nodes = [self.harness.redis(), self.harness.redis()]
        self.now = 1_000.0
        self.calls: dict[str, QueuedCall] = {}
        self.gone: set[str] = set()  # cancelled or accepted
        self.offers: dict[str, Offer] = {}  # specialist -> live offer
        self.held: dict[str, str] = {}  # specialist -> call held (busy or wrap-up)
        for specialist_id, dialects in SPECIALISTS.items():
            profile = SpecialistProfile(specialist_id, dialects, SKILLS[specialist_id])
            self.run(self.nodes[0].register(profile))

    def teardown(self) -> None:
        self.harness.close()

    def run(self, coro: Coroutine[Any, Any, T]) -> T:
        return self.harness.run(coro)

    def waiting_ids(self) -> set[str]:
        return set(self.calls) - self.gone

    def withdrawn(self, offers: Sequence[Offer]) -> None:
        for offer in offers:
            assert self.offers.pop(offer.specialist_id) == offer

    @initialize(at_desks=AT_DESKS, arrivals=ARRIVALS)
    def open_the_branch(
        self, at_desks: list[str], arrivals: list[tuple[str | None, PriorityClass, str | None]]
    ) -> None:
        """Start busy: some desks available, some calls waiting (random rules alone
        would take many steps to get there)."""
        for specialist_id in at_desks:
            self.connect(specialist_id, True, 0)
        for dialect, priority, intent in arrivals:
            self.arrive(dialect, priority, 1, intent)

    # -- calls -------------------------------------------------------------------
    @rule(dialect=DIALECT, priority=PRIORITY, node=NODE, intent=INTENT)
    def arrive(
        self, dialect: str | None, priority: PriorityClass, node: int, intent: str | None
    ) -> None:
        call = QueuedCall(f"c{len(self.calls)}", "cust", dialect, priority, self.now, intent)
        self.calls[call.call_id] = call
        assert self.run(self.nodes[node].enqueue(call, self.now)) >= 1

    @precondition(lambda self: self.waiting_ids())
    @rule(data=st.data(), node=NODE)
    def enqueue_again(self, data: st.DataObject, node: int) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.waiting_ids())))
        before = self.run(self.nodes[0].position(call_id))
        assert self.run(self.nodes[node].enqueue(self.calls[call_id], self.now)) == before

    @precondition(lambda self: self.calls)
    @rule(data=st.data(), node=NODE)
    def cancel(self, data: st.DataObject, node: int) -> None:
        call_id = data.draw(st.sampled_from(sorted(self.calls)))
        withdrawn = self.run(self.nodes[node].remove(call_id, self.now))
        expected = [o for o in self.offers.values() if o.call_id == call_id]
        assert withdrawn == (expected[0] if expected else None)
        self.withdrawn(expected)
        self.gone.add(call_id)

    # -- desks ---------------------------------------------------------------------
    @rule(specialist_id=SPECIALIST, available=st.booleans(), node=NODE)
    def connect(self, specialist_id: str, available: bool, node: int) -> None:
        self.run(self.nodes[node].connect(specialist_id, self.now))
        if available:
            self.run(
                self.nodes[node].set_presence(specialist_id, DesiredPresence.AVAILABLE, self.now)
            )

    @rule(specialist_id=SPECIALIST, node=NODE)
    def disconnect(self, specialist_id: str, node: int) -> None:
        withdrawn = self.run(self.nodes[node].disconnect(specialist_id, self.now))
        assert withdrawn == self.offers.pop(specialist_id, None)

    @rule(specialist_id=SPECIALIST, desired=st.sampled_from(tuple(DesiredPresence)), node=NODE)
    def set_presence(self, specialist_id: str, desired: DesiredPresence, node: int) -> None:
        self.run(self.nodes[node].set_presence(specialist_id, desired, self.now))

    @rule(specialist_id=SPECIALIST)
    def heartbeat(self, specialist_id: str) -> None:
        self.run(self.nodes[1].heartbeat(specialist_id, self.now))

    @rule(specialist_id=SPECIALIST, dialects=PROFICIENCIES, skills=SKILL_SETS, node=NODE)
    def update_profile(
        self, specialist_id: str, dialects: dict[str, int], skills: frozenset[str], node: int
    ) -> None:
        profile = SpecialistProfile(specialist_id, dialects, skills)
        self.run(self.nodes[node].register(profile))

    @rule(node=NODE)
    def reap_stale(self, node: int) -> None:
        self.withdrawn(self.run(self.nodes[node].reap_stale(self.now)))

    # -- time and the node loop --------------------------------------------------------
    @rule(seconds=STEP_S)
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule(node=NODE)
    def dispatch(self, node: int) -> None:
        self.dispatched(self.run(self.nodes[node].dispatch(self.now)))

    @rule(seconds=STEP_S)
    def tick_on_both_nodes(self, seconds: float) -> None:
        """What every node's routing loop does: time passes, leases end, dispatch."""
        self.now += seconds
        first, second = self.nodes
        expired = self.run(_gather(first.expire_offers(self.now), second.expire_offers(self.now)))
        self.expired([e for batch in expired for e in batch])
        batches = self.run(_gather(first.dispatch(self.now), second.dispatch(self.now)))
        self.dispatched([offer for batch in batches for offer in batch])

    @rule(node=NODE)
    def expire_offers(self, node: int) -> None:
        self.expired(self.run(self.nodes[node].expire_offers(self.now)))

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), node=NODE, late=st.booleans())
    def accept(self, data: st.DataObject, node: int, late: bool) -> None:
        offer = self.offers[data.draw(st.sampled_from(sorted(self.offers)))]
        now = offer.expires_at if late else self.now
        outcome = self.run(
            _attempt(self.nodes[node].accept(offer.offer_id, offer.specialist_id, now))
        )
        self.settle(offer, [outcome], now)

    @precondition(lambda self: self.offers)
    @rule(data=st.data())
    def race_to_accept_one_offer(self, data: st.DataObject) -> None:
        offer = self.offers[data.draw(st.sampled_from(sorted(self.offers)))]
        first, second = self.nodes
        outcomes = self.run(
            _gather(
                _attempt(first.accept(offer.offer_id, offer.specialist_id, self.now)),
                _attempt(second.accept(offer.offer_id, offer.specialist_id, self.now)),
            )
        )
        self.settle(offer, outcomes, self.now)

    @precondition(lambda self: len(self.offers) >= 2)
    @rule(data=st.data())
    def race_to_accept_two_offers(self, data: st.DataObject) -> None:
        pair = data.draw(
            st.lists(st.sampled_from(sorted(self.offers)), min_size=2, max_size=2, unique=True)
        )
        offers = [self.offers[specialist_id] for specialist_id in pair]
        first, second = self.nodes
        outcomes = self.run(
            _gather(
                _attempt(first.accept(offers[0].offer_id, offers[0].specialist_id, self.now)),
                _attempt(second.accept(offers[1].offer_id, offers[1].specialist_id, self.now)),
            )
        )
        for offer, outcome in zip(offers, outcomes, strict=True):
            self.settle(offer, [outcome], self.now)

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), impostor=SPECIALIST, node=NODE)
    def accept_someone_elses_offer(self, data: st.DataObject, impostor: str, node: int) -> None:
        offer = self.offers[data.draw(st.sampled_from(sorted(self.offers)))]
        if impostor == offer.specialist_id:
            return
        outcome = self.run(_attempt(self.nodes[node].accept(offer.offer_id, impostor, self.now)))
        assert isinstance(outcome, OfferExpired)

    @precondition(lambda self: self.offers)
    @rule(data=st.data(), node=NODE)
    def decline(self, data: st.DataObject, node: int) -> None:
        offer = self.offers[data.draw(st.sampled_from(sorted(self.offers)))]
        outcome = self.run(
            _attempt(self.nodes[node].decline(offer.offer_id, offer.specialist_id, self.now))
        )
        if offer.expires_at > self.now:
            assert outcome == offer
            del self.offers[offer.specialist_id]
        else:
            assert isinstance(outcome, OfferExpired)

    # -- after accept ----------------------------------------------------------------
    @precondition(lambda self: self.held)
    @rule(data=st.data(), node=NODE)
    def end_call(self, data: st.DataObject, node: int) -> None:
        specialist_id = data.draw(st.sampled_from(sorted(self.held)))
        self.run(self.nodes[node].end_call(specialist_id, self.now))

    @rule(specialist_id=SPECIALIST, node=NODE)
    def finish_wrap_up(self, specialist_id: str, node: int) -> None:
        self.run(self.nodes[node].finish_wrap_up(specialist_id, self.now))
        self.held.pop(specialist_id, None)

    # -- checks ------------------------------------------------------------------------
    def settle(self, offer: Offer, outcomes: Sequence[object], now: float) -> None:
        """Exactly one accept of a live offer wins; none of a lapsed one."""
        wins = [o for o in outcomes if not isinstance(o, OfferExpired)]
        if offer.expires_at > now:
            assert len(wins) == 1, outcomes
            del self.offers[offer.specialist_id]
            self.gone.add(offer.call_id)
            self.held[offer.specialist_id] = offer.call_id
        else:
            assert wins == []

    def expired(self, expired: Sequence[ExpiredOffer]) -> None:
        due = {o.offer_id for o in self.offers.values() if o.expires_at <= self.now}
        assert sorted(e.offer.offer_id for e in expired) == sorted(due)
        self.withdrawn([e.offer for e in expired])

    def dispatched(self, offers: list[Offer]) -> None:
        assert len({o.call_id for o in offers}) == len(offers)
        for offer in offers:
            assert offer.specialist_id not in self.offers
            assert offer.specialist_id not in self.held
            assert offer.call_id in self.waiting_ids()
            assert offer.call_id not in {o.call_id for o in self.offers.values()}
            self.offers[offer.specialist_id] = offer
            event(f"offer on the {offer.step} step")
        snapshot = self.run(self.nodes[0].snapshot(self.now))
        views = {s.specialist_id: s for s in snapshot.specialists}
        idle = [s for s in snapshot.specialists if s.state is SpecialistState.AVAILABLE]
        for waiting in snapshot.waiting:
            if not waiting.offered:
                stranded = [s.specialist_id for s in idle if eligible(waiting, s)]
                assert not stranded, (waiting, stranded)
        by_call = {w.call.call_id: w for w in snapshot.waiting}
        for offer in offers:
            chosen = by_call[offer.call_id]
            specialist = views[offer.specialist_id]
            assert chosen.offered and chosen.step is offer.step
            assert eligible(chosen, specialist)
            passed_over = [
                w.call.call_id
                for w in snapshot.waiting[: chosen.position - 1]
                if not w.offered and eligible(w, specialist)
            ]
            assert not passed_over, (offer, passed_over)

    @invariant()
    def nothing_lost_nothing_doubled(self) -> None:
        node = self.nodes[1]
        snapshot: QueueSnapshot = self.run(node.snapshot(self.now))
        ids = [w.call.call_id for w in snapshot.waiting]
        assert sorted(ids) == sorted(self.waiting_ids())
        assert [w.position for w in snapshot.waiting] == list(range(1, len(ids) + 1))
        for waiting in snapshot.waiting:
            assert self.run(node.position(waiting.call.call_id)) == waiting.position
        offered = {w.call.call_id for w in snapshot.waiting if w.offered}
        assert offered == {o.call_id for o in self.offers.values()}
        for waiting in snapshot.waiting:
            assert ladder_order_kept(waiting, snapshot.specialists, self.now), waiting
        for view in snapshot.specialists:
            offer = self.run(node.pending_offer(view.specialist_id))
            assert offer == self.offers.get(view.specialist_id)
            assert view.call_id == self.held.get(view.specialist_id)
            assert (view.state is SpecialistState.RESERVED) == (offer is not None)
            assert offer is None or view.call_id is None
        held = [v.call_id for v in snapshot.specialists if v.call_id is not None]
        assert len(held) == len(set(held))
        assert not set(held) & set(ids)


class LockstepMachine(RuleBasedStateMachine):
    """The same operations on both backends at once: they must answer alike."""

    redis_url: ClassVar[str | None] = None

    def __init__(self) -> None:
        super().__init__()
        self.harness = Harness(self.redis_url)
        self.pair = (self.harness.memory(), self.harness.redis())
        self.now = 1_000.0
        self.arrived = 0
        for specialist_id, dialects in SPECIALISTS.items():
            self.update_profile(specialist_id, dialects, SKILLS[specialist_id])

    def teardown(self) -> None:
        self.harness.close()

    @initialize(at_desks=AT_DESKS, arrivals=ARRIVALS)
    def open_the_branch(
        self, at_desks: list[str], arrivals: list[tuple[str | None, PriorityClass, str | None]]
    ) -> None:
        for specialist_id in at_desks:
            self.connect(specialist_id, True)
        for dialect, priority, intent in arrivals:
            self.arrive(dialect, priority, intent)

    def both(self, operation: Callable[[QueueBackend], Awaitable[object]]) -> None:
        reference, other = (self.harness.run(_outcome(operation(b))) for b in self.pair)
        assert _comparable(other) == _comparable(reference)

    @rule(dialect=DIALECT, priority=PRIORITY, intent=INTENT)
    def arrive(self, dialect: str | None, priority: PriorityClass, intent: str | None) -> None:
        call = QueuedCall(f"c{self.arrived}", "cust", dialect, priority, self.now, intent)
        self.arrived += 1
        self.both(lambda b: b.enqueue(call, self.now))

    @precondition(lambda self: self.arrived)
    @rule(data=st.data())
    def cancel(self, data: st.DataObject) -> None:
        call_id = f"c{data.draw(st.integers(0, self.arrived - 1))}"
        self.both(lambda b: b.remove(call_id, self.now))

    @rule(specialist_id=SPECIALIST, available=st.booleans())
    def connect(self, specialist_id: str, available: bool) -> None:
        self.both(lambda b: b.connect(specialist_id, self.now))
        if available:
            self.set_presence(specialist_id, DesiredPresence.AVAILABLE)

    @rule(specialist_id=SPECIALIST)
    def disconnect(self, specialist_id: str) -> None:
        self.both(lambda b: b.disconnect(specialist_id, self.now))

    @rule(specialist_id=SPECIALIST, desired=st.sampled_from(tuple(DesiredPresence)))
    def set_presence(self, specialist_id: str, desired: DesiredPresence) -> None:
        self.both(lambda b: b.set_presence(specialist_id, desired, self.now))

    @rule(specialist_id=SPECIALIST)
    def heartbeat(self, specialist_id: str) -> None:
        self.both(lambda b: b.heartbeat(specialist_id, self.now))

    @rule(specialist_id=SPECIALIST, dialects=PROFICIENCIES, skills=SKILL_SETS)
    def update_profile(
        self, specialist_id: str, dialects: dict[str, int], skills: frozenset[str]
    ) -> None:
        self.both(lambda b: b.register(SpecialistProfile(specialist_id, dialects, skills)))

    @rule()
    def reap_stale(self) -> None:
        self.both(lambda b: b.reap_stale(self.now))

    @rule(seconds=STEP_S)
    def advance(self, seconds: float) -> None:
        self.now += seconds

    @rule()
    def dispatch(self) -> None:
        self.both(lambda b: b.dispatch(self.now))

    @rule()
    def expire_offers(self) -> None:
        # Offers with the same lease end expire in offer-id order, and ids are random.
        self.both(lambda b: _by_call(b.expire_offers(self.now)))

    @rule(specialist_id=SPECIALIST, late=st.sampled_from((0.0, 0.0, 15.0)))
    def accept(self, specialist_id: str, late: float) -> None:
        async def accept(backend: QueueBackend) -> object:
            offer = await backend.pending_offer(specialist_id)
            if offer is None:
                return None
            return await backend.accept(offer.offer_id, specialist_id, self.now + late)

        self.both(accept)

    @rule(specialist_id=SPECIALIST)
    def decline(self, specialist_id: str) -> None:
        async def decline(backend: QueueBackend) -> object:
            offer = await backend.pending_offer(specialist_id)
            if offer is None:
                return None
            return await backend.decline(offer.offer_id, specialist_id, self.now)

        self.both(decline)

    @rule(specialist_id=SPECIALIST)
    def end_call(self, specialist_id: str) -> None:
        self.both(lambda b: b.end_call(specialist_id, self.now))

    @rule(specialist_id=SPECIALIST)
    def finish_wrap_up(self, specialist_id: str) -> None:
        self.both(lambda b: b.finish_wrap_up(specialist_id, self.now))

    @invariant()
    def same_state(self) -> None:
        self.both(lambda b: b.snapshot(self.now))
        for specialist_id in SPECIALISTS:
            self.both(methodcaller("pending_offer", specialist_id))
        for index in range(self.arrived):
            self.both(methodcaller("position", f"c{index}"))


def _comparable(value: object) -> object:
    """Offer ids are random, so offers compare by everything else (and errors by type)."""
    if isinstance(value, Offer):
        return (value.call_id, value.specialist_id, value.step, value.created_at, value.expires_at)
    if isinstance(value, ExpiredOffer):
        return (_comparable(value.offer), value.specialist_now_away)
    if isinstance(value, list):
        return [_comparable(v) for v in value]
    if isinstance(value, RoutingError):
        return ("raised", type(value).__name__)
    return value


async def _by_call(expiring: Awaitable[list[ExpiredOffer]]) -> list[ExpiredOffer]:
    return sorted(await expiring, key=lambda e: e.offer.call_id)


async def _outcome(result: Awaitable[object]) -> object:
    try:
        return await result
    except RoutingError as exc:
        return exc


async def _attempt(coro: Coroutine[Any, Any, T]) -> T | OfferExpired:
    try:
        return await coro
    except OfferExpired as exc:
        return exc


async def _gather(*coros: Coroutine[Any, Any, T]) -> list[T]:
    return list(await asyncio.gather(*coros))


def test_memory_backend_keeps_its_invariants() -> None:
    machine = type("MemoryRouting", (RoutingMachine,), {"kind": "memory"})
    run_state_machine_as_test(machine, settings=SETTINGS)


@pytest.mark.redis
@pytest.mark.timeout(REDIS_BOUND_S)
def test_redis_backend_keeps_its_invariants(redis_url: str) -> None:
    machine = type("RedisRouting", (RoutingMachine,), {"kind": "redis", "redis_url": redis_url})
    run_state_machine_as_test(machine, settings=REDIS_SETTINGS)


@pytest.mark.redis
@pytest.mark.timeout(REDIS_BOUND_S)
def test_redis_backend_answers_like_the_reference(redis_url: str) -> None:
    machine = type("Lockstep", (LockstepMachine,), {"redis_url": redis_url})
    run_state_machine_as_test(machine, settings=REDIS_SETTINGS)
