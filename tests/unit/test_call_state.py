"""The call state machine: every legal move, every illegal one, and what the error says."""

from __future__ import annotations

import pytest

from server.calls.state import (
    IN_CONVERSATION,
    OPEN,
    TRANSITIONS,
    WAITING,
    CallAction,
    CallState,
    check,
    sources,
    target,
)
from server.errors import Conflict, IllegalTransition
from server.http.problems import status_of

Q, OF, C, A, W, E = (
    CallState.QUEUED,
    CallState.OFFERED,
    CallState.CONNECTING,
    CallState.ACTIVE,
    CallState.WRAP_UP,
    CallState.ENDED,
)

# The whole machine, written out by hand: (action, from) -> to.
LEGAL = {
    (CallAction.OFFER, Q): OF,
    (CallAction.OFFER, OF): OF,  # a new offer recorded before the last withdrawal was
    (CallAction.WITHDRAW_OFFER, OF): Q,
    (CallAction.ACCEPT, Q): C,
    (CallAction.ACCEPT, OF): C,
    (CallAction.MEDIA_CONNECTED, C): A,
    (CallAction.END_CONVERSATION, C): W,
    (CallAction.END_CONVERSATION, A): W,
    (CallAction.FINISH_WRAP_UP, W): E,
    (CallAction.LEAVE_QUEUE, Q): E,
    (CallAction.LEAVE_QUEUE, OF): E,
}


@pytest.mark.parametrize(("action", "current"), sorted(LEGAL, key=str))
def test_legal_transitions(action: CallAction, current: CallState) -> None:
    assert check(action, current) is LEGAL[(action, current)]
    assert current in sources(action)
    assert target(action) is LEGAL[(action, current)]


ILLEGAL = [(a, s) for a in CallAction for s in CallState if (a, s) not in LEGAL]


@pytest.mark.parametrize(("action", "current"), ILLEGAL)
def test_illegal_transitions_name_the_current_state(action: CallAction, current: CallState) -> None:
    with pytest.raises(IllegalTransition) as raised:
        check(action, current)
    error = raised.value
    assert error.state == current.value
    assert f"is {current.value};" in error.detail
    assert action.value.replace("_", " ") in error.detail
    assert isinstance(error, Conflict) and status_of(error) == 409 and error.code == "illegal_state"


def test_the_table_covers_every_action_and_matches_the_hand_written_machine() -> None:
    assert set(TRANSITIONS) == set(CallAction)
    derived = {(a, s): after for a, (froms, after) in TRANSITIONS.items() for s in froms}
    assert derived == LEGAL


def test_an_ended_call_goes_nowhere() -> None:
    for action in CallAction:
        with pytest.raises(IllegalTransition):
            check(action, E)


def test_state_groups() -> None:
    assert {Q, OF} == WAITING
    assert {C, A} == IN_CONVERSATION
    assert set(CallState) - {E} == OPEN


def test_every_state_is_reachable_from_queued_and_ends() -> None:
    reachable = {Q}
    frontier = [Q]
    while frontier:
        state = frontier.pop()
        for (_action, source), after in LEGAL.items():
            if source is state and after not in reachable:
                reachable.add(after)
                frontier.append(after)
    assert reachable == set(CallState)
