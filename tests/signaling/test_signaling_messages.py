"""Media wire messages: shapes, limits, discriminated parsing, JSON Schema."""

from __future__ import annotations

import json
from typing import Any

import pytest
from pydantic import ValidationError

from signaling.messages import (
    CLIENT_MEDIA_MESSAGE_TYPES,
    MAX_CALL_ID_CHARS,
    MAX_CANDIDATE_CHARS,
    MAX_SDP_BYTES,
    SERVER_MEDIA_MESSAGE_TYPES,
    IceCandidate,
    IceServer,
    MediaRestart,
    MediaStart,
    MediaState,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
    client_media_json_schema,
    parse_client_media_message,
    parse_server_media_message,
    server_media_json_schema,
)

CANDIDATE = "candidate:842163049 1 udp 1677729535 192.0.2.7 46154 typ srflx raddr 0.0.0.0 rport 0"


def test_each_client_message_parses_to_its_model(offer_sdp: str, answer_sdp: str) -> None:
    cases: list[tuple[dict[str, Any], type]] = [
        ({"type": "webrtc.offer", "call_id": "c-1", "sdp": offer_sdp}, WebRtcOffer),
        ({"type": "webrtc.answer", "call_id": "c-1", "sdp": answer_sdp}, WebRtcAnswer),
        (
            {
                "type": "webrtc.ice",
                "call_id": "c-1",
                "candidate": {"candidate": CANDIDATE, "sdpMid": "0", "sdpMLineIndex": 0},
            },
            WebRtcIce,
        ),
        ({"type": "webrtc.ice", "call_id": "c-1", "candidate": None}, WebRtcIce),
        ({"type": "media.state", "call_id": "c-1", "state": "connected"}, MediaState),
    ]
    for raw, model in cases:
        parsed = parse_client_media_message(raw)
        assert type(parsed) is model
        # What the server relays is exactly what the contract names, nothing more.
        assert parsed.model_dump(mode="json") == raw
        assert parse_client_media_message(json.dumps(raw)) == parsed


def test_browser_candidate_json_with_username_fragment_is_accepted() -> None:
    ice = WebRtcIce.model_validate(
        {
            "type": "webrtc.ice",
            "call_id": "c-1",
            "candidate": {
                "candidate": CANDIDATE,
                "sdpMid": "0",
                "sdpMLineIndex": 0,
                "usernameFragment": "Xy2v",
            },
        }
    )
    assert ice.candidate is not None and ice.candidate.usernameFragment == "Xy2v"


def test_empty_candidate_string_means_end_of_section() -> None:
    assert IceCandidate(candidate="", sdpMid="0").candidate == ""


@pytest.mark.parametrize(
    "raw",
    [
        {"type": "webrtc.offer", "call_id": "c-1", "sdp": "v=0", "extra": 1},
        {"type": "webrtc.ice", "call_id": "c-1"},  # candidate must be present, even if null
        {"type": "webrtc.ice", "call_id": "c-1", "candidate": {"candidate": CANDIDATE, "x": 1}},
        {"type": "webrtc.ice", "call_id": "c-1", "candidate": {"candidate": "typ host"}},
        {"type": "webrtc.ice", "call_id": "c-1", "candidate": {"candidate": CANDIDATE + "\r\na=x"}},
        {
            "type": "webrtc.ice",
            "call_id": "c-1",
            "candidate": {"candidate": CANDIDATE, "sdpMLineIndex": -1},
        },
        {
            "type": "webrtc.ice",
            "call_id": "c-1",
            "candidate": {"candidate": "candidate:" + "1" * MAX_CANDIDATE_CHARS},
        },
        {"type": "media.state", "call_id": "c-1", "state": "checking"},
        {"type": "media.start", "call_id": "c-1", "role": "offerer", "ice_servers": []},
        {"type": "ping"},
        {"call_id": "c-1", "sdp": "v=0"},
        {"type": "webrtc.offer", "call_id": "", "sdp": "v=0"},
        {"type": "webrtc.offer", "call_id": "c 1", "sdp": "v=0"},
        {"type": "webrtc.offer", "call_id": "123:c", "sdp": "v=0"},
        {"type": "webrtc.offer", "call_id": "c" * (MAX_CALL_ID_CHARS + 1), "sdp": "v=0"},
        {"type": "webrtc.offer", "call_id": "c-1", "sdp": ""},
        {"type": "webrtc.offer", "call_id": "c-1", "sdp": 42},
    ],
    ids=lambda raw: str(raw)[:60],
)
def test_garbage_is_refused(raw: dict[str, Any]) -> None:
    with pytest.raises(ValidationError):
        parse_client_media_message(raw)


