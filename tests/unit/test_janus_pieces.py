"""The Janus backend's pure parts: plain SDP both ways, the generated configuration,
a missing janus binary, trickled candidates, and RTP put back into frames."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.media.janus import process as janus_process
from server.media.janus.config import JanusOptions, write_configuration
from server.media.janus.node import _janus_candidate
from server.media.janus.rtp import _Assembler
from server.media.janus.sdp import (
    Codec,
    PlainSdpError,
    choose_codecs,
    parse_plain,
    write_plain,
)
from signaling.media.bridge import BridgeRefused

GENERATED = """v=0
o=- 1 1 IN IP4 127.0.0.1
s=Janus NoSIP plugin
c=IN IP4 127.0.0.1
t=0 0
m=video 20010 RTP/AVP 97 98 99
a=rtpmap:97 VP8/90000
a=rtpmap:98 rtx/90000
a=fmtp:98 apt=97
a=rtpmap:99 H264/90000
a=fmtp:99 packetization-mode=1
a=sendrecv
m=audio 20000 RTP/AVP 96 0
a=rtpmap:96 opus/48000/2
a=rtpmap:0 PCMU/8000
a=sendrecv
"""


def test_janus_ports_and_codecs_are_read_in_the_sdps_order() -> None:
    media = parse_plain(GENERATED)
    assert list(media) == ["video", "audio"]
    assert (media["video"].host, media["video"].port, media["video"].rtcp_port) == (
        "127.0.0.1",
        20010,
        20011,
    )
    chosen = choose_codecs(media)
    assert chosen["video"] == Codec(97, "VP8", 90000, None, None)
    assert chosen["audio"].name == "opus" and chosen["audio"].channels == 2


def test_the_offerers_first_real_codec_wins_never_rtx() -> None:
    sdp = GENERATED.replace("m=video 20010 RTP/AVP 97 98 99", "m=video 20010 RTP/AVP 98 99 97")
    assert choose_codecs(parse_plain(sdp))["video"].name == "H264"


def test_an_answer_keeps_the_offers_section_order_and_one_codec() -> None:
    codecs = choose_codecs(parse_plain(GENERATED))
    answer = write_plain(
        "127.0.0.1",
        {"audio": 40000, "video": 40002},
        codecs,
        session_id=7,
        order=["video", "audio"],
    )
    lines = answer.split("\r\n")
    m_lines = [line for line in lines if line.startswith("m=")]
    assert m_lines == ["m=video 40002 RTP/AVP 97", "m=audio 40000 RTP/AVP 96"]
    assert "a=rtcp:40003" in lines and "a=rtcp:40001" in lines
    reread = parse_plain(answer)
    assert reread["video"].codecs == (codecs["video"],)


def test_unusable_descriptions_are_refused() -> None:
    with pytest.raises(PlainSdpError):
        parse_plain("v=0\r\nm=audio x RTP/AVP 96\r\n")
    only_rtx = "c=IN IP4 127.0.0.1\r\nm=video 2 RTP/AVP 98\r\na=rtpmap:98 rtx/90000\r\n"
    with pytest.raises(PlainSdpError):
        choose_codecs(parse_plain(only_rtx))


def test_the_private_configuration_loads_only_nosip_and_websockets(tmp_path: Path) -> None:
    layout = write_configuration(JanusOptions(api_secret="s" * 32, ws_port=12345), tmp_path)
    assert {p.name for p in layout.plugins.iterdir()} == {"libjanus_nosip.so"}
    assert {p.name for p in layout.transports.iterdir()} == {"libjanus_websockets.so"}
    main = layout.main.read_text()
    assert 'api_secret = "' + "s" * 32 + '"' in main and "admin_secret" not in main
    websockets = (layout.configs / "janus.transport.websockets.jcfg").read_text()
    assert "ws_port = 12345" in websockets and "admin_ws = false" in websockets
    assert layout.main.stat().st_mode & 0o077 == 0  # the secret is readable by us only


def test_a_missing_janus_fails_loudly(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setattr(janus_process.shutil, "which", lambda name: None)
    monkeypatch.setattr(janus_process.os.path, "exists", lambda path: False)
    with pytest.raises(janus_process.JanusMissing, match="apt-get install janus"):
        janus_process.janus_binary()


def test_candidates_are_checked_before_they_reach_janus() -> None:
    line = "candidate:1 1 UDP 2130706431 192.0.2.2 50000 typ host"
    assert _janus_candidate({"candidate": line, "sdpMid": "0", "sdpMLineIndex": 0}) == {
        "candidate": line,
        "sdpMid": "0",
        "sdpMLineIndex": 0,
    }
    assert _janus_candidate(None) is None
    assert _janus_candidate({"candidate": ""}) is None
    for bad in ({"candidate": "hello"}, "candidate:1", {"candidate": "candidate:1 1 UDP"}):
        with pytest.raises(BridgeRefused):
            _janus_candidate(bad)


def _vp8(payload: bytes, start: bool) -> bytes:
    # RFC 7741 descriptor: one byte, S bit on the first packet of a frame.
    return bytes([0x10 if start else 0x00]) + payload


def test_video_packets_make_whole_frames_and_a_lost_one_drops_its_frame() -> None:
    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    assembler = _Assembler(
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
    )
    assert assembler.add(10, 3000, False, _vp8(b"ab", True)) is None
    assert assembler.add(11, 3000, True, _vp8(b"cd", False)) == b"abcd"
    assert assembler.add(12, 6000, False, _vp8(b"ef", True)) is None
    # Sequence 13 never arrives: the frame is dropped, not recorded broken.
    assert assembler.add(14, 6000, True, _vp8(b"gh", False)) is False
    assert assembler.add(15, 9000, True, _vp8(b"ij", True)) == b"ij"


def test_the_fast_vp8_descriptor_strip_agrees_with_aiortcs() -> None:
    from aiortc.codecs.vpx import VpxPayloadDescriptor

    from server.media.janus.rtp import _vp8_payload

    for descriptor in (
        b"\x10",  # S only
        b"\x90\x80\x05",  # X, I with a 7-bit picture id
        b"\x90\x80\x81\x23",  # X, I with a 15-bit picture id
        b"\x90\xe0\x81\x23\x07\x40",  # X, I (15 bits), L, T
    ):
        packet = descriptor + b"frame-bytes"
        _, rest = VpxPayloadDescriptor.parse(packet)
        assert _vp8_payload(packet) == rest == b"frame-bytes"


def test_rtp_header_extensions_and_padding_are_cut_off_the_tapped_frame() -> None:
    import struct

    from aiortc.rtcrtpparameters import RTCRtpCodecParameters

    from server.media.janus.rtp import CallRtp, LegSockets
    from signaling.media.tap import EncodedFrame

    class Frames:
        healthy = True

        def __init__(self) -> None:
            self.frames: list[EncodedFrame] = []

        def write(self, frame: EncodedFrame) -> None:
            self.frames.append(frame)

    tap = Frames()
    vp8, opus = Codec(97, "VP8", 90000), Codec(96, "opus", 48000, 2)
    rtp = CallRtp("call-1", tap, {"video": vp8, "audio": opus}, "127.0.0.1")  # type: ignore[arg-type]
    rtp._assemblers["customer"] = _Assembler(
        RTCRtpCodecParameters(mimeType="video/VP8", clockRate=90000, payloadType=97)
    )
    leg = LegSockets("customer", "127.0.0.1")

    def packet(marker: bool, seq: int, payload: bytes) -> bytes:
        # V=2, P and X set; one 32-bit word of header extension; 3 bytes of padding.
        header = struct.pack("!BBHII", 0xB0, (0x80 if marker else 0) | 97, seq, 9000, 0x1234)
        extension = struct.pack("!HH", 0xBEDE, 1) + b"\x10\xaa\x00\x00"
        return header + extension + payload + b"\x00\x00\x03"

    rtp._tap(leg, "video", packet(False, 1, _vp8(b"key-", True)))
    rtp._tap(leg, "video", packet(True, 2, _vp8(b"frame", False)))
    rtp._tap(leg, "audio", packet(True, 3, b"opus-bytes"))
    video, audio = tap.frames
    assert (video.kind, video.data, video.timestamp) == ("video", b"key-frame", 9000)
    assert (audio.kind, audio.data) == ("audio", b"opus-bytes")
    assert leg.media_ssrc == {"video": 0x1234, "audio": 0x1234}


def test_sdes_keys_are_written_and_read_back_per_section() -> None:
    from server.media.janus.srtp import new_key

    keys = {"audio": new_key(), "video": new_key()}
    sdp = write_plain(
        "127.0.0.1",
        {"audio": 40000, "video": 40002},
        {"audio": Codec(111, "opus", 48000, 2), "video": Codec(96, "VP8", 90000)},
        session_id=7,
        keys=keys,
    )
    assert sdp.count("RTP/SAVP") == 2 and "RTP/AVP " not in sdp
    media = parse_plain(sdp)
    assert {kind: m.crypto for kind, m in media.items()} == keys
    plain = write_plain(
        "127.0.0.1", {"audio": 40000}, {"audio": Codec(111, "opus", 48000, 2)}, session_id=7
    )
    assert "a=crypto" not in plain and parse_plain(plain)["audio"].crypto is None


def test_unreadable_crypto_lines_are_refused() -> None:
    from server.media.janus.srtp import SdesKey

    with pytest.raises(ValueError):
        SdesKey.parse("1 AES_CM_128_HMAC_SHA1_80 inline:c2hvcnQ=")  # 5 bytes, not 30
    with pytest.raises(ValueError):
        SdesKey.parse("1 AES_CM_128_HMAC_SHA1_80")
    with pytest.raises(PlainSdpError):
        parse_plain("v=0\r\nc=IN IP4 127.0.0.1\r\nm=audio 4000 RTP/SAVP 111\r\na=crypto:1 X\r\n")


def test_a_leg_authenticates_what_janus_sent_and_protects_what_it_sends() -> None:
    import struct

    from pylibsrtp import Policy, Session

    from server.media.janus.srtp import LegSrtp, SrtpError, new_key

    janus_key, node_key = new_key(), new_key()
    leg = LegSrtp({"video": janus_key}, {"video": node_key})
    janus_out = Session(Policy(key=janus_key.key, ssrc_type=Policy.SSRC_ANY_OUTBOUND))
    janus_in = Session(Policy(key=node_key.key, ssrc_type=Policy.SSRC_ANY_INBOUND))
    packet = struct.pack("!BBHII", 0x80, 96, 1, 9000, 0x1234) + b"frame bytes"

    protected = janus_out.protect(packet)
    assert protected != packet and b"frame bytes" not in protected
    assert leg.unprotect("video", "rtp", protected) == packet
    with pytest.raises(SrtpError):  # replayed
        leg.unprotect("video", "rtp", protected)
    tampered = bytearray(janus_out.protect(packet[:2] + b"\x00\x02" + packet[4:]))
    tampered[-12] ^= 1
    with pytest.raises(SrtpError):  # altered in transit
        leg.unprotect("video", "rtp", bytes(tampered))

    sent = leg.protect("video", "rtp", packet)
    assert sent != packet and janus_in.unprotect(sent) == packet
    # The node forwards what it received: the same packet may leave twice (a resend).
    assert leg.protect("video", "rtp", packet) == sent


def test_a_janus_description_without_keys_is_refused_when_srtp_is_wanted() -> None:
    from server.media.janus.rtp import LegSockets

    leg = LegSockets("customer", "127.0.0.1", srtp=True)
    media = parse_plain(
        "v=0\r\nc=IN IP4 127.0.0.1\r\nm=video 4000 RTP/AVP 96\r\na=rtpmap:96 VP8/90000\r\n"
    )
    with pytest.raises(PlainSdpError, match="no SRTP key"):
        leg.remote = media
    assert leg.srtp is None and leg.remote == {}


def test_plain_legs_are_srtp_unless_they_stay_on_loopback() -> None:
    from server.media.janus.factory import plain_srtp

    assert plain_srtp("auto", "10.0.3.7") and plain_srtp("auto", "janus.media.svc")
    assert not plain_srtp("auto", "127.0.0.1") and not plain_srtp("auto", "::1")
    assert plain_srtp("on", "127.0.0.1") and not plain_srtp("off", "10.0.3.7")
