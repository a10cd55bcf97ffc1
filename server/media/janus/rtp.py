"""Plain RTP between a call's two Janus legs, and from it the frames the taps record.

Each leg (a NoSIP handle) sends its party's RTP and RTCP to a pair of this node's
sockets per kind, and receives the other party's on the same sockets; with SDES-SRTP
(:mod:`.srtp`, on when Janus is off loopback) every packet is authenticated and
decrypted as it arrives and protected again, with the receiving leg's key, as it
leaves. The node's :class:`~.pump.RtpPump` thread reads them all, off the event
loop; :class:`CallRtp` passes every packet on to the other leg as it came (same
payload type on both legs, see :mod:`.sdp`; Janus rewrites SSRCs and sequence
numbers per leg) and feeds the call's tap: audio packets are frames; video
packets are put together into frames (RTP marker bit) and a frame with a missing
packet is dropped, with a PLI to the sender, so the recording never holds a
broken frame. Nothing is decoded, nothing touches the disk here.
"""

from __future__ import annotations

import socket
import struct
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field

import structlog
from aiortc.codecs import depayload
from aiortc.rtcrtpparameters import RTCRtpCodecParameters

from signaling.media.forward import is_keyframe
from signaling.media.tap import EncodedFrame, MediaTap, Party

from .pump import RtpPump
from .sdp import Codec, PlainMedia, PlainSdpError
from .srtp import LegSrtp, SdesKey, SrtpError, new_key

__all__ = ["PLI_INTERVAL_S", "CallRtp", "LegSockets"]

log = structlog.get_logger(__name__)

PLI_INTERVAL_S = 0.25
_BIND_ATTEMPTS = 50
_RTP_HEADER = struct.Struct("!BBHII")
_EXTENSION_LENGTH = struct.Struct("!2xH")  # after the profile: length in 32-bit words
_PLI = struct.Struct("!BBHII")


def _other(party: Party) -> Party:
    return "customer" if party == "specialist" else "specialist"


def _bind_pair(host: str) -> tuple[socket.socket, socket.socket]:
    """Two UDP sockets on consecutive ports (RTP even, RTCP odd), as plain SDP expects."""
    for _ in range(_BIND_ATTEMPTS):
        rtp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        rtp.bind((host, 0))
        port = rtp.getsockname()[1]
        if port % 2:
            rtp.close()
            continue
        rtcp = socket.socket(socket.AF_INET, socket.SOCK_DGRAM)
        try:
            rtcp.bind((host, port + 1))
        except OSError:
            rtp.close()
            rtcp.close()
            continue
        return rtp, rtcp
    raise OSError("no free consecutive UDP port pair")


def _vp8_payload(packet: bytes, start: int = 0, end: int | None = None) -> bytes:
    """The VP8 payload in ``packet[start:end]`` after its RFC 7741 descriptor.

    Read in place and cut out with one slice (no descriptor objects, no copy of
    the RTP payload first): this runs for every video packet of every call."""
    if end is None:
        end = len(packet)
    offset = start + 1
    if packet[start] & 0x80:  # X: extension flags follow
        flags = packet[start + 1]
        offset = start + 2
        if flags & 0x80:  # I: picture id, 7 or 15 bits
            offset += 2 if packet[offset] & 0x80 else 1
        if flags & 0x40:  # L: TL0PICIDX
            offset += 1
        if flags & 0x30:  # T or K: TID/KEYIDX
            offset += 1
    if offset >= end:
        raise ValueError("VP8 descriptor longer than the packet")
    return packet[offset:end]


@dataclass
class _Assembler:
    """Puts one party's video RTP back together into encoded frames."""

    codec: RTCRtpCodecParameters
    parts: list[bytes] = field(default_factory=list)
    timestamp: int | None = None
    next_seq: int | None = None
    broken: bool = False
    _vp8: bool = field(init=False, default=False)

    def __post_init__(self) -> None:
        self._vp8 = self.codec.mimeType == "video/VP8"

    def add(
        self,
        seq: int,
        timestamp: int,
        marker: bool,
        packet: bytes,
        start: int = 0,
        end: int | None = None,
    ) -> bytes | bool | None:
        """The frame this packet (its payload: ``packet[start:end]``) completes, None if
        none yet, False if a frame was lost."""
        lost = self.next_seq is not None and seq != self.next_seq
        self.next_seq = (seq + 1) & 0xFFFF
        if timestamp != self.timestamp:
            if self.parts and not self.broken:
                lost = True  # the previous frame never saw its marker packet
            self.parts, self.timestamp, self.broken = [], timestamp, False
        if lost:
            self.broken = True
        try:
            if self._vp8:
                self.parts.append(_vp8_payload(packet, start, end))
            else:
                self.parts.append(depayload(self.codec, packet[start:end]))
        except (ValueError, IndexError, struct.error):
            self.broken = True
        if not marker:
            return None
        broken, parts = self.broken, self.parts
        self.parts, self.timestamp, self.broken = [], None, False
        return False if broken else b"".join(parts)


