"""Who a socket's principal is in a call, and the small steps every part of the
media coordinator shares."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import structlog

from server.auth.principal import Principal, Role
from server.calls.state import EndReason
from server.db.models import Call
from signaling.media.bridge import BridgeRefused
from signaling.messages import PartyRole
from signaling.relay import CallParties

from .directory import NoMediaNode

log = structlog.get_logger(__name__)

FAILED_NOTICE_WINDOW_S = 900.0

FAILED_MESSAGE = {
    "zh": "刚才网络中断，视频通话已结束。您可以再点一次按钮，我们会尽快为您接通。",
    "en": "The network dropped and the video call ended. Tap the button again and "
    "we will put you through as soon as we can.",
}


def party_of(principal: Principal) -> PartyRole | None:
    if principal.role is Role.CUSTOMER:
        return "customer"
    if principal.role is Role.SPECIALIST:
        return "specialist"
    return None


# Ends a call's conversation: (call_id, reason, now) -> whether it ended now.
EndConversation = Callable[[str, EndReason, float], Awaitable[bool]]


def ref_of(call: Call) -> CallParties | None:
    if call.specialist_id is None:
        return None
    return CallParties(call.call_id, call.customer_id, call.specialist_id)


async def node_call(step: Awaitable[None], call_id: str) -> None:
    """A control step for the media node that must not fail the caller's own work."""
    try:
        await step
    except (BridgeRefused, NoMediaNode, ConnectionError, OSError) as exc:
        log.warning("media.node_step_failed", call_id=call_id, error=str(exc))
