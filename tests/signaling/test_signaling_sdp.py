"""SDP sanity checks: what passes, what is refused and with which reason."""

from __future__ import annotations

from collections.abc import Callable
from typing import get_args

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from signaling.sdp import (
    MAX_MEDIA_SECTIONS,
    MAX_SDP_BYTES,
    InvalidSdp,
    SdpKind,
    SdpReason,
    validate_sdp,
)

fixture_ok = settings(suppress_health_check=[HealthCheck.function_scoped_fixture])


def _reason(sdp: str, kind: SdpKind = "offer") -> str:
    with pytest.raises(InvalidSdp) as info:
        validate_sdp(sdp, kind)
    return info.value.reason


def test_browser_offer_passes_and_is_summarised(offer_sdp: str) -> None:
    summary = validate_sdp(offer_sdp, "offer")
    assert summary.kind == "offer"
    assert summary.media == ("audio", "video")
    assert summary.setup_roles == frozenset({"actpass"})
    assert summary.size_bytes == len(offer_sdp.encode())


def test_lf_only_answer_passes(answer_sdp: str) -> None:
    assert "\r" not in answer_sdp
    summary = validate_sdp(answer_sdp, "answer")
    assert summary.media == ("audio", "video")
    assert summary.setup_roles == frozenset({"active"})


def test_missing_final_newline_is_accepted(offer_sdp: str) -> None:
    assert validate_sdp(offer_sdp.rstrip("\r\n"), "offer").media == ("audio", "video")


def test_answer_relayed_as_offer_is_wrong_kind(answer_sdp: str) -> None:
    assert _reason(answer_sdp, "offer") == "wrong_kind"


def test_offer_relayed_as_answer_is_wrong_kind(offer_sdp: str) -> None:
    assert _reason(offer_sdp, "answer") == "wrong_kind"


def test_offer_with_mixed_setup_roles_is_wrong_kind(offer_sdp: str) -> None:
    mixed = offer_sdp.replace("a=setup:actpass", "a=setup:passive", 1)
    assert _reason(mixed) == "wrong_kind"


@pytest.mark.parametrize(
    ("mutate", "reason"),
    [
        (lambda s: "", "empty"),
        (lambda s: s.replace("v=0", "v=1", 1), "missing_version"),
        (lambda s: "t=0 0\r\n" + s, "missing_version"),
        (
            lambda s: s.replace("o=- 4611731400430051336 2 IN IP4 127.0.0.1\r\n", ""),
            "missing_origin",
        ),
        (lambda s: s.replace("s=-\r\n", ""), "missing_session_name"),
        (
            lambda s: s.replace("m=audio", "m=application").replace("m=video", "m=application"),
            "no_media",
        ),
        (lambda s: s.split("m=audio")[0], "no_media"),
        (lambda s: s.replace("a=mid:0\r\n", "a=mid:0\rx=1\r\n"), "bad_line_ending"),
        (lambda s: s + "\r", "bad_line_ending"),
        (lambda s: s.replace("a=sendrecv", "a=send\x00recv", 1), "bad_line"),
        (lambda s: s.replace("a=sendrecv", "A=sendrecv", 1), "bad_line"),
        (lambda s: s.replace("a=sendrecv", "sendrecv", 1), "bad_line"),
        (lambda s: s + "\r\n", "bad_line"),  # an empty line
        (lambda s: s.replace("m=video 9 UDP/TLS/RTP/SAVPF 96 97", "m=video nine"), "bad_line"),
        (lambda s: s + "a=x:" + "y" * 5000 + "\r\n", "line_too_long"),
        (lambda s: s + "a=x:\ud800\r\n", "not_text"),
    ],
    ids=[
        "empty",
        "wrong-version",
        "version-not-first",
        "no-origin",
        "no-session-name",
        "only-data-channel",
        "no-media-sections",
        "lone-cr-inside",
        "lone-cr-at-end",
        "nul-byte",
        "uppercase-type",
        "no-equals",
        "blank-line",
        "malformed-m-line",
        "very-long-line",
        "lone-surrogate",
    ],
)
def test_malformed_sdp_is_refused_with_its_reason(
    offer_sdp: str, mutate: Callable[[str], str], reason: str
) -> None:
    assert _reason(mutate(offer_sdp)) == reason


