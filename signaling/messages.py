"""Media wire messages of the WebSocket API (contract v1, "Media, both roles").

Server → client: ``media.start``, ``media.restart``.
Both directions (relayed by the server between the two parties of a call):
``webrtc.offer``, ``webrtc.answer``, ``webrtc.ice``.
Client → server: ``media.state``.

Client → server models forbid unknown fields: the relayed ones are forwarded to
the other party, so nothing a sender adds may ride along, and an unknown field
is more often a client bug than an extension. Server → client models ignore
unknown fields when read, because the contract allows the server to add fields.

Sizes are bounded here, at the wire, so a relay never buffers or forwards an
oversized blob: SDP at most :data:`MAX_SDP_BYTES` (UTF-8), an ICE candidate line
at most :data:`MAX_CANDIDATE_CHARS`, a call id at most :data:`MAX_CALL_ID_CHARS`.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Annotated, Any, Final, Literal, TypeAlias

from pydantic import (
    AfterValidator,
    BaseModel,
    ConfigDict,
    Field,
    StringConstraints,
    TypeAdapter,
)

__all__ = [
    "CLIENT_MEDIA_MESSAGE_TYPES",
    "MAX_CALL_ID_CHARS",
    "MAX_CANDIDATE_CHARS",
    "MAX_ICE_SERVERS",
    "MAX_SDP_BYTES",
    "MEDIA_ROLE_OF_PARTY",
    "SERVER_MEDIA_MESSAGE_TYPES",
    "CallId",
    "ClientMediaMessage",
    "IceCandidate",
    "IceServer",
    "IntegritySignal",
    "LivenessChallenge",
    "LivenessResult",
    "MediaRestart",
    "MediaRole",
    "MediaStart",
    "MediaState",
    "MediaStateValue",
    "PartyRole",
    "ServerMediaMessage",
    "VideoIntegrityNotice",
    "WebRtcAnswer",
    "WebRtcIce",
    "WebRtcOffer",
    "client_media_json_schema",
    "parse_client_media_message",
    "parse_server_media_message",
    "server_media_json_schema",
]

MAX_SDP_BYTES: Final = 64 * 1024
MAX_CANDIDATE_CHARS: Final = 1024
MAX_CALL_ID_CHARS: Final = 64
MAX_ICE_SERVERS: Final = 8
MAX_ICE_URLS: Final = 8
MAX_ICE_URL_CHARS: Final = 256
MAX_ICE_CREDENTIAL_CHARS: Final = 256
MAX_MID_CHARS: Final = 32
MAX_MLINE_INDEX: Final = 63
MAX_REASON_CHARS: Final = 200

PartyRole: TypeAlias = Literal["customer", "specialist"]
"""Who a party of a call is (the WebSocket role of its token)."""

MediaRole: TypeAlias = Literal["offerer", "answerer"]
"""Which half of the SDP offer/answer exchange a party plays."""

MediaStateValue: TypeAlias = Literal["connected", "disconnected", "failed"]

MEDIA_ROLE_OF_PARTY: Final[Mapping[PartyRole, MediaRole]] = {
    # The desk offers: it is the stable, managed end (fixed network, known
    # browser), so it owns the session layout; the customer's phone only answers.
    "specialist": "offerer",
    "customer": "answerer",
}

CallId = Annotated[
    str,
    StringConstraints(
        min_length=1,
        max_length=MAX_CALL_ID_CHARS,
        # No ':' (it separates expiry and call id in TURN usernames), no spaces,
        # no control characters: a call id also ends up in logs and metrics labels.
        pattern=r"^[A-Za-z0-9][A-Za-z0-9._-]*$",
    ),
]
"""A call identifier: 1-64 characters of ``[A-Za-z0-9._-]``, starting alphanumeric."""


def _sdp_within_limit(sdp: str) -> str:
    # Limit on the encoded size, which is what the socket carries; the character
    # limit below only rejects hopeless input before it is encoded.
    # (pydantic has already refused lone surrogates, so this encodes.)
    if len(sdp.encode("utf-8")) > MAX_SDP_BYTES:
        raise ValueError(f"SDP larger than {MAX_SDP_BYTES} bytes")
    return sdp


SdpText = Annotated[
    str,
    StringConstraints(min_length=1, max_length=MAX_SDP_BYTES),
    AfterValidator(_sdp_within_limit),
]


def _is_printable_ascii(text: str) -> bool:
    return all(" " <= ch <= "~" for ch in text)


def _valid_candidate_line(line: str) -> str:
    # A candidate line is pasted into the receiver's SDP, so a CR/LF or any other
    # control character would let a sender inject SDP lines.
    if not _is_printable_ascii(line):
        raise ValueError("candidate must be printable ASCII")
    if line and not line.startswith("candidate:"):
        raise ValueError("candidate must be empty or start with 'candidate:'")
    return line


def _valid_ice_url(url: str) -> str:
    if not url.startswith(("stun:", "stuns:", "turn:", "turns:")):
        raise ValueError("ICE server URL must use the stun, stuns, turn or turns scheme")
    if not _is_printable_ascii(url) or " " in url:
        raise ValueError("ICE server URL must be printable ASCII without spaces")
    return url


IceUrl = Annotated[
    str,
    StringConstraints(min_length=6, max_length=MAX_ICE_URL_CHARS),
    AfterValidator(_valid_ice_url),
]


def _is_none(value: object) -> bool:
    return value is None


class _ClientMessage(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _ServerMessage(BaseModel):
    model_config = ConfigDict(extra="ignore", frozen=True)


class IceServer(BaseModel):
    """One entry of ``ice_servers``, shaped like the browser's ``RTCIceServer``.

    ``username`` and ``credential`` are left out of the JSON when unset, because a
    browser turns a JSON ``null`` username into the string ``"null"``.
    """

    model_config = ConfigDict(extra="ignore", frozen=True)

    urls: Annotated[list[IceUrl], Field(min_length=1, max_length=MAX_ICE_URLS)]
    username: Annotated[
        str | None,
        StringConstraints(max_length=MAX_ICE_CREDENTIAL_CHARS),
        Field(exclude_if=_is_none),
    ] = None
    credential: Annotated[
        str | None,
        StringConstraints(max_length=MAX_ICE_CREDENTIAL_CHARS),
        Field(exclude_if=_is_none),
    ] = None


class IceCandidate(BaseModel):
    """A trickled ICE candidate, as the browser's ``RTCIceCandidate.toJSON()``.

    An empty ``candidate`` string means end-of-candidates for that media section
    (browsers emit it); a ``null`` candidate object in :class:`WebRtcIce` means
    end-of-candidates for the whole connection.
    """

    model_config = ConfigDict(extra="forbid", frozen=True)

    candidate: Annotated[
        str,
        StringConstraints(max_length=MAX_CANDIDATE_CHARS),
        AfterValidator(_valid_candidate_line),
    ]
    sdpMid: Annotated[str, StringConstraints(max_length=MAX_MID_CHARS)] | None = None
    sdpMLineIndex: Annotated[int, Field(ge=0, le=MAX_MLINE_INDEX)] | None = None
    # Browsers include it in toJSON(); accepted so a real desk is not refused,
    # and left out of the JSON when absent so relaying adds nothing.
    usernameFragment: Annotated[
        str | None, StringConstraints(max_length=256), Field(exclude_if=_is_none)
    ] = None


class MediaStart(_ServerMessage):
    """Server → client: set up media for an accepted call in the given role."""

    type: Literal["media.start"] = "media.start"
    call_id: CallId
    role: MediaRole
    ice_servers: Annotated[list[IceServer], Field(max_length=MAX_ICE_SERVERS)]


class MediaRestart(_ServerMessage):
    """Server → client: build a new peer connection for the same call.

    The server always sends ``role`` and fresh ``ice_servers`` (contract v1.1), so
    a client that lost its state can treat a restart exactly like ``media.start``;
    they are optional here only so that a v1 message without them still parses.
    """

    type: Literal["media.restart"] = "media.restart"
    call_id: CallId
    role: MediaRole | None = None
    ice_servers: Annotated[list[IceServer], Field(max_length=MAX_ICE_SERVERS)] | None = None
    reason: Annotated[str, StringConstraints(max_length=MAX_REASON_CHARS)] | None = None


class NoticeWords(BaseModel):
    """The same notice in Chinese and English."""

    model_config = ConfigDict(extra="forbid", frozen=True)
    zh: Annotated[str, StringConstraints(max_length=500)]
    en: Annotated[str, StringConstraints(max_length=500)]


class MediaNotice(_ServerMessage):
    """Server → both parties when media starts: the call is being recorded."""

    type: Literal["media.notice"] = "media.notice"
    call_id: CallId
    recording: bool
    message: NoticeWords


# -- video integrity (signaling/integrity; server/integrity) ----------------------------
IntegrityStatus: TypeAlias = Literal["ok", "suspect", "unknown"]
SignalCode: TypeAlias = Literal[
    "video_frozen",
    "video_looped",
    "frame_timing_anomaly",
    "face_absent",
    "multiple_faces",
    "liveness_failed",
]


class IntegritySignal(BaseModel):
    """One signal episode: since when, until when (absent while active), and why."""

    model_config = ConfigDict(extra="ignore", frozen=True)
    code: SignalCode
    since: str  # RFC 3339
    until: str | None = None
    detail: Annotated[str, StringConstraints(max_length=500)]
    confidence: float | None = None


class VideoIntegrityNotice(_ServerMessage):
    """Server → specialist whenever the status of the customer's video changes."""

    type: Literal["video.integrity"] = "video.integrity"
    call_id: CallId
    status: IntegrityStatus
    signals: Annotated[list[IntegritySignal], Field(max_length=200)]


