"""The call state machine, as pure data.

The service applies each transition as one conditional ``UPDATE ... WHERE state IN
(sources)``, so two nodes racing on the same call cannot both win: the loser's
update touches no row and it reports the state it found.
"""

from __future__ import annotations

import enum

from server.errors import IllegalTransition


class CallState(enum.StrEnum):
    QUEUED = "queued"
    OFFERED = "offered"
    CONNECTING = "connecting"
    ACTIVE = "active"
    WRAP_UP = "wrap_up"
    ENDED = "ended"


class EndReason(enum.StrEnum):
    COMPLETED = "completed"
    CANCELLED = "cancelled"
    ABANDONED = "abandoned"
    FAILED = "failed"
    TIMEOUT = "timeout"


class CallAction(enum.StrEnum):
    OFFER = "offer"
    WITHDRAW_OFFER = "withdraw_offer"
    ACCEPT = "accept"
    MEDIA_CONNECTED = "media_connected"
    END_CONVERSATION = "end_conversation"
    FINISH_WRAP_UP = "finish_wrap_up"
    LEAVE_QUEUE = "leave_queue"


WAITING = frozenset({CallState.QUEUED, CallState.OFFERED})
IN_CONVERSATION = frozenset({CallState.CONNECTING, CallState.ACTIVE})
OPEN = frozenset(CallState) - {CallState.ENDED}
# A specialist holds the call: routing must see them busy (or in wrap-up).
HELD = frozenset({CallState.CONNECTING, CallState.ACTIVE, CallState.WRAP_UP})
# The customer's open call, for a second tap: wrap-up is the specialist's time,
# so a customer who taps again then gets a new call.
CUSTOMER_OPEN = frozenset({CallState.QUEUED, CallState.OFFERED}) | IN_CONVERSATION

TRANSITIONS: dict[CallAction, tuple[frozenset[CallState], CallState]] = {
    # The queue backend decides offers atomically; SQL only records them. A new
    # offer may be recorded before the previous offer's withdrawal (a decline on
    # another node) has been, so "offered" again is accepted.
    CallAction.OFFER: (WAITING, CallState.OFFERED),
    CallAction.WITHDRAW_OFFER: (frozenset({CallState.OFFERED}), CallState.QUEUED),
    CallAction.ACCEPT: (WAITING, CallState.CONNECTING),
    CallAction.MEDIA_CONNECTED: (frozenset({CallState.CONNECTING}), CallState.ACTIVE),
    CallAction.END_CONVERSATION: (IN_CONVERSATION, CallState.WRAP_UP),
    CallAction.FINISH_WRAP_UP: (frozenset({CallState.WRAP_UP}), CallState.ENDED),
    CallAction.LEAVE_QUEUE: (WAITING, CallState.ENDED),
}


def sources(action: CallAction) -> frozenset[CallState]:
    """The states ``action`` may start from."""
    return TRANSITIONS[action][0]


def target(action: CallAction) -> CallState:
    return TRANSITIONS[action][1]


def check(action: CallAction, current: CallState) -> CallState:
    """The state after ``action``; raises :class:`IllegalTransition` naming ``current``."""
    allowed, after = TRANSITIONS[action]
    if current not in allowed:
        raise IllegalTransition("call", current.value, action.value.replace("_", " "))
    return after
