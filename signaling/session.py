"""The media-session state machine of one call.

=============  ===========================================  ==============
from           transition                                   to
=============  ===========================================  ==============
idle           ``start`` (media.start sent to both)         negotiating
negotiating,   ``offer_relayed``, ``answer_relayed``,       (unchanged)
restarting     ``description_refused``
negotiating,   ``reported(connected)`` by both parties      connected
restarting,
interrupted
negotiating,   ``reported(disconnected|failed)`` by either, interrupted
connected,     ``party_dropped`` (grace window opens)
restarting
interrupted    ``party_returned`` (until the deadline)      (unchanged)
any but idle   ``restart`` once every party is present      restarting
and closed
interrupted,   ``grace_expired`` at or after the deadline   closed
restarting
any            ``close``                                    closed
=============  ===========================================  ==============

Pure: no I/O, no clock. Every transition takes ``now`` (seconds, any monotonic
origin the caller keeps consistent) and either changes the state or raises
:class:`IllegalTransition`, which names the state the session was in.

Why *both* parties must report ``connected``: each report is only that
client's own view of its peer connection, seen across two unrelated networks
(the customer's mobile link and the desk's). The call timeline's "media
connected" must mean the customer and the specialist can both see and hear
each other; one report would also let a client that silently lost its socket
make the session look healthy. The cost is that a client that never reports
holds the session in ``negotiating``; the call lifecycle's connecting timeout
covers that case.

Why a ``disconnected`` or ``failed`` report from *either* party interrupts:
one broken side is enough for the customer to lose the specialist, and the
grace window must start from the first sign of trouble, not the last.
"""

from __future__ import annotations

import enum
from collections import deque
from dataclasses import dataclass, field
from typing import Final, Literal

from signaling.messages import MediaStateValue, PartyRole

__all__ = [
    "DEFAULT_GRACE_S",
    "MAX_HISTORY",
    "GraceWindowClosed",
    "IllegalTransition",
    "MediaSession",
    "MediaSessionState",
    "SessionEvent",
]

DEFAULT_GRACE_S: Final = 60.0
MAX_HISTORY: Final = 256

_PARTIES: Final[tuple[PartyRole, PartyRole]] = ("customer", "specialist")


class MediaSessionState(enum.Enum):
    """Where the media of a call stands."""

    IDLE = "idle"
    NEGOTIATING = "negotiating"
    CONNECTED = "connected"
    INTERRUPTED = "interrupted"
    RESTARTING = "restarting"
    CLOSED = "closed"


class IllegalTransition(Exception):
    """A transition was asked for that the current state does not allow."""

    def __init__(self, state: MediaSessionState, action: str, detail: str = "") -> None:
        message = f"cannot {action} in media session state '{state.value}'"
        super().__init__(f"{message}: {detail}" if detail else message)
        self.state = state
        self.action = action
        self.detail = detail


class GraceWindowClosed(IllegalTransition):
    """A party came back after the grace window of an interruption had passed."""


@dataclass(frozen=True, slots=True)
class SessionEvent:
    """One entry of the session's history, for the call timeline."""

    at: float
    event: str
    state: MediaSessionState
    party: PartyRole | None = None