class LegSockets:
    """This node's sockets facing one leg: RTP and RTCP per kind.

    With ``srtp`` the node keys its direction of each kind (:attr:`node_keys`, for
    the SDP it writes) and takes Janus's keys from Janus's SDP (:attr:`remote`)."""

    def __init__(self, party: Party, host: str, *, srtp: bool = False) -> None:
        self.party = party
        self.host = host
        self.node_keys: dict[str, SdesKey] = {}
        self._srtp_wanted = srtp
        self.srtp: LegSrtp | None = None
        self.ports: dict[str, int] = {}
        self._remote: dict[str, PlainMedia] = {}
        # The leg's Janus address per (kind, channel), from ``remote``: looked up per packet.
        self._peers: dict[tuple[str, str], tuple[str, int]] = {}
        self._sockets: dict[tuple[str, str], socket.socket] = {}
        self._pump: RtpPump | None = None
        self._connected: set[tuple[str, str]] = set()
        self.media_ssrc: dict[str, int] = {}

    @property
    def remote(self) -> dict[str, PlainMedia]:
        """Where the leg's Janus sends from and receives on, per kind (its plain SDP)."""
        return self._remote

    @remote.setter
    def remote(self, media: dict[str, PlainMedia]) -> None:
        """Janus's side of the leg; ``PlainSdpError`` if SRTP is wanted and a section
        has no key (nothing is connected then)."""
        if self._srtp_wanted:
            missing = [kind for kind, plain in media.items() if plain.crypto is None]
            if missing:
                raise PlainSdpError(f"no SRTP key in Janus's {', '.join(missing)} section")
            self.srtp = LegSrtp(
                {kind: plain.crypto for kind, plain in media.items() if plain.crypto},
                self.node_keys,
            )
        self._remote = media
        self._peers = {}
        for kind, plain in media.items():
            self._peers[(kind, "rtp")] = (plain.host, plain.port)
            self._peers[(kind, "rtcp")] = (plain.host, plain.rtcp_port)
        # Connected: the kernel drops datagrams from anywhere but the leg's own Janus
        # ports (nothing else on the host may feed the call), and no address is
        # compared or built per packet.
        for key, sock in self._sockets.items():
            peer = self._peers.get(key)
            if peer is not None:
                sock.connect(peer)
                self._connected.add(key)

    def open(
        self,
        kinds: list[str],
        deliver: Callable[[LegSockets, str, str, bytes], None],
        pump: RtpPump,
    ) -> None:
        """Bind the leg's sockets; ``pump`` reads them and calls ``deliver``. What
        arrives before :attr:`remote` is known (and the sockets connected) is dropped."""
        self._pump = pump
        for kind in kinds:
            if self._srtp_wanted:
                self.node_keys[kind] = new_key()
            pair = _bind_pair(self.host)
            self.ports[kind] = pair[0].getsockname()[1]
            for channel, sock in zip(("rtp", "rtcp"), pair, strict=True):
                key = (kind, channel)

                def on_packet(data: bytes, k: str = kind, c: str = channel) -> None:
                    if (k, c) in self._connected:
                        deliver(self, k, c, data)

                self._sockets[key] = sock
                pump.register(sock, on_packet)

    def send(self, kind: str, channel: str, data: bytes) -> bool:
        """Send to the leg's Janus (from the pump thread or the loop: ``send`` on a
        non-blocking UDP socket never waits)."""
        key = (kind, channel)
        sock = self._sockets.get(key)
        if sock is None or key not in self._connected:
            return False
        try:
            if self.srtp is not None:
                data = self.srtp.protect(kind, channel, data)
            sock.send(data)
        except SrtpError:
            return False  # libsrtp refused the packet (malformed): one lost packet
        except OSError:
            return False  # closed meanwhile, a full buffer, or an ICMP error: one lost packet
        return True

    def close(self) -> None:
        sockets, self._sockets = self._sockets, {}
        self._connected.clear()
        for sock in sockets.values():
            if self._pump is not None:
                self._pump.unregister(sock)
            sock.close()


