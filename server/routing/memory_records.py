"""What the in-process queue backend keeps: one record per waiting call and per
specialist, the candidates of one dispatch run, and the change log
(:mod:`server.routing.memory`)."""

from __future__ import annotations

import itertools
from collections import deque
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
from .standing import ChangeKind, QueueChange, QueueChanges

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


def of_step(
    entry: WaitingEntry,
    by_skill: dict[str, SortedList],
    by_dialect: dict[str, SortedList],
    anyone: SortedList,
) -> SortedList:
    """The list, of those given, that holds calls on the entry's step (and pool)."""
    if entry.step is LadderStep.SKILL:
        key = entry.call.skill_key
        assert key is not None
        return by_skill.setdefault(key, SortedList())
    if entry.step is LadderStep.DIALECT:
        assert entry.call.dialect is not None
        return by_dialect.setdefault(entry.call.dialect, SortedList())
    return anyone


class ChangeLog:
    """The last ``length`` queue changes, numbered from 1 (as ``qver``/``qlog`` in Redis)."""

    def __init__(self, length: int) -> None:
        self.version = 0
        self._entries: deque[QueueChange] = deque(maxlen=length)

    def append(
        self,
        kind: ChangeKind,
        call: QueuedCall,
        rank: RankTuple,
        step: LadderStep,
        old_step: LadderStep | None,
    ) -> None:
        self.version += 1
        self._entries.append(
            QueueChange(
                version=self.version,
                kind=kind,
                call_id=call.call_id,
                customer_id=call.customer_id,
                rank=(rank[0], rank[1]),
                step=step,
                dialect=call.dialect,
                skill_key=call.skill_key,
                old_step=old_step,
            )
        )

    def after(self, since: int, generation: str) -> QueueChanges:
        """The entries after ``since``; incomplete if some were trimmed away or
        ``since`` is a version this log never reached."""
        if since == self.version:
            return QueueChanges(generation, self.version, ())
        first = self._entries[0].version if self._entries else self.version + 1
        if since > self.version or first > since + 1:
            return QueueChanges(generation, self.version, (), complete=False)
        entries = tuple(itertools.islice(self._entries, since + 1 - first, None))
        return QueueChanges(generation, self.version, entries)
