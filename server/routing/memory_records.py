"""What the in-process queue backend keeps: one record per waiting call and per
specialist, and the candidates of one dispatch run (:mod:`server.routing.memory`)."""

from __future__ import annotations

from dataclasses import dataclass, field

from sortedcontainers import SortedList

from .model import (
    DesiredPresence,
    LadderStep,
    QueuedCall,
    SpecialistProfile,
    SpecialistState,
    SpecialistView,
)

RankTuple = tuple[float, int, str]  # (rank key, arrival sequence, call id)
IdleTuple = tuple[float, str]  # (idle since, specialist id)


@dataclass
class WaitingEntry:
    call: QueuedCall
    rank: RankTuple
    step: LadderStep
    offer_id: str | None = None


@dataclass(slots=True)
class DispatchCandidate:
    """An unoffered queue in one dispatch run, its head and its idle pool."""

    head: RankTuple
    queue: SortedList
    pool: SortedList


@dataclass
class SpecialistRecord:
    profile: SpecialistProfile
    fluent: frozenset[str]
    skill_keys: frozenset[str] = frozenset()
    #: the intents the profile's skills cover (derived once, read by every snapshot)
    intents: frozenset[str] = frozenset()
    desired: DesiredPresence = DesiredPresence.AWAY
    connected: bool = False
    connection: str = ""
    last_seen: float = 0.0
    idle_since: float = 0.0
    misses: int = 0
    offer_id: str | None = None
    call_id: str | None = None
    in_wrap_up: bool = False
    idle_entry: IdleTuple | None = field(default=None)

    @property
    def state(self) -> SpecialistState:
        if self.call_id is not None:
            return SpecialistState.WRAP_UP if self.in_wrap_up else SpecialistState.BUSY
        if not self.connected:
            return SpecialistState.OFFLINE
        if self.offer_id is not None:
            return SpecialistState.RESERVED
        return SpecialistState(self.desired.value)

    def view(self) -> SpecialistView:
        """What a snapshot shows of this specialist."""
        return SpecialistView(
            specialist_id=self.profile.specialist_id,
            state=self.state,
            fluent_dialects=self.fluent,
            call_id=self.call_id,
            misses=self.misses,
            intents=self.intents,
        )
