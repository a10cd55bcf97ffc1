"""Sample session descriptions shaped like real browser and aiortc output."""

from __future__ import annotations

import pytest

# As a desktop Chrome desk offers audio and video (trimmed codec list).
BROWSER_OFFER = "\r\n".join(
    [
        "v=0",
        "o=- 4611731400430051336 2 IN IP4 127.0.0.1",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=extmap-allow-mixed",
        "a=msid-semantic: WMS 5a3e",
        "m=audio 9 UDP/TLS/RTP/SAVPF 111 0 8",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Xy2v",
        "a=ice-pwd:8WnPq0nm6bYb1x4i6iTD9q2R",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:"
        "DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC",
        "a=setup:actpass",
        "a=mid:0",
        "a=sendrecv",
        "a=msid:5a3e 71317484-2ed4-49d7-9eb7-1414322a7aae",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=fmtp:111 minptime=10;useinbandfec=1",
        "a=rtpmap:0 PCMU/8000",
        "a=rtpmap:8 PCMA/8000",
        "a=ssrc:1001 cname:Wm7Bd5lbsv1ejPtq",
        "m=video 9 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 0.0.0.0",
        "a=rtcp:9 IN IP4 0.0.0.0",
        "a=ice-ufrag:Xy2v",
        "a=ice-pwd:8WnPq0nm6bYb1x4i6iTD9q2R",
        "a=ice-options:trickle",
        "a=fingerprint:sha-256 6B:8B:5D:EA:59:04:20:23:29:C8:87:1C:CC:87:32:BE:"
        "DD:8C:66:A5:8E:50:55:EA:8C:D3:B6:5C:09:5E:D6:BC",
        "a=setup:actpass",
        "a=mid:1",
        "a=sendrecv",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtcp-fb:96 nack pli",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "",
    ]
)

# As aiortc answers that offer (LF-only line endings are accepted as well).
AIORTC_ANSWER = "\n".join(
    [
        "v=0",
        "o=- 3927041237 3927041237 IN IP4 0.0.0.0",
        "s=-",
        "t=0 0",
        "a=group:BUNDLE 0 1",
        "a=msid-semantic:WMS *",
        "m=audio 51234 UDP/TLS/RTP/SAVPF 111 0 8",
        "c=IN IP4 192.0.2.10",
        "a=sendrecv",
        "a=mid:0",
        "a=rtcp-mux",
        "a=rtpmap:111 opus/48000/2",
        "a=candidate:5f0b6f8a 1 udp 2130706431 192.0.2.10 51234 typ host",
        "a=end-of-candidates",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdefghijkl",
        "a=fingerprint:sha-256 AF:20:9C:5C:02:29:77:A1:02:6D:8A:8E:F7:12:5E:3A:"
        "A7:23:65:A3:17:D6:DD:A9:3E:51:AA:D6:18:59:FE:D1",
        "a=setup:active",
        "m=video 51234 UDP/TLS/RTP/SAVPF 96 97",
        "c=IN IP4 192.0.2.10",
        "a=sendrecv",
        "a=mid:1",
        "a=rtcp-mux",
        "a=rtpmap:96 VP8/90000",
        "a=rtpmap:97 rtx/90000",
        "a=fmtp:97 apt=96",
        "a=ice-ufrag:abcd",
        "a=ice-pwd:0123456789abcdefghijkl",
        "a=fingerprint:sha-256 AF:20:9C:5C:02:29:77:A1:02:6D:8A:8E:F7:12:5E:3A:"
        "A7:23:65:A3:17:D6:DD:A9:3E:51:AA:D6:18:59:FE:D1",
        "a=setup:active",
        "",
    ]
)


@pytest.fixture
def offer_sdp() -> str:
    return BROWSER_OFFER


@pytest.fixture
def answer_sdp() -> str:
    return AIORTC_ANSWER
