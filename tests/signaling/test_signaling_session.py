"""The media-session state machine: legal paths, illegal transitions, grace window."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from signaling.session import (
    DEFAULT_GRACE_S,
    MAX_HISTORY,
    GraceWindowClosed,
    IllegalTransition,
    MediaSession,
    MediaSessionState,
)

S = MediaSessionState


def connected_session(now: float = 100.0) -> MediaSession:
    session = MediaSession(call_id="c-1")
    session.start(now)
    session.offer_relayed(now + 0.1)
    session.answer_relayed(now + 0.2)
    session.reported("specialist", "connected", now + 0.5)
    session.reported("customer", "connected", now + 0.6)
    return session


def test_happy_path_records_the_timeline() -> None:
    session = MediaSession(call_id="c-1")
    assert session.state is S.IDLE and session.grace_s == DEFAULT_GRACE_S
    assert session.start(100.0) is S.NEGOTIATING
    assert session.generation == 1 and session.started_at == 100.0
    assert session.offer_relayed(100.1) is S.NEGOTIATING
    assert session.answer_relayed(100.2) is S.NEGOTIATING
    assert session.reported("specialist", "connected", 100.5) is S.NEGOTIATING
    assert session.first_connected_at is None
    assert session.reported("customer", "connected", 100.6) is S.CONNECTED
    assert session.first_connected_at == session.connected_at == 100.6
    assert session.close(200.0) is True
    assert session.state is S.CLOSED and session.closed_at == 200.0
    assert session.close_reason == "hangup"
    events = [e.event for e in session.history]
    assert events == [
        "start",
        "offer_relayed",
        "answer_relayed",
        "reported_connected",
        "reported_connected",
        "connected",
        "hangup",
    ]
    assert [e.party for e in session.history if e.event == "reported_connected"] == [
        "specialist",
        "customer",
    ]


def test_one_sided_connected_report_is_not_enough() -> None:
    session = MediaSession(call_id="c-1")
    session.start(0.0)
    for _ in range(3):
        session.reported("customer", "connected", 1.0)
    assert session.state is S.NEGOTIATING
    assert session.connected_parties == {"customer"}


@pytest.mark.parametrize("state", ["disconnected", "failed"])
def test_bad_report_from_either_side_interrupts_and_opens_grace(state: str) -> None:
    for party in ("customer", "specialist"):
        session = connected_session()
        assert session.reported(party, state, 150.0) is S.INTERRUPTED  # type: ignore[arg-type]
        assert session.interrupted_at == 150.0
        assert session.grace_deadline == 150.0 + DEFAULT_GRACE_S
        assert session.seconds_left(170.0) == pytest.approx(40.0)


def test_flapping_does_not_extend_the_grace_window() -> None:
    session = connected_session()
    session.reported("customer", "disconnected", 150.0)
    session.reported("customer", "failed", 170.0)
    session.party_dropped("customer", 180.0)
    assert session.grace_deadline == 210.0


def test_recovery_without_restart_when_both_report_connected_again() -> None:
    session = connected_session()
    session.reported("customer", "disconnected", 150.0)
    assert session.reported("customer", "connected", 152.0) is S.CONNECTED
    assert session.grace_deadline is None and session.interrupted_at is None
    assert session.first_connected_at == 100.6 and session.connected_at == 152.0


def test_drop_return_restart_reconnect() -> None:
    session = connected_session()
    assert session.party_dropped("customer", 150.0) is S.INTERRUPTED
    assert session.absent_parties == {"customer"}
    with pytest.raises(IllegalTransition, match="waiting for customer"):
        session.restart(151.0)
    assert session.party_returned("customer", 170.0) is True
    assert session.restart(171.0) is S.RESTARTING
    assert session.generation == 2 and session.restarts == 1
    assert session.connected_parties == set()
    assert session.grace_deadline == 210.0  # the restart must connect within the window
    session.offer_relayed(171.5)
    session.answer_relayed(171.6)
    session.reported("specialist", "connected", 172.0)
    assert session.reported("customer", "connected", 172.1) is S.CONNECTED
    assert session.first_connected_at == 100.6 and session.connected_at == 172.1
    assert session.grace_deadline is None


def test_both_parties_dropped_need_both_back() -> None:
    session = connected_session()
    session.party_dropped("customer", 150.0)
    session.party_dropped("specialist", 151.0)
    assert session.party_returned("specialist", 152.0) is False
    assert session.party_returned("customer", 153.0) is True


def test_return_at_the_deadline_is_too_late() -> None:
    session = connected_session()
    session.party_dropped("customer", 150.0)
    with pytest.raises(GraceWindowClosed) as info:
        session.party_returned("customer", 210.0)
    assert info.value.state is S.INTERRUPTED
    assert "interrupted" in str(info.value)


def test_grace_expiry_closes_only_after_the_deadline() -> None:
    session = connected_session()
    assert session.grace_expired(1000.0) is False  # connected: nothing to expire
    session.party_dropped("customer", 150.0)
    assert session.grace_expired(209.999) is False
    assert session.state is S.INTERRUPTED
    assert session.grace_expired(210.0) is True
    assert session.close_reason == "grace_expired"
    assert session.closed_at == 210.0 and session.history[-1].state is S.CLOSED
    assert session.grace_expired(300.0) is False
    assert session.close(301.0) is False  # a racing hang-up is harmless
    assert session.close_reason == "grace_expired"


def test_restart_that_never_connects_expires() -> None:
    session = connected_session()
    session.restart(150.0)  # e.g. a media node change
    assert session.state is S.RESTARTING
    assert session.grace_expired(209.0) is False
    assert session.grace_expired(210.0) is True


def test_restart_from_negotiating_and_again_from_restarting() -> None:
    session = MediaSession(call_id="c-1", grace_s=10.0)
    session.start(0.0)
    session.offer_relayed(0.1)
    session.restart(5.0)
    session.restart(6.0)
    assert session.generation == 3 and session.restarts == 2
    assert session.offer_relayed_at is None
    assert session.grace_deadline == 15.0


def test_offer_and_answer_once_per_connection_and_in_order() -> None:
    session = MediaSession(call_id="c-1")
    session.start(0.0)
    with pytest.raises(IllegalTransition, match="no offer was relayed"):
        session.answer_relayed(0.1)
    session.offer_relayed(0.2)
    with pytest.raises(IllegalTransition, match="already relayed"):
        session.offer_relayed(0.3)
    session.answer_relayed(0.4)
    with pytest.raises(IllegalTransition, match="already relayed"):
        session.answer_relayed(0.5)


def test_reports_from_an_absent_party_are_refused() -> None:
    session = connected_session()
    session.party_dropped("customer", 150.0)
    with pytest.raises(IllegalTransition, match="customer is absent"):
        session.reported("customer", "connected", 151.0)
    session.party_returned("customer", 152.0)
    session.restart(153.0)
    session.reported("customer", "connected", 154.0)
    assert session.reported("specialist", "connected", 154.5) is S.CONNECTED


def test_party_returned_requires_that_party_absent() -> None:
    session = connected_session()
    session.reported("customer", "failed", 150.0)
    with pytest.raises(IllegalTransition, match="customer was not absent"):
        session.party_returned("customer", 151.0)


# Which transitions each state refuses. ``close`` and ``grace_expired`` are
# accepted everywhere (they report whether they did anything).
ILLEGAL = {
    S.IDLE: [
        "offer_relayed",
        "answer_relayed",
        "reported",
        "party_dropped",
        "party_returned",
        "restart",
    ],
    S.NEGOTIATING: ["start", "party_returned"],
    S.CONNECTED: ["start", "offer_relayed", "answer_relayed", "party_returned"],
    S.INTERRUPTED: ["start", "offer_relayed", "answer_relayed"],
    S.RESTARTING: ["start", "party_returned"],
    S.CLOSED: [
        "start",
        "offer_relayed",
        "answer_relayed",
        "reported",
        "party_dropped",
        "party_returned",
        "restart",
    ],
}


def session_in(state: MediaSessionState) -> MediaSession:
    session = MediaSession(call_id="c-1")
    if state is S.IDLE:
        return session
    session.start(0.0)
    if state is S.NEGOTIATING:
        return session
    session = connected_session(0.0)
    if state is S.CONNECTED:
        return session
    if state is S.INTERRUPTED:
        session.reported("customer", "failed", 1.0)
    elif state is S.RESTARTING:
        session.restart(1.0)
    elif state is S.CLOSED:
        session.close(1.0)
    assert session.state is state
    return session


def attempt(session: MediaSession, transition: str) -> None:
    calls: dict[str, Callable[[], object]] = {
        "start": lambda: session.start(2.0),
        "offer_relayed": lambda: session.offer_relayed(2.0),
        "answer_relayed": lambda: session.answer_relayed(2.0),
        "reported": lambda: session.reported("customer", "connected", 2.0),
        "party_dropped": lambda: session.party_dropped("customer", 2.0),
        "party_returned": lambda: session.party_returned("customer", 2.0),
        "restart": lambda: session.restart(2.0),
    }
    calls[transition]()


@pytest.mark.parametrize(
    ("state", "transition"),
    [(state, t) for state, transitions in ILLEGAL.items() for t in transitions],
    ids=lambda v: v.value if isinstance(v, MediaSessionState) else v,
)
def test_illegal_transition_names_the_current_state(
    state: MediaSessionState, transition: str
) -> None:
    session = session_in(state)
    before = len(session.history)
    with pytest.raises(IllegalTransition) as info:
        attempt(session, transition)
    assert info.value.state is state
    assert f"'{state.value}'" in str(info.value)
    assert session.state is state and len(session.history) == before


def test_grace_must_be_positive() -> None:
    with pytest.raises(ValueError, match="grace_s"):
        MediaSession(call_id="c-1", grace_s=0)


def test_history_is_bounded() -> None:
    session = connected_session()
    for i in range(MAX_HISTORY * 2):
        session.reported("customer", "connected", 200.0 + i)
    assert len(session.history) == MAX_HISTORY
    assert session.history[-1].at == 200.0 + MAX_HISTORY * 2 - 1


_steps = st.lists(
    st.tuples(
        st.sampled_from(
            [
                "start",
                "offer_relayed",
                "answer_relayed",
                "reported",
                "party_dropped",
                "party_returned",
                "restart",
                "grace_expired",
                "close",
            ]
        ),
        st.sampled_from(["customer", "specialist"]),
        st.sampled_from(["connected", "disconnected", "failed"]),
        st.floats(min_value=0.0, max_value=30.0),
    ),
    max_size=40,
)


@settings(max_examples=400)
@given(_steps)
def test_random_sequences_keep_the_invariants(steps: list[tuple[str, str, str, float]]) -> None:
    session = MediaSession(call_id="c-1", grace_s=20.0)
    now = 0.0
    for name, party, report, advance in steps:
        now += advance
        state_before = session.state
        try:
            if name in ("start", "offer_relayed", "answer_relayed", "restart"):
                getattr(session, name)(now)
            elif name == "reported":
                session.reported(party, report, now)  # type: ignore[arg-type]
            elif name in ("party_dropped", "party_returned"):
                getattr(session, name)(party, now)
            elif name == "grace_expired":
                session.grace_expired(now)
            else:
                session.close(now)
        except IllegalTransition as exc:
            assert exc.state is state_before and session.state is state_before
        # Invariants after every step.
        if session.state is S.CONNECTED:
            assert session.connected_parties == {"customer", "specialist"}
            assert session.grace_deadline is None and not session.absent_parties
            assert session.first_connected_at is not None
        if session.state in (S.INTERRUPTED, S.RESTARTING):
            assert session.grace_deadline is not None
        if session.state is S.RESTARTING:
            assert not session.absent_parties
        if session.state is S.CLOSED:
            assert session.closed_at is not None and session.grace_deadline is None
        if session.first_connected_at is not None and session.connected_at is not None:
            assert session.first_connected_at <= session.connected_at


def test_a_refused_offer_no_longer_counts_and_a_good_one_follows() -> None:
    """Relay mode counts an offer before the media node sees it; one the node
    refuses is uncounted, within its generation only."""
    session = MediaSession(call_id="c-1")
    session.start(0.0)
    session.offer_relayed(0.1)
    assert session.description_refused("offer", session.generation, 0.2) is True
    assert session.offer_relayed_at is None
    session.offer_relayed(0.3)  # the party's next, good offer
    session.answer_relayed(0.4)
    # The answer followed: the offer was taken and stays counted.
    assert session.description_refused("offer", session.generation, 0.5) is False
    assert session.description_refused("answer", session.generation, 0.5) is True
    assert session.answer_relayed_at is None and session.offer_relayed_at == 0.3
    events = [e.event for e in session.history]
    assert events.count("offer_refused") == 1 and events[-1] == "answer_refused"


def test_a_refusal_from_an_older_generation_changes_nothing() -> None:
    session = MediaSession(call_id="c-1")
    session.start(0.0)
    session.offer_relayed(0.1)
    counted_in = session.generation
    session.restart(1.0)
    session.offer_relayed(1.1)
    assert session.description_refused("offer", counted_in, 1.2) is False
    assert session.offer_relayed_at == 1.1
    connected = connected_session()
    assert connected.description_refused("offer", connected.generation, 101.0) is False
    assert connected.state is S.CONNECTED and connected.offer_relayed_at == 100.1
