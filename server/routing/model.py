"""Routing domain: calls waiting, specialists, offers, and the policy that orders them.

Pure values and functions only. Time is always passed in (`now`, seconds since the
epoch as a float) so every rule here can be tested without a clock.

Ordering. A call's score is ``priority weight + seconds waited``; the waiting call
with the highest score is served first. Because every waiting call's score grows at
the same rate, comparing scores at any instant is the same as comparing
``enqueued_at - weight`` (its *rank key*): a constant per call. Backends sort on the
rank key, so nothing needs re-sorting as time passes, and a normal call still
overtakes an urgent one that arrived more than ``weight`` seconds after it — nobody
starves.

The ladder. A call whose intent needs a skill (see :mod:`server.routing.intents`)
first waits for a specialist who has that skill and, if the call has a preferred
dialect, speaks it (step ``skill``) until ``skill_wait_s`` after it arrived. A call
with a preferred dialect then waits for a specialist who speaks it at or above the
proficiency threshold (step ``dialect``) until ``dialect_wait_s`` after it arrived;
then any specialist may take it (step ``any``). Urgent calls have shorter waits
for both. A step with nobody eligible logged in is skipped at once. With the
default waits (skill 15 s within the dialect's 30 s) a call with a dialect reaches
``any`` exactly when it did before skills were routed; a call without a dialect
but with a skill waits up to ``skill_wait_s`` for a skilled specialist.
"""

from __future__ import annotations

import enum
from collections.abc import Mapping
from dataclasses import dataclass, field

from .intents import covered_intents, routed_intent, skill_key, skill_keys


class PriorityClass(enum.StrEnum):
    """Why a call is more or less urgent. Weights come from :class:`RoutingPolicy`."""

    NORMAL = "normal"
    REDIRECT = "redirect"
    URGENT = "urgent"


class LadderStep(enum.StrEnum):
    """Steps in ladder order; a call only ever moves forward."""

    SKILL = "skill"
    DIALECT = "dialect"
    ANY = "any"


class SpecialistState(enum.StrEnum):
    """What a specialist is doing, as routing sees it.

    ``offline`` means no live desk socket (whatever presence was asked for);
    ``reserved`` means an offer is out to them.
    """

    OFFLINE = "offline"
    AVAILABLE = "available"
    AWAY = "away"
    RESERVED = "reserved"
    BUSY = "busy"
    WRAP_UP = "wrap_up"


class DesiredPresence(enum.StrEnum):
    """What the specialist asked for with ``PUT /desk/presence``."""

    AVAILABLE = "available"
    AWAY = "away"


@dataclass(frozen=True)
class RoutingPolicy:
    """Tunable numbers of the routing ladder and leases (all seconds unless named)."""

    dialect_wait_s: float = 30.0
    urgent_dialect_wait_s: float = 10.0
    skill_wait_s: float = 15.0
    urgent_skill_wait_s: float = 5.0
    proficiency_threshold: int = 3
    weight_normal_s: float = 0.0
    weight_redirect_s: float = 120.0
    weight_urgent_s: float = 600.0
    offer_lease_s: float = 15.0
    max_consecutive_misses: int = 3
    # A desk socket that has not been seen for this long counts as offline even
    # if its node died without saying so.
    presence_ttl_s: float = 45.0

    def __post_init__(self) -> None:
        if self.offer_lease_s <= 0:
            raise ValueError("offer_lease_s must be positive")
        if self.max_consecutive_misses < 1:
            raise ValueError("max_consecutive_misses must be at least 1")
        if not 1 <= self.proficiency_threshold <= 5:
            raise ValueError("proficiency_threshold must be between 1 and 5")

    def weight(self, priority: PriorityClass) -> float:
        return {
            PriorityClass.NORMAL: self.weight_normal_s,
            PriorityClass.REDIRECT: self.weight_redirect_s,
            PriorityClass.URGENT: self.weight_urgent_s,
        }[priority]

    def dialect_wait(self, priority: PriorityClass) -> float:
        if priority is PriorityClass.URGENT:
            return self.urgent_dialect_wait_s
        return self.dialect_wait_s

    def skill_wait(self, priority: PriorityClass) -> float:
        if priority is PriorityClass.URGENT:
            return self.urgent_skill_wait_s
        return self.skill_wait_s