class LivenessChallenge(_ServerMessage):
    """Server → customer: show the steps (screen colours, or head-turn arrows) now.

    ``steps`` are ``{"colour", "at_s", "duration_s"}`` (fill the screen with that
    colour from ``at_s`` seconds after receipt, for ``duration_s``) or
    ``{"direction": "left"|"right", "at_s", "duration_s"}`` (show the arrow).
    """

    type: Literal["liveness.challenge"] = "liveness.challenge"
    call_id: CallId
    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    kind: Literal["colour", "head_turn"]
    steps: Annotated[list[dict[str, Any]], Field(max_length=10)]
    deadline_s: float
    message: NoticeWords | None = None


class LivenessResult(_ServerMessage):
    """Server → specialist: whether the video followed the challenge, bound to its operation."""

    type: Literal["liveness.result"] = "liveness.result"
    call_id: CallId
    challenge_id: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    passed: bool
    reason: Literal["followed", "colour_not_seen", "face_did_not_move", "no_face", "no_video"]
    operation_id: Annotated[str, StringConstraints(max_length=64)] | None = None


class WebRtcOffer(_ClientMessage):
    """SDP offer, from the offerer, relayed to the answerer."""

    type: Literal["webrtc.offer"] = "webrtc.offer"
    call_id: CallId
    sdp: SdpText


