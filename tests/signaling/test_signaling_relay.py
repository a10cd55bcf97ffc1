"""Relay decisions: the refusal matrix and the only legal targets."""

from __future__ import annotations

import pytest

from signaling.messages import (
    IceCandidate,
    MediaState,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
)
from signaling.relay import CallParties, RelayRefused, RelayTarget, relay_target

PARTIES = CallParties(call_id="c-1", customer_id="C1001", specialist_id="S07")
CANDIDATE = IceCandidate(
    candidate="candidate:1 1 udp 2130706431 192.0.2.7 40000 typ host", sdpMid="0", sdpMLineIndex=0
)

SPECIALIST = ("specialist", "S07")
CUSTOMER = ("customer", "C1001")


def messages(offer_sdp: str, answer_sdp: str, call_id: str = "c-1") -> dict[str, object]:
    return {
        "offer": WebRtcOffer(call_id=call_id, sdp=offer_sdp),
        "answer": WebRtcAnswer(call_id=call_id, sdp=answer_sdp),
        "ice": WebRtcIce(call_id=call_id, candidate=CANDIDATE),
        "end_of_candidates": WebRtcIce(call_id=call_id, candidate=None),
        "state": MediaState(call_id=call_id, state="connected"),
    }


# (sender, message) -> target, or the refusal code.
MATRIX: dict[tuple[tuple[str, str], str], RelayTarget | str] = {
    (SPECIALIST, "offer"): RelayTarget("customer", "C1001"),
    (SPECIALIST, "answer"): "wrong_direction",
    (SPECIALIST, "ice"): RelayTarget("customer", "C1001"),
    (SPECIALIST, "end_of_candidates"): RelayTarget("customer", "C1001"),
    (SPECIALIST, "state"): "not_relayed",
    (CUSTOMER, "offer"): "wrong_direction",
    (CUSTOMER, "answer"): RelayTarget("specialist", "S07"),
    (CUSTOMER, "ice"): RelayTarget("specialist", "S07"),
    (CUSTOMER, "end_of_candidates"): RelayTarget("specialist", "S07"),
    (CUSTOMER, "state"): "not_relayed",
}


@pytest.mark.parametrize(("case", "expected"), list(MATRIX.items()), ids=str)
def test_relay_matrix(
    case: tuple[tuple[str, str], str],
    expected: RelayTarget | str,
    offer_sdp: str,
    answer_sdp: str,
) -> None:
    (role, subject), kind = case
    message = messages(offer_sdp, answer_sdp)[kind]
    if isinstance(expected, RelayTarget):
        assert relay_target(role, subject, PARTIES, message) == expected  # type: ignore[arg-type]
    else:
        with pytest.raises(RelayRefused) as info:
            relay_target(role, subject, PARTIES, message)  # type: ignore[arg-type]
        assert info.value.code == expected


@pytest.mark.parametrize("kind", ["offer", "answer", "ice", "end_of_candidates"])
@pytest.mark.parametrize(
    "sender",
    [
        ("customer", "C1002"),  # another customer
        ("specialist", "S08"),  # another specialist
        ("customer", "S07"),  # the specialist's subject under the wrong role
        ("specialist", "C1001"),  # the customer's subject under the wrong role
        ("supervisor", "SUP1"),
        ("supervisor", "S07"),
    ],
)
def test_outsiders_are_never_relayed(
    kind: str, sender: tuple[str, str], offer_sdp: str, answer_sdp: str
) -> None:
    message = messages(offer_sdp, answer_sdp)[kind]
    with pytest.raises(RelayRefused) as info:
        relay_target(*sender, PARTIES, message)  # type: ignore[arg-type]
    assert info.value.code == "not_in_call"


def test_message_for_another_call_is_refused(offer_sdp: str, answer_sdp: str) -> None:
    message = messages(offer_sdp, answer_sdp, call_id="c-2")["ice"]
    with pytest.raises(RelayRefused) as info:
        relay_target("customer", "C1001", PARTIES, message)  # type: ignore[arg-type]
    assert info.value.code == "wrong_call"


def test_invalid_sdp_is_refused_with_the_sdp_reason(offer_sdp: str, answer_sdp: str) -> None:
    with pytest.raises(RelayRefused) as info:
        relay_target("specialist", "S07", PARTIES, WebRtcOffer(call_id="c-1", sdp="v=0\r\n"))
    assert info.value.code == "invalid_sdp"
    assert "missing_origin" in info.value.detail
    # An answer's text pasted into an offer message.
    with pytest.raises(RelayRefused) as info:
        relay_target("specialist", "S07", PARTIES, WebRtcOffer(call_id="c-1", sdp=answer_sdp))
    assert info.value.code == "invalid_sdp" and "wrong_kind" in info.value.detail
    with pytest.raises(RelayRefused) as info:
        relay_target("customer", "C1001", PARTIES, WebRtcAnswer(call_id="c-1", sdp=offer_sdp))
    assert info.value.code == "invalid_sdp"


def test_direction_is_checked_before_the_sdp() -> None:
    # A customer sending junk as an offer learns it may not offer at all.
    with pytest.raises(RelayRefused) as info:
        relay_target("customer", "C1001", PARTIES, WebRtcOffer(call_id="c-1", sdp="junk"))
    assert info.value.code == "wrong_direction"


def test_subject_of() -> None:
    assert PARTIES.subject_of("customer") == "C1001"
    assert PARTIES.subject_of("specialist") == "S07"
