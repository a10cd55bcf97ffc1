"""WebRTC session setup for Cloud Branch calls.

The pure part, safe to import anywhere (no aiortc, no I/O, no ``await``):

* :mod:`signaling.messages` — pydantic models of the media wire messages and
  their JSON Schema;
* :mod:`signaling.sdp` — sanity checks on SDP before it is relayed;
* :mod:`signaling.relay` — who a ``webrtc.*`` message is relayed to, or why not;
* :mod:`signaling.session` — the media-session state machine of one call;
* :mod:`signaling.ice` — STUN/TURN configuration with per-call TURN credentials.

:mod:`signaling.rtc` converts ``ice_servers`` to aiortc objects and is not
imported here, so that importing this package does not load aiortc.
This package never imports :mod:`server` or :mod:`risk`.
"""

from signaling.ice import (
    MAX_TURN_TTL_S,
    IceConfigError,
    TurnCredentials,
    ice_servers_for_call,
    turn_credentials,
)
from signaling.messages import (
    CLIENT_MEDIA_MESSAGE_TYPES,
    MEDIA_ROLE_OF_PARTY,
    SERVER_MEDIA_MESSAGE_TYPES,
    ClientMediaMessage,
    IceCandidate,
    IceServer,
    MediaRestart,
    MediaRole,
    MediaStart,
    MediaState,
    MediaStateValue,
    PartyRole,
    ServerMediaMessage,
    WebRtcAnswer,
    WebRtcIce,
    WebRtcOffer,
    client_media_json_schema,
    parse_client_media_message,
    parse_server_media_message,
    server_media_json_schema,
)
from signaling.relay import CallParties, RelayRefused, RelayTarget, relay_target
from signaling.sdp import InvalidSdp, SdpSummary, validate_sdp
from signaling.session import (
    DEFAULT_GRACE_S,
    GraceWindowClosed,
    IllegalTransition,
    MediaSession,
    MediaSessionState,
    SessionEvent,
)

__all__ = [
    "CLIENT_MEDIA_MESSAGE_TYPES",
    "DEFAULT_GRACE_S",
    "MAX_TURN_TTL_S",
    "MEDIA_ROLE_OF_PARTY",
    "SERVER_MEDIA_MESSAGE_TYPES",
    "CallParties",
    "ClientMediaMessage",
    "GraceWindowClosed",
    "IceCandidate",
    "IceConfigError",
    "IceServer",
    "IllegalTransition",
    "InvalidSdp",
    "MediaRestart",
    "MediaRole",
    "MediaSession",
    "MediaSessionState",
    "MediaStart",
    "MediaState",
    "MediaStateValue",
    "PartyRole",
    "RelayRefused",
    "RelayTarget",
    "SdpSummary",
    "ServerMediaMessage",
    "SessionEvent",
    "TurnCredentials",
    "WebRtcAnswer",
    "WebRtcIce",
    "WebRtcOffer",
    "client_media_json_schema",
    "ice_servers_for_call",
    "parse_client_media_message",
    "parse_server_media_message",
    "relay_target",
    "server_media_json_schema",
    "turn_credentials",
    "validate_sdp",
]
