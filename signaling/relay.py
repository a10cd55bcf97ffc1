"""Who a relayed media message goes to, or why it does not go anywhere.

The server calls :func:`relay_target` for each ``webrtc.*`` message a client
sends, with the call that the message names. The rules:

* the sender must be a party of that call, in the role its token says;
* ``webrtc.offer`` only from the offerer (the specialist),
  ``webrtc.answer`` only from the answerer (the customer),
  ``webrtc.ice`` from either party;
* the target is always the other party of the same call, never anyone else;
* SDP must pass :func:`signaling.sdp.validate_sdp` for the message's kind.

``media.state`` is consumed by the server (it drives the media session) and is
never relayed.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Literal, TypeAlias

from signaling.messages import (
    MEDIA_ROLE_OF_PARTY,
    MediaState,
    PartyRole,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
)
from signaling.sdp import InvalidSdp, validate_sdp

__all__ = [
    "CallParties",
    "RelayRefusalCode",
    "RelayRefused",
    "RelayTarget",
    "relay_target",
]

RelayRefusalCode: TypeAlias = Literal[
    "not_in_call",
    "wrong_call",
    "wrong_direction",
    "invalid_sdp",
    "not_relayed",
]
"""Stable codes of :class:`RelayRefused`, suitable for ``{"type": "error", "code"}``."""


class RelayRefused(Exception):
    """The message must not be relayed; ``code`` says why (:data:`RelayRefusalCode`)."""

    def __init__(self, code: RelayRefusalCode, detail: str) -> None:
        super().__init__(f"{code}: {detail}")
        self.code: RelayRefusalCode = code
        self.detail = detail


@dataclass(frozen=True, slots=True)
class CallParties:
    """The two parties of a call, by subject (customer id, specialist id)."""

    call_id: str
    customer_id: str
    specialist_id: str

    def subject_of(self, party: PartyRole) -> str:
        """The subject that plays ``party`` in this call."""
        return self.customer_id if party == "customer" else self.specialist_id


@dataclass(frozen=True, slots=True)
class RelayTarget:
    """Where to deliver a relayed message: the party role and its subject."""

    role: PartyRole
    subject: str


def _other(party: PartyRole) -> PartyRole:
    return "specialist" if party == "customer" else "customer"


def relay_target(
    sender_role: str,
    sender_subject: str,
    parties: CallParties,
    message: WebRtcOffer | WebRtcAnswer | WebRtcIce | MediaState,
) -> RelayTarget:
    """Decide the single recipient of ``message``, or raise :class:`RelayRefused`.

    ``sender_role`` is the role of the sender's token; any role but
    ``customer``/``specialist`` (a supervisor, say) is never in a call.
    """
    if message.call_id != parties.call_id:
        raise RelayRefused(
            "wrong_call", f"message is for call {message.call_id}, not {parties.call_id}"
        )
    if sender_role == "customer":
        sender: PartyRole = "customer"
    elif sender_role == "specialist":
        sender = "specialist"
    else:
        raise RelayRefused("not_in_call", f"a {sender_role} is not a party of any call")
    if parties.subject_of(sender) != sender_subject:
        raise RelayRefused("not_in_call", f"sender is not the {sender} of this call")

    media_role = MEDIA_ROLE_OF_PARTY[sender]
    if isinstance(message, MediaState):
        raise RelayRefused("not_relayed", "media.state is for the server, not the other party")
    if isinstance(message, WebRtcOffer):
        if media_role != "offerer":
            raise RelayRefused(
                "wrong_direction", f"only the offerer sends offers, {sender} answers"
            )
        _check_sdp(message.sdp, "offer")
    elif isinstance(message, WebRtcAnswer):
        if media_role != "answerer":
            raise RelayRefused(
                "wrong_direction", f"only the answerer sends answers, {sender} offers"
            )
        _check_sdp(message.sdp, "answer")

    target = _other(sender)
    return RelayTarget(role=target, subject=parties.subject_of(target))


def _check_sdp(sdp: str, kind: Literal["offer", "answer"]) -> None:
    try:
        validate_sdp(sdp, kind)
    except InvalidSdp as exc:
        raise RelayRefused("invalid_sdp", f"{kind} SDP refused: {exc}") from exc