@dataclass
class MediaSession:
    """Media state of one call. Mutable by its transition methods only.

    ``generation`` counts peer connections: 1 for the first, +1 per restart.
    ``first_connected_at`` is set once, when media first flows both ways;
    ``connected_at`` is the latest time the session became connected.
    """

    call_id: str
    grace_s: float = DEFAULT_GRACE_S
    state: MediaSessionState = MediaSessionState.IDLE
    generation: int = 0
    started_at: float | None = None
    first_connected_at: float | None = None
    connected_at: float | None = None
    interrupted_at: float | None = None
    grace_deadline: float | None = None
    closed_at: float | None = None
    close_reason: str | None = None
    restarts: int = 0
    offer_relayed_at: float | None = None
    answer_relayed_at: float | None = None
    connected_parties: set[PartyRole] = field(default_factory=set)
    absent_parties: set[PartyRole] = field(default_factory=set)
    # Bounded: reports come from clients, and a client must not be able to grow
    # server memory by repeating them.
    history: deque[SessionEvent] = field(default_factory=lambda: deque(maxlen=MAX_HISTORY))

    def __post_init__(self) -> None:
        if not self.grace_s > 0:
            raise ValueError(f"grace_s must be positive, got {self.grace_s!r}")

    # -- transitions ---------------------------------------------------------

    def start(self, now: float) -> MediaSessionState:
        """``media.start`` was sent to both parties: idle → negotiating."""
        self._require("start", MediaSessionState.IDLE)
        self.started_at = now
        self._new_generation()
        return self._enter(MediaSessionState.NEGOTIATING, now, "start")

    def offer_relayed(self, now: float) -> MediaSessionState:
        """The offerer's SDP offer was relayed to the answerer.

        Allowed once per peer connection, while negotiating or restarting. A
        second offer would be a renegotiation, which aiortc cannot do with an
        ICE restart; a new connection goes through :meth:`restart` instead.
        """
        self._require("relay an offer", MediaSessionState.NEGOTIATING, MediaSessionState.RESTARTING)
        if self.offer_relayed_at is not None:
            raise IllegalTransition(
                self.state, "relay an offer", "an offer was already relayed for this connection"
            )
        self.offer_relayed_at = now
        return self._record(now, "offer_relayed")

    def answer_relayed(self, now: float) -> MediaSessionState:
        """The answerer's SDP answer was relayed to the offerer (after the offer)."""
        self._require(
            "relay an answer", MediaSessionState.NEGOTIATING, MediaSessionState.RESTARTING
        )
        if self.offer_relayed_at is None:
            raise IllegalTransition(self.state, "relay an answer", "no offer was relayed yet")
        if self.answer_relayed_at is not None:
            raise IllegalTransition(
                self.state, "relay an answer", "an answer was already relayed for this connection"
            )
        self.answer_relayed_at = now
        return self._record(now, "answer_relayed")

    def description_refused(
        self, kind: Literal["offer", "answer"], generation: int, now: float
    ) -> bool:
        """An offer or answer counted by :meth:`offer_relayed` or
        :meth:`answer_relayed` was then refused by the peer it went to (the
        media node): it no longer counts, so the party may send a good one.

        Only within ``generation`` (the one it was counted in) and while its
        counterpart has not followed: a restart in between already cleared it,
        and an answer relayed after an offer means the offer was taken. Returns
        whether anything changed.
        """
        if self.generation != generation or self.state not in (
            MediaSessionState.NEGOTIATING,
            MediaSessionState.RESTARTING,
        ):
            return False
        if kind == "offer":
            if self.offer_relayed_at is None or self.answer_relayed_at is not None:
                return False
            self.offer_relayed_at = None
        else:
            if self.answer_relayed_at is None:
                return False
            self.answer_relayed_at = None
        self._record(now, f"{kind}_refused")
        return True

    def reported(self, party: PartyRole, state: MediaStateValue, now: float) -> MediaSessionState:
        """A party sent ``media.state``.

        ``connected`` from both parties (in the current generation) → connected.
        ``disconnected``/``failed`` from either → interrupted, opening the grace
        window unless one is already open (flapping must not extend it). While
        interrupted, a ``connected`` report is kept: a browser's ICE can recover
        from ``disconnected`` by itself, and if both sides say so the session is
        connected again without a restart. A party that dropped must return
        (:meth:`party_returned`) before its reports count.
        """
        self._require(
            f"accept a '{state}' report",
            MediaSessionState.NEGOTIATING,
            MediaSessionState.CONNECTED,
            MediaSessionState.INTERRUPTED,
            MediaSessionState.RESTARTING,
        )
        if party in self.absent_parties:
            # Its socket is gone; a report can only come after it is back.
            raise IllegalTransition(self.state, f"accept a '{state}' report", f"{party} is absent")
        self._record(now, f"reported_{state}", party)
        if state == "connected":
            self.connected_parties.add(party)
            if self._all_connected() and self.state is not MediaSessionState.CONNECTED:
                return self._become_connected(now)
            return self.state
        self.connected_parties.discard(party)
        if self.state is MediaSessionState.INTERRUPTED:
            return self.state
        return self._interrupt(now, f"media_{state}", party)

    def party_dropped(self, party: PartyRole, now: float) -> MediaSessionState:
        """A party's WebSocket went away during the call → interrupted."""
        self._require(
            "drop a party",
            MediaSessionState.NEGOTIATING,
            MediaSessionState.CONNECTED,
            MediaSessionState.INTERRUPTED,
            MediaSessionState.RESTARTING,
        )
        self.absent_parties.add(party)
        self.connected_parties.discard(party)
        if self.state is MediaSessionState.INTERRUPTED:
            return self._record(now, "party_dropped", party)
        return self._interrupt(now, "party_dropped", party)

    def party_returned(self, party: PartyRole, now: float) -> bool:
        """A dropped party is back within the grace window.

        Returns ``True`` when every party is present again, i.e. the caller may
        now :meth:`restart`. Raises :class:`GraceWindowClosed` at or after the
        deadline, and :class:`IllegalTransition` if that party was not absent.
        """
        self._require("accept a returning party", MediaSessionState.INTERRUPTED)
        if party not in self.absent_parties:
            raise IllegalTransition(
                self.state, "accept a returning party", f"{party} was not absent"
            )
        if self.grace_deadline is not None and now >= self.grace_deadline:
            raise GraceWindowClosed(
                self.state,
                "accept a returning party",
                f"grace window ended at {self.grace_deadline}, now {now}",
            )
        self.absent_parties.discard(party)
        self._record(now, "party_returned", party)
        return not self.absent_parties

    def restart(self, now: float) -> MediaSessionState:
        """``media.restart`` was sent to both parties: a new peer connection.

        Allowed from interrupted (once every party is present), and from
        negotiating, connected or restarting (a stuck negotiation, a media node
        change, a restart that needs another try). A grace window is opened if
        none is running so that a restart that never connects still ends.
        """
        self._require(
            "restart",
            MediaSessionState.NEGOTIATING,
            MediaSessionState.CONNECTED,
            MediaSessionState.INTERRUPTED,
            MediaSessionState.RESTARTING,
        )
        if self.absent_parties:
            absent = ", ".join(sorted(self.absent_parties))
            raise IllegalTransition(self.state, "restart", f"waiting for {absent} to return")
        if self.grace_deadline is None:
            self.grace_deadline = now + self.grace_s
        self.restarts += 1
        self._new_generation()
        return self._enter(MediaSessionState.RESTARTING, now, "restart")

    def grace_expired(self, now: float) -> bool:
        """Close the session if its grace window has run out.

        Returns ``True`` when this call closed the session (reason
        ``grace_expired``), ``False`` otherwise, in any state, so a timer may
        call it without checking the state first.
        """
        if self.state not in (MediaSessionState.INTERRUPTED, MediaSessionState.RESTARTING):
            return False
        if self.grace_deadline is None or now < self.grace_deadline:
            return False
        self._close(now, "grace_expired")
        return True

    def close(self, now: float, reason: str = "hangup") -> bool:
        """End the session. Returns ``False`` if it was already closed.

        Idempotent on purpose: a hang-up can race a grace expiry or the other
        party's hang-up, and both legitimately end the same session.
        """
        if self.state is MediaSessionState.CLOSED:
            return False
        self._close(now, reason)
        return True

    # -- queries -------------------------------------------------------------

    def seconds_left(self, now: float) -> float | None:
        """Seconds until the grace deadline, ``None`` when no window is open."""
        if self.grace_deadline is None or self.state is MediaSessionState.CLOSED:
            return None
        return max(0.0, self.grace_deadline - now)

    # -- internals -----------------------------------------------------------

    def _require(self, action: str, *allowed: MediaSessionState) -> None:
        if self.state not in allowed:
            raise IllegalTransition(self.state, action)

    def _all_connected(self) -> bool:
        return all(party in self.connected_parties for party in _PARTIES)

    def _new_generation(self) -> None:
        self.generation += 1
        self.offer_relayed_at = None
        self.answer_relayed_at = None
        self.connected_parties.clear()

    def _become_connected(self, now: float) -> MediaSessionState:
        if self.first_connected_at is None:
            self.first_connected_at = now
        self.connected_at = now
        self.interrupted_at = None
        self.grace_deadline = None
        return self._enter(MediaSessionState.CONNECTED, now, "connected")

    def _interrupt(self, now: float, event: str, party: PartyRole) -> MediaSessionState:
        self.interrupted_at = now
        if self.grace_deadline is None:
            self.grace_deadline = now + self.grace_s
        return self._enter(MediaSessionState.INTERRUPTED, now, event, party)

    def _close(self, now: float, reason: str) -> None:
        self.closed_at = now
        self.close_reason = reason
        self.grace_deadline = None
        self._enter(MediaSessionState.CLOSED, now, reason)

    def _enter(
        self, state: MediaSessionState, now: float, event: str, party: PartyRole | None = None
    ) -> MediaSessionState:
        self.state = state
        return self._record(now, event, party)

    def _record(self, now: float, event: str, party: PartyRole | None = None) -> MediaSessionState:
        self.history.append(SessionEvent(at=now, event=event, state=self.state, party=party))
        return self.state