@dataclass(frozen=True)
class QueuedCall:
    """A call as the queue holds it."""

    call_id: str
    customer_id: str
    dialect: str | None
    priority: PriorityClass
    enqueued_at: float
    # What the customer calls about (an intent of server.routing.intents, or None).
    intent: str | None = None

    @property
    def skill_key(self) -> str | None:
        """The skill-step pool this call waits in first, or None (no skill step)."""
        intent = routed_intent(self.intent)
        return None if intent is None else skill_key(self.dialect, intent)

    def rank_key(self, policy: RoutingPolicy) -> float:
        """Smaller is served first; see the module docstring."""
        return self.enqueued_at - policy.weight(self.priority)

    def score(self, policy: RoutingPolicy, now: float) -> float:
        return policy.weight(self.priority) + max(0.0, now - self.enqueued_at)

    def dialect_deadline(self, policy: RoutingPolicy) -> float:
        return self.enqueued_at + policy.dialect_wait(self.priority)

    def skill_deadline(self, policy: RoutingPolicy) -> float:
        return self.enqueued_at + policy.skill_wait(self.priority)


@dataclass(frozen=True)
class SpecialistProfile:
    """Who a specialist is, for routing: dialects with proficiency 1-5, and skills."""

    specialist_id: str
    dialects: Mapping[str, int]
    skills: frozenset[str] = field(default_factory=frozenset)

    def speaks(self, dialect: str, policy: RoutingPolicy) -> bool:
        return self.dialects.get(dialect, 0) >= policy.proficiency_threshold

    def fluent_dialects(self, policy: RoutingPolicy) -> frozenset[str]:
        return frozenset(d for d, p in self.dialects.items() if p >= policy.proficiency_threshold)

    def intents(self) -> frozenset[str]:
        """The intents this specialist's skills cover."""
        return covered_intents(self.skills)

    def skill_keys(self, policy: RoutingPolicy) -> frozenset[str]:
        """The skill-step pools this specialist serves."""
        return skill_keys(self.fluent_dialects(policy), self.intents())


@dataclass(frozen=True)
class Offer:
    """A reservation of one waiting call for one specialist until ``expires_at``."""

    offer_id: str
    call_id: str
    specialist_id: str
    step: LadderStep
    created_at: float
    expires_at: float


@dataclass(frozen=True)
class WaitingCallView:
    """One waiting call in queue order, as seen by estimates and statistics."""

    call: QueuedCall
    position: int
    step: LadderStep
    offered: bool


@dataclass(frozen=True)
class SpecialistView:
    specialist_id: str
    state: SpecialistState
    fluent_dialects: frozenset[str]
    call_id: str | None
    misses: int
    # The intents this specialist's skills cover (server.routing.intents).
    intents: frozenset[str] = frozenset()


@dataclass(frozen=True)
class QueueSnapshot:
    """Everything waiting and everyone working, at one instant, in queue order."""

    taken_at: float
    waiting: tuple[WaitingCallView, ...]
    specialists: tuple[SpecialistView, ...]


@dataclass(frozen=True)
class ExpiredOffer:
    """An offer withdrawn because its lease ran out, and what that did to the specialist."""

    offer: Offer
    specialist_now_away: bool


@dataclass(frozen=True)
class Assignment:
    """A call held by a specialist (after accept)."""

    call_id: str
    specialist_id: str
    accepted_at: float


def ladder_step(
    call: QueuedCall,
    policy: RoutingPolicy,
    now: float,
    dialect_has_logged_in_specialist: bool,
    skill_has_logged_in_specialist: bool = False,
) -> LadderStep:
    """Which step of its ladder a waiting call is on at ``now``."""
    if (
        call.skill_key is not None
        and skill_has_logged_in_specialist
        and now < call.skill_deadline(policy)
    ):
        return LadderStep.SKILL
    if call.dialect is None or not dialect_has_logged_in_specialist:
        return LadderStep.ANY
    if now >= call.dialect_deadline(policy):
        return LadderStep.ANY
    return LadderStep.DIALECT


def step_after_skill(call: QueuedCall, dialect_has_logged_in_specialist: bool) -> LadderStep:
    """Where a call goes when its skill step ends (its wait ran out, or nobody with
    the skill is logged in any more). The dialect step's own deadline is applied
    by the next promotion pass, as for any dialect-step call."""
    if call.dialect is None or not dialect_has_logged_in_specialist:
        return LadderStep.ANY
    return LadderStep.DIALECT
