"""The places of the calls whose customers this node holds, moved by delta.

A node keeps the :class:`~server.routing.standing.Standing` of each waiting call
whose customer has a socket here, and moves it with each entry of the backend's
change log: a call ranked ahead arriving or leaving shifts every call behind it by
one; a call ahead moving to a later ladder step changes who competes with whom. A
cancel at the head of a 10,000-call queue thus costs this node one small step per
socket it holds, and a queue where nothing changes costs nothing at all. A full
re-read (the standings of the held calls, O(log n) each, never a snapshot) is only
needed when the log cannot say what changed: it was trimmed past this node's
version, or the live state was lost and rebuilt. Each pass: :meth:`hold`, then
:meth:`apply`, then look up :meth:`to_look_up` (after a re-read, every held
customer) and :meth:`put` the standings read.

Pure: no I/O and no clock; the dispatcher (``server/calls/dispatcher.py``) reads
the log, the standings and the staffing, and sends what :meth:`due` returns.
"""

from __future__ import annotations

import heapq
from collections.abc import Collection, Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sortedcontainers import SortedList

from .estimate import WaitEstimate, standing_estimate, wait_message
from .standing import ChangeKind, QueueChange, QueueChanges, Staffing, Standing

# Applying a batch costs (changes x calls held behind them); past this many steps
# re-reading the held calls' standings is cheaper (a promotion of a whole dialect
# moves every call of it at once).
_MAX_SHIFTS_PER_BATCH = 200_000


@dataclass(frozen=True)
class Due:
    """A customer to tell now; ``reminder``: nothing they see changed, but their
    last update is ``every_s`` old."""

    customer_id: str
    estimate: WaitEstimate
    reminder: bool = False


@dataclass(frozen=True)
class _Sent:
    position: int
    words: str
    at: float

    @classmethod
    def of(cls, estimate: WaitEstimate, at: float) -> _Sent:
        """What a customer told ``estimate`` at ``at`` sees: place and words."""
        return cls(estimate.position, wait_message(estimate.seconds)["en"], at)

    def says_the_same(self, other: _Sent) -> bool:
        return (self.position, self.words) == (other.position, other.words)


@dataclass(frozen=True)
class _Fields:
    """What the queue-update hooks added (the callback option) for one wait figure."""

    seconds: int | None
    fields: Mapping[str, Any]
    at: float


