"""The plain (non-WebRTC) SDP that NoSIP exchanges for each leg.

NoSIP turns a party's WebRTC description into a barebone one (``generate``)
naming the plain RTP ports Janus bound for that leg, and turns a barebone one
of ours into a WebRTC description for the party (``process``). This node is
the "legacy peer" of both legs: it reads Janus's ports and codecs, and writes
descriptions naming its own relay sockets with one codec per kind, the same on
both legs, so packets pass from one leg to the other unchanged. With SDES-SRTP
each section also carries its sender's key (``RTP/SAVP`` and ``a=crypto``).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field

from .srtp import SdesKey

__all__ = ["Codec", "PlainMedia", "PlainSdpError", "choose_codecs", "parse_plain", "write_plain"]

KINDS = ("audio", "video")
# Never the call's codec: retransmission and redundancy formats ride along a real one.
_AUXILIARY = {"rtx", "red", "ulpfec", "flexfec-03", "telephone-event", "cn"}


class PlainSdpError(ValueError):
    """Janus's description is not one this node can bridge."""


@dataclass(frozen=True, slots=True)
class Codec:
    payload_type: int
    name: str  # as in a=rtpmap, e.g. "VP8", "opus"
    clock_rate: int
    channels: int | None = None
    fmtp: str | None = None

    @property
    def rtpmap(self) -> str:
        suffix = f"/{self.channels}" if self.channels else ""
        return f"{self.payload_type} {self.name}/{self.clock_rate}{suffix}"


@dataclass(frozen=True, slots=True)
class PlainMedia:
    """One m-line of a plain description: where its RTP goes and in what formats."""

    kind: str
    host: str
    port: int
    rtcp_port: int
    codecs: tuple[Codec, ...]
    # SDES-SRTP: the key this section's sender protects its RTP and RTCP with.
    crypto: SdesKey | None = None


@dataclass
class _Section:
    kind: str
    port: int
    payload_types: list[int]
    rtpmap: dict[int, str] = field(default_factory=dict)
    fmtp: dict[int, str] = field(default_factory=dict)
    host: str | None = None
    rtcp_port: int | None = None
    crypto: SdesKey | None = None

    def media(self, session_host: str) -> PlainMedia:
        codecs = []
        for pt in self.payload_types:
            spec = self.rtpmap.get(pt)
            if spec is None:
                continue
            name, _, rest = spec.partition("/")
            rate, _, channels = rest.partition("/")
            codecs.append(
                Codec(pt, name, int(rate), int(channels) if channels else None, self.fmtp.get(pt))
            )
        host = self.host or session_host
        if not host:
            raise PlainSdpError(f"the {self.kind} section names no address")
        rtcp = self.rtcp_port or self.port + 1
        return PlainMedia(self.kind, host, self.port, rtcp, tuple(codecs), self.crypto)


def parse_plain(sdp: str) -> dict[str, PlainMedia]:
    """Audio and video sections of a barebone SDP, by kind, in the SDP's order
    (port 0 sections left out)."""
    session_host = ""
    sections: list[_Section] = []
    current: _Section | None = None
    try:
        for raw in sdp.splitlines():
            line = raw.strip()
            if line.startswith("c=") and current is None:
                session_host = line.split()[-1]
            elif line.startswith("m="):
                parts = line[2:].split()
                if len(parts) < 4:
                    raise PlainSdpError(f"bad media line: {line}")
                pts = [int(p) for p in parts[3:] if p.isdigit()]
                current = _Section(parts[0], int(parts[1]), pts)
                sections.append(current)
            elif current is None:
                continue
            elif line.startswith("c="):
                current.host = line.split()[-1]
            elif line.startswith("a=rtpmap:"):
                pt, _, spec = line[len("a=rtpmap:") :].partition(" ")
                current.rtpmap[int(pt)] = spec
            elif line.startswith("a=fmtp:"):
                pt, _, spec = line[len("a=fmtp:") :].partition(" ")
                current.fmtp[int(pt)] = spec
            elif line.startswith("a=rtcp:"):
                current.rtcp_port = int(line[len("a=rtcp:") :].split()[0])
            elif line.startswith("a=crypto:") and current.crypto is None:
                current.crypto = SdesKey.parse(line[len("a=crypto:") :])
        found: dict[str, PlainMedia] = {}
        for section in sections:
            if section.kind in KINDS and section.port != 0 and section.kind not in found:
                found[section.kind] = section.media(session_host)
    except (ValueError, IndexError) as exc:
        raise PlainSdpError(f"unreadable plain SDP: {exc}") from exc
    return found


def choose_codecs(offered: Mapping[str, PlainMedia]) -> dict[str, Codec]:
    """One codec per kind: the offerer's first real one (its preference)."""
    chosen: dict[str, Codec] = {}
    for kind, media in offered.items():
        usable = [c for c in media.codecs if c.name.lower() not in _AUXILIARY]
        if not usable:
            raise PlainSdpError(f"no usable {kind} codec in the offer")
        chosen[kind] = usable[0]
    return chosen


def write_plain(
    host: str,
    ports: Mapping[str, int],
    codecs: Mapping[str, Codec],
    *,
    session_id: int,
    order: Sequence[str] = KINDS,
    keys: Mapping[str, SdesKey] | None = None,
) -> str:
    """A barebone description: our relay socket of each kind, one codec, sendrecv.

    An answer lists its sections in the offer's ``order`` (RFC 3264). With ``keys``
    each section is SDES-SRTP (``RTP/SAVP`` and its ``a=crypto`` line).
    """
    lines = [
        "v=0",
        f"o=- {session_id} {session_id} IN IP4 {host}",
        "s=cloudbranch",
        f"c=IN IP4 {host}",
        "t=0 0",
    ]
    kinds: Sequence[str] = [k for k in order if k in codecs]
    for kind in kinds:
        codec = codecs[kind]
        key = keys.get(kind) if keys is not None else None
        profile = "RTP/SAVP" if key is not None else "RTP/AVP"
        lines += [
            f"m={kind} {ports[kind]} {profile} {codec.payload_type}",
            f"c=IN IP4 {host}",
            f"a=rtpmap:{codec.rtpmap}",
        ]
        if key is not None:
            lines.append(key.line)
        if codec.fmtp:
            lines.append(f"a=fmtp:{codec.payload_type} {codec.fmtp}")
        if kind == "video":
            lines += [
                f"a=rtcp-fb:{codec.payload_type} nack pli",
                f"a=rtcp-fb:{codec.payload_type} ccm fir",
            ]
        lines += [f"a=rtcp:{ports[kind] + 1}", "a=sendrecv"]
    return "\r\n".join(lines) + "\r\n"
