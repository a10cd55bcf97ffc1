"""Sanity checks on SDP before the server relays it to the other party.

This is not a full SDP parser: the receiving browser or aiortc parses the SDP
for real. The checks here make sure the server only forwards something that is
plainly a WebRTC session description of the kind the message type claims, of
bounded size, and without characters that could corrupt the receiver's parse.

The SDP type is not inside the text: it travels as the message type
(``webrtc.offer`` or ``webrtc.answer``). What the text does tell is the DTLS
role: RFC 8842 requires an offer to say ``a=setup:actpass`` and forbids it in an
answer, so an answer pasted into ``webrtc.offer`` (or the reverse) is caught.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Final, Literal, TypeAlias

__all__ = [
    "MAX_MEDIA_SECTIONS",
    "MAX_SDP_BYTES",
    "MAX_SDP_LINE_CHARS",
    "InvalidSdp",
    "SdpKind",
    "SdpReason",
    "SdpSummary",
    "validate_sdp",
]

MAX_SDP_BYTES: Final = 64 * 1024
MAX_SDP_LINE_CHARS: Final = 4096
MAX_MEDIA_SECTIONS: Final = 16

SdpKind: TypeAlias = Literal["offer", "answer"]

SdpReason: TypeAlias = Literal[
    "empty",
    "too_large",
    "not_text",
    "bad_line_ending",
    "bad_line",
    "line_too_long",
    "missing_version",
    "missing_origin",
    "missing_session_name",
    "no_media",
    "too_many_media",
    "wrong_kind",
]
"""Stable reason codes carried by :class:`InvalidSdp`."""

# RFC 8866 section 5: "<type>=<value>", type a single lowercase letter.
_LINE = re.compile(r"[a-z]=[^\x00-\x08\x0a-\x1f\x7f]*")
_MEDIA_LINE = re.compile(r"m=(?P<kind>[a-z]+) \d+(?:/\d+)? \S+(?: \S+)+")
_SETUP = re.compile(r"a=setup:(?P<role>[a-z]+)")


class InvalidSdp(ValueError):
    """The SDP failed a sanity check; ``reason`` is a stable code (:data:`SdpReason`)."""

    def __init__(self, reason: SdpReason, detail: str) -> None:
        super().__init__(f"{reason}: {detail}")
        self.reason: SdpReason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class SdpSummary:
    """What the checks learned: media kinds in order and the DTLS setup roles seen."""

    kind: SdpKind
    media: tuple[str, ...]
    setup_roles: frozenset[str]
    size_bytes: int


def validate_sdp(sdp: str, kind: SdpKind) -> SdpSummary:
    """Check that ``sdp`` is a sane WebRTC session description of type ``kind``.

    Lines may end in CRLF or LF; a lone CR is refused. The text must start with
    ``v=0``, carry ``o=`` and ``s=`` before the first media section and at least
    one ``m=audio`` or ``m=video`` section. Raises :class:`InvalidSdp` and
    nothing else for any ``str`` input.
    """
    if not sdp:
        raise InvalidSdp("empty", "SDP is empty")
    if len(sdp) > MAX_SDP_BYTES:
        # Cheap early exit before encoding: each character is at least one byte.
        raise InvalidSdp("too_large", f"SDP larger than {MAX_SDP_BYTES} bytes")
    try:
        size = len(sdp.encode("utf-8"))
    except UnicodeEncodeError:
        raise InvalidSdp("not_text", "SDP is not valid Unicode text") from None
    if size > MAX_SDP_BYTES:
        raise InvalidSdp("too_large", f"SDP is {size} bytes, limit {MAX_SDP_BYTES}")

    lines = sdp.split("\n")
    if lines[-1] == "":
        lines.pop()  # the final line terminator
    elif lines[-1] == "\r":
        raise InvalidSdp("bad_line_ending", "SDP ends with a lone CR")
    session_lines: list[str] = []
    media: list[str] = []
    setup_roles: set[str] = set()
    for number, raw in enumerate(lines, start=1):
        line = raw.removesuffix("\r")
        if "\r" in line:
            raise InvalidSdp("bad_line_ending", f"line {number} contains a lone CR")
        if len(line) > MAX_SDP_LINE_CHARS:
            raise InvalidSdp("line_too_long", f"line {number} exceeds {MAX_SDP_LINE_CHARS}")
        if not _LINE.fullmatch(line):
            raise InvalidSdp("bad_line", f"line {number} is not '<letter>=<value>'")
        if line.startswith("m="):
            match = _MEDIA_LINE.fullmatch(line)
            if match is None:
                raise InvalidSdp("bad_line", f"line {number} is a malformed media line")
            media.append(match["kind"])
            if len(media) > MAX_MEDIA_SECTIONS:
                raise InvalidSdp("too_many_media", f"more than {MAX_MEDIA_SECTIONS} m= lines")
        elif not media:
            session_lines.append(line)
        setup = _SETUP.fullmatch(line)
        if setup is not None:
            setup_roles.add(setup["role"])

    if not session_lines or session_lines[0] != "v=0":
        raise InvalidSdp("missing_version", "SDP does not start with v=0")
    if not any(line.startswith("o=") for line in session_lines):
        raise InvalidSdp("missing_origin", "no o= line before the first m= line")
    if not any(line.startswith("s=") for line in session_lines):
        raise InvalidSdp("missing_session_name", "no s= line before the first m= line")
    if not any(kind_ in ("audio", "video") for kind_ in media):
        raise InvalidSdp("no_media", "no m=audio or m=video section")

    if kind == "offer" and setup_roles - {"actpass"}:
        roles = ", ".join(sorted(setup_roles))
        raise InvalidSdp("wrong_kind", f"an offer must use a=setup:actpass, found {roles}")
    if kind == "answer" and "actpass" in setup_roles:
        raise InvalidSdp("wrong_kind", "an answer must not use a=setup:actpass")

    return SdpSummary(
        kind=kind,
        media=tuple(media),
        setup_roles=frozenset(setup_roles),
        size_bytes=size,
    )