class NodePositions:
    """Standings of the held calls, what each customer was last told, and when,
    with the fields the queue-update hooks added to it."""

    def __init__(self) -> None:
        self.generation: str | None = None
        self.version = 0
        self._calls: dict[str, Standing] = {}
        self._call_of: dict[str, str] = {}  # customer id -> call id
        self._ranks: SortedList = SortedList()  # (rank key, sequence, call id)
        self._held: set[str] = set()  # customers with a socket here
        self._looked_up: set[str] = set()  # of those, whose open call was looked for
        self._unlooked: set[str] = set()  # the held not looked up: the rest of them
        self._second_look: set[str] = set()
        self._sent: dict[str, _Sent] = {}
        # (told at, call id) for each entry of _sent, oldest first: a reminder
        # pass takes only the due ones off the top. An entry whose call has been
        # told since (or forgotten) no longer matches _sent and is skipped.
        self._told_at: list[tuple[float, str]] = []
        self._fields: dict[str, _Fields] = {}
        self._dirty: set[str] = set()
        self._staffing: Staffing | None = None
        self._aht: float | None = None
        #: calls of held customers that arrived since: their standings are wanted
        self.wanted: set[str] = set()
        #: how many times the log could not say what changed (each a full re-read)
        self.resyncs = 0

    def __len__(self) -> int:
        return len(self._calls)

    def call_ids(self) -> list[str]:
        return list(self._calls)

    # -- what the node holds ------------------------------------------------------
    def hold(self, customers: Collection[str]) -> None:
        """The customers with a socket here now; forgets those who left."""
        for customer in [c for c in self._held if c not in customers]:
            self._held.discard(customer)
            self._looked_up.discard(customer)
            self._unlooked.discard(customer)
            self._second_look.discard(customer)
            call_id = self._call_of.get(customer)
            if call_id is not None:
                self._drop(call_id)
        arrived = [c for c in customers if c not in self._held]
        self._held.update(arrived)
        self._unlooked.update(c for c in arrived if c not in self._looked_up)

    def greeted(
        self,
        customer_id: str,
        call_id: str,
        estimate: WaitEstimate,
        at: float,
        fields: Mapping[str, Any] | None = None,
    ) -> None:
        """A hello (server/connect/greeting.py) has just told ``customer_id`` where
        their call stands, with the hooks' ``fields``: the customer is held and
        their call known, so the next pass reads only its standing (no SQL
        look-up) and tells them again only when the words they see change."""
        self._held.add(customer_id)
        self._looked_up.add(customer_id)
        self._unlooked.discard(customer_id)
        self._second_look.discard(customer_id)
        if call_id not in self._calls:
            self.wanted.add(call_id)
        self._told(call_id, _Sent.of(estimate, at))
        if fields is not None:
            self.annotated(call_id, estimate.seconds, fields, at)

    def to_look_up(self) -> list[str]:
        """Held customers whose open call is still to be looked up in SQL (the
        caller reports with :meth:`looked_up`). Kept as they come and go, so a
        pass where nobody arrived does not look through everybody held."""
        return list(self._unlooked)

    def looked_up(self, customers: Iterable[str], with_a_call: Collection[str]) -> None:
        """SQL was asked for these customers' calls. One found without a call is
        asked once more on the next pass: a create enqueues before it commits, so
        a call seen in the log before its customer's socket was here may not have
        been in SQL yet at the first look."""
        for customer in customers:
            if customer in with_a_call or customer in self._second_look:
                self._second_look.discard(customer)
                self._looked_up.add(customer)
                self._unlooked.discard(customer)
            else:
                self._second_look.add(customer)

    def put(self, standings: Iterable[Standing]) -> None:
        """Track these standings (fresh reads), replacing what was kept of them."""
        for standing in standings:
            if standing.customer_id not in self._held:
                continue  # the socket left meanwhile
            self._drop(standing.call_id, keep_sent=True)
            previous = self._call_of.get(standing.customer_id)
            if previous is not None and previous != standing.call_id:
                self._drop(previous)
            self._calls[standing.call_id] = standing
            self._call_of[standing.customer_id] = standing.call_id
            self._ranks.add((*standing.rank, standing.call_id))
            self._dirty.add(standing.call_id)
            self.wanted.discard(standing.call_id)

    def _drop(self, call_id: str, keep_sent: bool = False) -> None:
        standing = self._calls.pop(call_id, None)
        if standing is None:
            return
        self._ranks.discard((*standing.rank, call_id))
        if self._call_of.get(standing.customer_id) == call_id:
            del self._call_of[standing.customer_id]
        self._dirty.discard(call_id)
        if not keep_sent:
            self._sent.pop(call_id, None)
            self._fields.pop(call_id, None)

    # -- the change log -----------------------------------------------------------
    def apply(self, changes: QueueChanges) -> None:
        """Move the held standings by the log's entries (or ask for a re-read)."""
        lost = self.generation is not None and changes.generation != self.generation
        self.generation = changes.generation
        shifts = len(changes.changes) * len(self._calls)
        if lost or not changes.complete or shifts > _MAX_SHIFTS_PER_BATCH:
            self._forget_held()
            self.version = changes.version
            return
        for change in changes.changes:
            self._apply(change)
        self.version = changes.version

    def _forget_held(self) -> None:
        """Start again from the held customers: each one's open call is looked up and
        its standing read afresh. What each was last told is kept, so nobody is told
        the same words twice."""
        if self._looked_up:
            self.resyncs += 1
        self._calls.clear()
        self._call_of.clear()
        self._ranks.clear()
        self._looked_up.clear()
        self._unlooked = set(self._held)
        self._second_look.clear()
        self._dirty.clear()
        self.wanted.clear()

    def _apply(self, change: QueueChange) -> None:
        own = self._calls.get(change.call_id)
        if own is not None and own.as_of < change.version:
            if change.kind is ChangeKind.LEFT:
                self._drop(change.call_id)
            elif change.kind is ChangeKind.STEPPED:
                own.step = change.step
                self._dirty.add(change.call_id)
        elif own is None and change.kind is ChangeKind.ADDED and change.customer_id in self._held:
            self.wanted.add(change.call_id)
        score, seq = change.rank
        for _, _, call_id in self._ranks.irange(minimum=(score, seq + 1, "")):
            behind = self._calls[call_id]
            if behind.as_of < change.version and behind.shift(change):
                self._dirty.add(call_id)

    # -- what the customers are told ----------------------------------------------
    @property
    def has_figures(self) -> bool:
        return self._staffing is not None

    def set_figures(self, staffing: Staffing, aht_s: float | None) -> None:
        """New staffing or handle time: every held call's figure may have changed."""
        if staffing != self._staffing or aht_s != self._aht:
            self._staffing, self._aht = staffing, aht_s
            self._dirty.update(self._calls)

    def __contains__(self, call_id: object) -> bool:
        return call_id in self._calls

    def untold(self, call_id: str) -> None:
        """An update :meth:`due` gave was not sent after all: due again next time."""
        if call_id in self._calls:
            self._sent.pop(call_id, None)
            self._dirty.add(call_id)

    def due(self, now: float, min_gap_s: float, every_s: float) -> list[Due]:
        """Each held call whose customer should be told now: the words they see
        (position, "about N minutes") changed and their last update is at least
        ``min_gap_s`` old, or it is ``every_s`` old."""
        if self._staffing is None:
            return []
        out: list[Due] = []
        for call_id in list(self._dirty):
            standing = self._calls[call_id]
            estimate = standing_estimate(standing, self._staffing, self._aht)
            sent = _Sent.of(estimate, now)
            last = self._sent.get(call_id)
            if last is not None and last.says_the_same(sent):
                self._dirty.discard(call_id)
            elif last is None or now - last.at >= min_gap_s:
                self._dirty.discard(call_id)
                self._told(call_id, sent)
                out.append(Due(standing.customer_id, estimate))
        return out + self._stale(now, every_s)

    def _told(self, call_id: str, sent: _Sent) -> None:
        self._sent[call_id] = sent
        heapq.heappush(self._told_at, (sent.at, call_id))
        if len(self._told_at) > 4 * len(self._sent) + 64:
            # Mostly entries told again since: keep one per call.
            self._told_at = [(s.at, c) for c, s in self._sent.items()]
            heapq.heapify(self._told_at)

    def _stale(self, now: float, every_s: float) -> list[Due]:
        """Reminders: updates ``every_s`` old, taken oldest first off the top of
        ``_told_at``, so a pass costs what is due, not what is held."""
        assert self._staffing is not None
        out: list[Due] = []
        told_at = self._told_at
        while told_at and now - told_at[0][0] >= every_s:
            at, call_id = heapq.heappop(told_at)
            last = self._sent.get(call_id)
            if last is None or last.at != at:
                continue  # told again since, or forgotten
            standing = self._calls.get(call_id)
            if standing is None:
                del self._sent[call_id]
                self._fields.pop(call_id, None)
                continue
            estimate = standing_estimate(standing, self._staffing, self._aht)
            sent = _Sent.of(estimate, now)
            self._sent[call_id] = sent
            out.append(Due(standing.customer_id, estimate, reminder=True))
        for due in out:  # pushed after the loop: a reminder is not due again this pass
            heapq.heappush(told_at, (now, due.estimate.call_id))
        return out

    # -- what the queue-update hooks added --------------------------------------
    def annotated(
        self, call_id: str, seconds: int | None, fields: Mapping[str, Any], at: float
    ) -> None:
        """The hooks gave ``fields`` at ``at`` for ``call_id`` waiting ``seconds``."""
        self._fields[call_id] = _Fields(seconds, fields, at)

    def fields_for(
        self, call_id: str, seconds: int | None, since: float = float("-inf")
    ) -> Mapping[str, Any] | None:
        """The hooks' fields for this wait figure if they were given at ``since``
        or later; None: the hooks must be asked (the fields depend on the figure)."""
        known = self._fields.get(call_id)
        if known is None or known.seconds != seconds or known.at < since:
            return None
        return known.fields