def test_sdp_limit_is_in_utf8_bytes() -> None:
    at_limit = "v" * MAX_SDP_BYTES
    assert WebRtcOffer(call_id="c-1", sdp=at_limit).sdp == at_limit
    with pytest.raises(ValidationError, match="larger than"):
        WebRtcOffer(call_id="c-1", sdp="é" * (MAX_SDP_BYTES // 2 + 1))
    with pytest.raises(ValidationError):
        WebRtcAnswer(call_id="c-1", sdp="v" * (MAX_SDP_BYTES + 1))
    with pytest.raises(ValidationError, match="unicode"):
        WebRtcAnswer(call_id="c-1", sdp="v=0\ud800")


def test_server_messages_serialise_without_null_credentials() -> None:
    start = MediaStart(
        call_id="c-1",
        role="answerer",
        ice_servers=[
            IceServer(urls=["stun:stun.bank.example:3478"]),
            IceServer(urls=["turn:turn.bank.example:3478"], username="1:c-1", credential="x"),
        ],
    )
    assert json.loads(start.model_dump_json()) == {
        "type": "media.start",
        "call_id": "c-1",
        "role": "answerer",
        "ice_servers": [
            {"urls": ["stun:stun.bank.example:3478"]},
            {"urls": ["turn:turn.bank.example:3478"], "username": "1:c-1", "credential": "x"},
        ],
    }
    assert MediaRestart(call_id="c-1").model_dump(mode="json", exclude_none=True) == {
        "type": "media.restart",
        "call_id": "c-1",
    }


def test_server_messages_tolerate_added_fields() -> None:
    parsed = parse_server_media_message(
        {"type": "media.restart", "call_id": "c-1", "reason": "drop", "node": "m2"}
    )
    assert parsed == MediaRestart(call_id="c-1", reason="drop")


@pytest.mark.parametrize("url", ["http://x", "stun x", "turn:é", "ftp:x:1"])
def test_ice_server_urls_must_be_stun_or_turn(url: str) -> None:
    with pytest.raises(ValidationError):
        IceServer(urls=[url])


def test_ice_servers_need_at_least_one_url() -> None:
    with pytest.raises(ValidationError):
        IceServer(urls=[])


def test_client_json_schema_is_a_discriminated_union() -> None:
    schema = client_media_json_schema()
    json.dumps(schema)  # serialisable as is
    assert schema["title"] == "ClientMediaMessage"
    assert schema["discriminator"]["propertyName"] == "type"
    assert set(schema["discriminator"]["mapping"]) == CLIENT_MEDIA_MESSAGE_TYPES
    defs = schema["$defs"]
    assert defs["WebRtcOffer"]["additionalProperties"] is False
    assert defs["WebRtcOffer"]["properties"]["sdp"]["maxLength"] == MAX_SDP_BYTES
    assert defs["WebRtcOffer"]["required"] == ["call_id", "sdp"]
    assert defs["IceCandidate"]["properties"]["candidate"]["maxLength"] == MAX_CANDIDATE_CHARS
    assert defs["MediaState"]["properties"]["state"]["enum"] == [
        "connected",
        "disconnected",
        "failed",
    ]
    assert "candidate" in defs["WebRtcIce"]["required"]


def test_server_json_schema_covers_server_messages() -> None:
    schema = server_media_json_schema()
    assert set(schema["discriminator"]["mapping"]) == SERVER_MEDIA_MESSAGE_TYPES
    start = schema["$defs"]["MediaStart"]
    assert start["properties"]["role"]["enum"] == ["offerer", "answerer"]
    assert schema["$defs"]["IceServer"]["required"] == ["urls"]