class CallRtp:
    """The RTP of one call's current legs: forwarding, taps and keyframe requests."""

    def __init__(
        self,
        call_id: str,
        tap: MediaTap,
        codecs: Mapping[str, Codec],
        host: str,
        pump: RtpPump | None = None,
        *,
        srtp: bool = False,
    ) -> None:
        self.call_id = call_id
        self.tap = tap
        self.host = host
        self.srtp = srtp
        # Without a pump (unit tests feed packets by hand) frames go to the tap at once.
        self.pump = pump
        self.codecs = dict(codecs)
        self.legs: dict[Party, LegSockets] = {}
        self._assemblers: dict[Party, _Assembler] = {}
        self._last_pli: dict[Party, float] = {}
        # Sources whose receiver (the other leg) came up and has not had a keyframe
        # since: asked again (at most every PLI_INTERVAL_S) until one passes.
        self._keyframe_owed: set[Party] = set()
        self.forwarded_packets = 0
        self.tapped_frames = 0
        self.keyframe_requests = 0
        self.tap_errors = 0
        # Packets that failed SRTP authentication (or replayed one): never forwarded.
        self.rejected_packets = 0

    def open_leg(self, party: Party) -> LegSockets:
        if self.pump is None:
            raise RuntimeError("a call's RTP needs the node's pump to open a leg")
        leg = LegSockets(party, self.host, srtp=self.srtp)
        leg.open(sorted(self.codecs), self._on_packet, self.pump)
        self.legs[party] = leg
        video = self.codecs.get("video")
        if video is not None:
            self._assemblers[party] = _Assembler(
                RTCRtpCodecParameters(
                    mimeType=f"video/{video.name}",
                    clockRate=video.clock_rate,
                    payloadType=video.payload_type,
                )
            )
        return leg

    def close_leg(self, party: Party) -> None:
        leg = self.legs.pop(party, None)
        if leg is not None:
            leg.close()
        self._assemblers.pop(party, None)

    def close(self) -> None:
        for party in list(self.legs):
            self.close_leg(party)

    def receiver_connected(self, party: Party) -> None:
        """``party``'s leg is up: it needs a keyframe of the other party's video."""
        source = _other(party)
        self._keyframe_owed.add(source)
        self.request_keyframe(source)

    def request_keyframe(self, source: Party) -> None:
        """Send a PLI towards ``source``'s leg, at most once per interval."""
        now = time.monotonic()
        if now - self._last_pli.get(source, -1e9) < PLI_INTERVAL_S:
            return
        leg = self.legs.get(source)
        ssrc = leg.media_ssrc.get("video") if leg is not None else None
        if leg is None or ssrc is None:
            return
        self._last_pli[source] = now
        self.keyframe_requests += 1
        # RTCP PSFB, FMT 1 (PLI): sender SSRC 1 (this node), media SSRC the sender's.
        leg.send("video", "rtcp", _PLI.pack(0x81, 206, 2, 1, ssrc))

    # -- packets ---------------------------------------------------------------------
    def _on_packet(self, leg: LegSockets, kind: str, channel: str, data: bytes) -> None:
        if self.legs.get(leg.party) is not leg:
            return
        if leg.srtp is not None:
            try:
                data = leg.srtp.unprotect(kind, channel, data)
            except SrtpError:
                self.rejected_packets += 1
                return
        sink = self.legs.get(_other(leg.party))
        if channel == "rtcp":
            if sink is not None:
                sink.send(kind, "rtcp", data)
            return
        if len(data) < 12:
            return
        if sink is not None and sink.send(kind, "rtp", data):
            self.forwarded_packets += 1
        if kind == "video" and leg.party in self._keyframe_owed:
            self.request_keyframe(leg.party)
        try:
            self._tap(leg, kind, data)
        except Exception:
            self.tap_errors += 1  # a tap must never stop the forwarding
            if self.tap_errors == 1:
                log.exception("media.tap_failed", call_id=self.call_id)

    def _tap(self, leg: LegSockets, kind: str, data: bytes) -> None:
        first, second, seq, timestamp, ssrc = _RTP_HEADER.unpack_from(data)
        leg.media_ssrc[kind] = ssrc
        offset = 12 + 4 * (first & 0x0F)
        if first & 0x10:  # header extension
            if len(data) < offset + 4:
                return
            (length,) = _EXTENSION_LENGTH.unpack_from(data, offset)
            offset += 4 + 4 * length
        end = len(data)
        if first & 0x20 and end > offset:  # padding
            end -= data[-1]
        if end <= offset:
            return
        codec = self.codecs[kind]
        if kind == "audio":
            self._write(leg.party, kind, codec, data[offset:end], timestamp, True)
            return
        assembler = self._assemblers.get(leg.party)
        if assembler is None:
            return
        # The payload is cut out once, by the assembler, after the codec's descriptor.
        frame = assembler.add(seq, timestamp, bool(second & 0x80), data, offset, end)
        if frame is False:
            self.request_keyframe(leg.party)
        elif isinstance(frame, bytes) and frame:
            keyframe = is_keyframe(codec.name, frame)
            if keyframe:
                self._keyframe_owed.discard(leg.party)
            self._write(leg.party, kind, codec, frame, timestamp, keyframe)

    def _write(
        self, party: Party, kind: str, codec: Codec, data: bytes, timestamp: int, keyframe: bool
    ) -> None:
        self.tapped_frames += 1
        frame = EncodedFrame(
            party=party,
            kind=kind,  # type: ignore[arg-type]
            codec=codec.name,
            data=data,
            timestamp=timestamp,
            clock_rate=codec.clock_rate,
            keyframe=keyframe,
            arrival=time.time(),
        )
        if self.pump is None:
            self.tap.write(frame)
        else:
            self.pump.deliver(self.tap, frame)
