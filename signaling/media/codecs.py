"""Which codec the two legs of a relayed call use: the same one on both.

Media is forwarded without transcoding, so the codec a party sends is the codec
the other party must receive. The node takes the desk's first offered codec it
can forward (the offerer owns the session layout; VP8 is first for aiortc and
for browsers, H.264 when the desk puts it first), answers the desk with it and
offers the app only that one. Both are mandatory to implement for WebRTC
endpoints (RFC 7742), so an app can always take it. Audio is Opus only.
"""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from typing import Final

from aiortc import RTCRtpSender
from aiortc.rtcrtpparameters import RTCRtpCodecCapability, RTCRtpCodecParameters
from aiortc.sdp import SessionDescription

__all__ = [
    "FORWARDABLE",
    "NoCommonCodec",
    "codec_preferences",
    "negotiated_codec",
    "offered_codecs",
    "single_codec",
]

FORWARDABLE: Final = {"audio": ("audio/opus",), "video": ("video/vp8", "video/h264")}
CLOCK_RATES: Final = {"audio": 48_000, "video": 90_000}


class NoCommonCodec(Exception):
    """The two parties have no codec in common that the node can forward."""


def offered_codecs(sdp: str) -> dict[str, list[RTCRtpCodecParameters]]:
    """The codecs of each media kind in an SDP, in its order (RTX left out)."""
    description = SessionDescription.parse(sdp)
    result: dict[str, list[RTCRtpCodecParameters]] = {}
    for media in description.media:
        if media.kind in FORWARDABLE:
            result.setdefault(media.kind, []).extend(
                c for c in media.rtp.codecs if c.mimeType.lower() != f"{media.kind}/rtx"
            )
    return result


def _same(capability: RTCRtpCodecCapability, codec: RTCRtpCodecParameters) -> bool:
    if capability.mimeType.lower() != codec.mimeType.lower():
        return False
    if codec.mimeType.lower() != "video/h264":
        return True
    # H.264 streams are only interchangeable within one packetization mode and profile.
    mode = str(codec.parameters.get("packetization-mode", "0"))
    profile = str(codec.parameters.get("profile-level-id", "42001f"))[:4].lower()
    return (
        str(capability.parameters.get("packetization-mode", "0")) == mode
        and str(capability.parameters.get("profile-level-id", "42001f"))[:4].lower() == profile
    )


def codec_preferences(
    kind: str, codecs: Iterable[RTCRtpCodecParameters]
) -> list[RTCRtpCodecCapability]:
    """The node's capabilities matching ``codecs`` (in their order) that it can
    forward, plus RTX for video. Raises :class:`NoCommonCodec` if none."""
    capabilities = RTCRtpSender.getCapabilities(kind).codecs
    chosen: list[RTCRtpCodecCapability] = []
    for codec in codecs:
        if codec.mimeType.lower() not in FORWARDABLE.get(kind, ()):
            continue
        for capability in capabilities:
            if _same(capability, codec) and capability not in chosen:
                chosen.append(capability)
                break
    if not chosen:
        raise NoCommonCodec(f"no {kind} codec the node can forward")
    if kind == "video":
        chosen += [c for c in capabilities if c.mimeType.lower() == "video/rtx"]
    return chosen


def single_codec(kind: str, codecs: Iterable[RTCRtpCodecParameters]) -> list[RTCRtpCodecCapability]:
    """The first of ``codecs`` the node can forward (plus RTX for video), as
    preferences for a transceiver. Raises :class:`NoCommonCodec` if none."""
    preferences = codec_preferences(kind, codecs)
    return preferences[:1] + [c for c in preferences if c.mimeType.lower() == "video/rtx"]


def negotiated_codec(answer_sdp: str, kind: str) -> Sequence[RTCRtpCodecParameters]:
    """The codec an answer settled on for ``kind`` (its first one), as a one-item list."""
    codecs = offered_codecs(answer_sdp).get(kind, [])
    forwardable = [c for c in codecs if c.mimeType.lower() in FORWARDABLE[kind]]
    if not forwardable:
        raise NoCommonCodec(f"the answer has no {kind} codec the node can forward")
    return forwardable[:1]
