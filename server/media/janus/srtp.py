"""SDES-SRTP on the plain legs between Janus and this node.

Janus's NoSIP plugin can protect the "legacy" side of a leg with SRTP keyed in the
SDP itself (SDES, RFC 4568: ``a=crypto`` lines). With it on, the media crossing
between Janus and the node is encrypted and authenticated even when the two are
not on one host's loopback, and a packet that was not made with the leg's key is
rejected before it is forwarded or recorded.

Each direction has its own key, per kind (one ``a=crypto`` line per m-line):
Janus's key (in Janus's plain SDP) protects what Janus sends to the node, the
node's key (in the SDP the node writes) what the node sends to Janus. A leg's
:class:`LegSrtp` holds both directions' libsrtp sessions. Packets arrive only on
the node's RTP thread (:mod:`.pump`); they leave from it and, for keyframe
requests, from the event loop, so the outbound sessions are used under a lock.
"""

from __future__ import annotations

import base64
import secrets
import threading
from collections.abc import Mapping
from dataclasses import dataclass

from pylibsrtp import Error as SrtpError
from pylibsrtp import Policy, Session

__all__ = ["SUITE", "LegSrtp", "SdesKey", "SrtpError", "new_key"]

SUITE = "AES_CM_128_HMAC_SHA1_80"
"""The one crypto suite offered and accepted: NoSIP's default, libsrtp's default."""
_KEY_LENGTH = 30  # 16 bytes of AES-128 key and 14 of salt


@dataclass(frozen=True, slots=True)
class SdesKey:
    """One ``a=crypto`` line: tag, suite and master key with salt."""

    tag: int
    suite: str
    key: bytes

    @property
    def line(self) -> str:
        inline = base64.b64encode(self.key).decode("ascii")
        return f"a=crypto:{self.tag} {self.suite} inline:{inline}"

    @classmethod
    def parse(cls, value: str) -> SdesKey:
        """The attribute's value (after ``a=crypto:``); ``ValueError`` if unreadable.

        Lifetime and MKI parameters (``|2^31|1:1``) are accepted and ignored: NoSIP
        writes neither, and this node keys every leg afresh."""
        parts = value.split()
        if len(parts) < 3 or not parts[2].startswith("inline:"):
            raise ValueError("a crypto line needs a tag, a suite and an inline key")
        material = parts[2][len("inline:") :].split("|", 1)[0]
        key = base64.b64decode(material, validate=True)
        if len(key) != _KEY_LENGTH:
            raise ValueError(f"an {SUITE} key is {_KEY_LENGTH} bytes, not {len(key)}")
        return cls(int(parts[0]), parts[1], key)


def new_key(tag: int = 1) -> SdesKey:
    return SdesKey(tag, SUITE, secrets.token_bytes(_KEY_LENGTH))


def _session(key: bytes, outbound: bool) -> Session:
    policy = Policy(
        key=key,
        ssrc_type=Policy.SSRC_ANY_OUTBOUND if outbound else Policy.SSRC_ANY_INBOUND,
        srtp_profile=Policy.SRTP_PROFILE_AES128_CM_SHA1_80,
    )
    if outbound:
        # What the node sends is what it received (and Janus may resend a packet
        # for a NACK): the same sequence number twice is legitimate here.
        policy.allow_repeat_tx = True
    return Session(policy)


class LegSrtp:
    """Both directions of one leg, per kind. ``unprotect*`` raise :class:`SrtpError`
    for a packet that fails authentication or replays one already seen."""

    def __init__(self, janus_keys: Mapping[str, SdesKey], node_keys: Mapping[str, SdesKey]) -> None:
        for kind, key in (*janus_keys.items(), *node_keys.items()):
            if key.suite != SUITE:
                raise ValueError(f"the {kind} section's suite {key.suite} is not {SUITE}")
        self._in = {kind: _session(key.key, outbound=False) for kind, key in janus_keys.items()}
        self._out = {kind: _session(key.key, outbound=True) for kind, key in node_keys.items()}
        # One libsrtp session must not be used by two threads at once (see above).
        self._out_lock = threading.Lock()

    def unprotect(self, kind: str, channel: str, data: bytes) -> bytes:
        session = self._in[kind]
        return session.unprotect_rtcp(data) if channel == "rtcp" else session.unprotect(data)

    def protect(self, kind: str, channel: str, data: bytes) -> bytes:
        session = self._out[kind]
        with self._out_lock:
            return session.protect_rtcp(data) if channel == "rtcp" else session.protect(data)