class WebRtcAnswer(_ClientMessage):
    """SDP answer, from the answerer, relayed to the offerer."""

    type: Literal["webrtc.answer"] = "webrtc.answer"
    call_id: CallId
    sdp: SdpText


class WebRtcIce(_ClientMessage):
    """A trickled ICE candidate, or ``candidate: null`` for end-of-candidates.

    ``candidate`` is required (it may be ``null``) so that a message that simply
    forgot it is not mistaken for end-of-candidates.
    """

    type: Literal["webrtc.ice"] = "webrtc.ice"
    call_id: CallId
    candidate: IceCandidate | None


class MediaState(_ClientMessage):
    """Client → server: the client's peer connection state for the call."""

    type: Literal["media.state"] = "media.state"
    call_id: CallId
    state: MediaStateValue


ClientMediaMessage: TypeAlias = Annotated[
    WebRtcOffer | WebRtcAnswer | WebRtcIce | MediaState,
    Field(discriminator="type"),
]
"""Any media message a client may send to the server."""

ServerMediaMessage: TypeAlias = Annotated[
    MediaStart | MediaRestart | WebRtcOffer | WebRtcAnswer | WebRtcIce,
    Field(discriminator="type"),
]
"""Any media message the server sends to a client (relayed ``webrtc.*`` included)."""

CLIENT_MEDIA_MESSAGE_TYPES: Final = frozenset(
    {"webrtc.offer", "webrtc.answer", "webrtc.ice", "media.state"}
)
SERVER_MEDIA_MESSAGE_TYPES: Final = frozenset(
    {"media.start", "media.restart", "webrtc.offer", "webrtc.answer", "webrtc.ice"}
)

_client_adapter: TypeAdapter[ClientMediaMessage] = TypeAdapter(ClientMediaMessage)
_server_adapter: TypeAdapter[ServerMediaMessage] = TypeAdapter(ServerMediaMessage)


def parse_client_media_message(
    data: Mapping[str, Any] | str | bytes,
) -> WebRtcOffer | WebRtcAnswer | WebRtcIce | MediaState:
    """Validate a client → server media message (a decoded dict or raw JSON).

    Raises :class:`pydantic.ValidationError` for anything else, including a
    ``type`` that is not a client media message.
    """
    if isinstance(data, str | bytes):
        return _client_adapter.validate_json(data)
    return _client_adapter.validate_python(data)


def parse_server_media_message(
    data: Mapping[str, Any] | str | bytes,
) -> MediaStart | MediaRestart | WebRtcOffer | WebRtcAnswer | WebRtcIce:
    """Validate a server → client media message (a decoded dict or raw JSON)."""
    if isinstance(data, str | bytes):
        return _server_adapter.validate_json(data)
    return _server_adapter.validate_python(data)


def client_media_json_schema() -> dict[str, Any]:
    """JSON Schema of the client → server media messages (a ``oneOf`` on ``type``)."""
    schema = _client_adapter.json_schema(mode="validation")
    schema["title"] = "ClientMediaMessage"
    return schema


def server_media_json_schema() -> dict[str, Any]:
    """JSON Schema of the server → client media messages (as serialized)."""
    schema = _server_adapter.json_schema(mode="serialization")
    schema["title"] = "ServerMediaMessage"
    return schema