def test_size_limit_counts_utf8_bytes(offer_sdp: str) -> None:
    # Under the limit in characters, over it in bytes: "€" is 3 bytes in UTF-8.
    filler = "".join("a=x:" + "€" * 1000 + "\r\n" for _ in range(22))
    big = offer_sdp + filler
    assert len(big) < MAX_SDP_BYTES < len(big.encode())
    assert _reason(big) == "too_large"


def _padded_to(sdp: str, size: int) -> str:
    """``sdp`` plus attribute lines bringing it to exactly ``size`` bytes."""
    extra = size - len(sdp.encode())
    full = (extra - 7) // 4006  # lines of "a=x:" + 4000 bytes + CRLF
    last = extra - full * 4006
    return sdp + ("a=x:" + "y" * 4000 + "\r\n") * full + "a=x:" + "y" * (last - 6) + "\r\n"


def test_sdp_of_exactly_the_limit_passes_one_byte_more_does_not(offer_sdp: str) -> None:
    exact = _padded_to(offer_sdp, MAX_SDP_BYTES)
    assert len(exact.encode()) == MAX_SDP_BYTES
    assert validate_sdp(exact, "offer").size_bytes == MAX_SDP_BYTES
    assert _reason(_padded_to(offer_sdp, MAX_SDP_BYTES + 1)) == "too_large"


def test_too_many_media_sections_are_refused(offer_sdp: str) -> None:
    section = "m=video 9 UDP/TLS/RTP/SAVPF 96\r\na=setup:actpass\r\n"
    assert _reason(offer_sdp + section * MAX_MEDIA_SECTIONS) == "too_many_media"


def test_invalid_sdp_names_reason_and_detail() -> None:
    with pytest.raises(InvalidSdp) as info:
        validate_sdp("v=0\r\n", "offer")
    assert info.value.reason == "missing_origin"
    assert str(info.value).startswith("missing_origin: ")
    assert isinstance(info.value, ValueError)


@given(st.text(max_size=2000), st.sampled_from(["offer", "answer"]))
def test_random_text_raises_nothing_but_invalid_sdp(text: str, kind: SdpKind) -> None:
    try:
        summary = validate_sdp(text, kind)
    except InvalidSdp as exc:
        assert exc.reason in get_args(SdpReason)
    else:
        assert text.startswith("v=0") and summary.media


_sdp_like_line = st.builds(
    "{}={}".format,
    st.sampled_from("vosmtcaxA "),
    st.sampled_from(["0", "audio 9 RTP/AVP 0", "video 1 X 96", "setup:actpass", "setup:active"])
    | st.text(max_size=20),
)


@given(st.lists(_sdp_like_line, max_size=12), st.sampled_from(["\r\n", "\n", "\r"]))
def test_sdp_like_lines_raise_nothing_but_invalid_sdp(lines: list[str], eol: str) -> None:
    text = eol.join(["v=0", "o=- 1 1 IN IP4 0.0.0.0", "s=-", *lines]) + eol
    for kind in ("offer", "answer"):
        try:
            summary = validate_sdp(text, kind)
        except InvalidSdp as exc:
            assert exc.reason in get_args(SdpReason)
        else:
            assert {"audio", "video"} & set(summary.media)
            assert ("actpass" in summary.setup_roles) != (kind == "answer") or (
                not summary.setup_roles
            )


@fixture_ok
@given(data=st.data())
def test_random_line_edits_raise_nothing_but_invalid_sdp(
    offer_sdp: str, data: st.DataObject
) -> None:
    lines = offer_sdp.split("\r\n")
    index = data.draw(st.integers(0, len(lines) - 1))
    lines[index] = data.draw(st.text(max_size=80))
    sdp = data.draw(st.sampled_from(["\r\n", "\n", "\r"])).join(lines)
    try:
        summary = validate_sdp(sdp, "offer")
    except InvalidSdp:
        return
    assert summary.media and set(summary.media) & {"audio", "video"}
