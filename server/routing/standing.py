"""Where one waiting call stands, what changed in the queue, and who is working.

These are the pieces positions and estimates are kept from *by delta*, instead of
from a snapshot of every waiting call:

- :class:`Standing`: one call's place (its 1-based position among all waiting
  calls) and how many of the calls ahead of it compete with it on its ladder step
  (see :mod:`server.routing.estimate`). A backend computes it from sorted sets in
  O(log n); a node then moves it with each :class:`QueueChange`.
- :class:`QueueChange`: one entry of the backend's change log, numbered by a
  version that grows by one per change (a call arrived, left, or moved to a later
  ladder step). A call's position changes only through such entries.
- :class:`Staffing`: working and idle specialists per pool, from which the wait
  figure is made (O(specialists), never O(queue)).

Ranks compare as ``(rank key, arrival sequence)``, the same order both backends
keep their sorted sets in.
"""

from __future__ import annotations

import enum
from collections import Counter
from collections.abc import Iterable
from dataclasses import dataclass, field

from .intents import skill_keys
from .model import LadderStep, SpecialistState, SpecialistView

Rank = tuple[float, int]  # (rank key, arrival sequence): smaller is served first

_WORKING = frozenset(
    {
        SpecialistState.AVAILABLE,
        SpecialistState.RESERVED,
        SpecialistState.BUSY,
        SpecialistState.WRAP_UP,
    }
)


class ChangeKind(enum.StrEnum):
    ADDED = "add"
    LEFT = "leave"
    STEPPED = "step"


@dataclass(slots=True)
class Standing:
    """One waiting call's place, and the calls ahead of it by how they compete.

    ``ahead_any``: calls ahead on the ``any`` step; ``ahead_dialect``: calls ahead
    on the dialect step of this call's dialect; ``ahead_skill``: calls ahead on the
    skill step of this call's skill pool. Every other call ahead counts only in
    ``position``. Mutable on purpose: a node's tracker moves it change by change;
    ``as_of`` is the log version it reflects (changes up to it are already in).
    """

    call_id: str
    customer_id: str
    rank: Rank
    step: LadderStep
    dialect: str | None
    skill_key: str | None
    position: int
    ahead_any: int = 0
    ahead_dialect: int = 0
    ahead_skill: int = 0
    as_of: int = 0

    def shift(self, change: QueueChange) -> bool:
        """Apply a change of a call ranked ahead of this one; True if it moved."""
        if change.kind is ChangeKind.STEPPED:
            before = self._bucket(change.old_step, change)
            after = self._bucket(change.step, change)
            if before == after:
                return False
            self._count(before, -1)
            self._count(after, 1)
            return True
        delta = 1 if change.kind is ChangeKind.ADDED else -1
        self.position += delta
        self._count(self._bucket(change.step, change), delta)
        return True

    def _bucket(self, step: LadderStep | None, change: QueueChange) -> str | None:
        """Which counter a call ahead on ``step`` falls in (None: position only)."""
        if step is LadderStep.ANY:
            return "any"
        if step is LadderStep.DIALECT and self.dialect and change.dialect == self.dialect:
            return "dialect"
        if step is LadderStep.SKILL and self.skill_key and change.skill_key == self.skill_key:
            return "skill"
        return None

    def _count(self, bucket: str | None, delta: int) -> None:
        if bucket == "any":
            self.ahead_any += delta
        elif bucket == "dialect":
            self.ahead_dialect += delta
        elif bucket == "skill":
            self.ahead_skill += delta


@dataclass(frozen=True, slots=True)
class QueueChange:
    """One entry of the change log. ``step`` is the call's step after the change
    (for a call that left, the step it left from); ``old_step`` only for STEPPED."""

    version: int
    kind: ChangeKind
    call_id: str
    customer_id: str
    rank: Rank
    step: LadderStep
    dialect: str | None
    skill_key: str | None
    old_step: LadderStep | None = None


@dataclass(frozen=True)
class QueueChanges:
    """The log after a version. ``complete`` is False when the log no longer holds
    every change after it (trimmed, or the live state was lost and rebuilt): the
    reader then asks for the standings of its calls again (a repair)."""

    generation: str
    version: int
    changes: tuple[QueueChange, ...]
    complete: bool = True


@dataclass(frozen=True)
class LiveCalls:
    """Which calls routing has, and nothing else about them: what repair compares
    with SQL (far cheaper than a snapshot, which builds every call's view)."""

    waiting: frozenset[str]
    offered: frozenset[str]
    holding: dict[str, str]  # specialist id -> the call they hold


@dataclass(frozen=True)
class Pool:
    """Specialists who could take a call of one pool: working, and idle of those."""

    working: int = 0
    idle: int = 0


@dataclass(frozen=True)
class Staffing:
    """Working and idle specialists: everyone, per dialect, per skill pool."""

    everyone: Pool = Pool()
    by_dialect: dict[str, Pool] = field(default_factory=dict)
    by_skill: dict[str, Pool] = field(default_factory=dict)

    def dialect(self, dialect: str) -> Pool:
        return self.by_dialect.get(dialect, Pool())

    def skill(self, key: str) -> Pool:
        return self.by_skill.get(key, Pool())


def staffing_of(specialists: Iterable[SpecialistView]) -> Staffing:
    """Count who works (available, reserved, busy, wrap-up) and who is idle."""
    working: Counter[str] = Counter()
    idle: Counter[str] = Counter()
    working_d: Counter[str] = Counter()
    idle_d: Counter[str] = Counter()
    working_s: Counter[str] = Counter()
    idle_s: Counter[str] = Counter()
    for spec in specialists:
        if spec.state not in _WORKING:
            continue
        keys = skill_keys(spec.fluent_dialects, spec.intents)
        working["*"] += 1
        working_d.update(spec.fluent_dialects)
        working_s.update(keys)
        if spec.state is SpecialistState.AVAILABLE:
            idle["*"] += 1
            idle_d.update(spec.fluent_dialects)
            idle_s.update(keys)
    return Staffing(
        everyone=Pool(working["*"], idle["*"]),
        by_dialect={d: Pool(n, idle_d[d]) for d, n in working_d.items()},
        by_skill={k: Pool(n, idle_s[k]) for k, n in working_s.items()},
    )
