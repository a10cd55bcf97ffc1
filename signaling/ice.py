"""ICE server configuration handed to clients in ``media.start``.

TURN credentials follow the TURN REST scheme that coturn checks with
``use-auth-secret`` / ``static-auth-secret``: the username is
``"<expiry unix seconds>:<call_id>"`` and the credential is
``base64(HMAC-SHA1(secret, username))``. Credentials are per call and expire
after at most :data:`MAX_TURN_TTL_S`, so a leaked one is useless soon after.

Nothing configured means an empty list. There is deliberately no fallback to a
public STUN server: a bank's media must not reveal customer addresses to a
third party, and the product runs its own STUN/TURN (coturn) where NAT needs it.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import math
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Final

from pydantic import ValidationError

from signaling.messages import MAX_ICE_URLS, IceServer

__all__ = [
    "MAX_TURN_TTL_S",
    "IceConfigError",
    "TurnCredentials",
    "ice_servers_for_call",
    "turn_credentials",
]

MAX_TURN_TTL_S: Final = 600


class IceConfigError(ValueError):
    """The STUN/TURN settings are unusable (wrong scheme, TURN without secret, ...)."""


@dataclass(frozen=True, slots=True)
class TurnCredentials:
    """Time-limited TURN REST credentials for one call."""

    username: str
    credential: str
    expires_at: int


def turn_credentials(secret: str, call_id: str, now: float, ttl_s: float) -> TurnCredentials:
    """Compute TURN REST credentials valid from ``now`` for ``min(ttl_s, 600)`` s.

    The expiry is rounded down to whole seconds, so a credential never outlives
    the cap.
    """
    if not secret:
        raise IceConfigError("TURN shared secret is empty")
    if not ttl_s > 0:
        raise IceConfigError(f"TURN credential ttl must be positive, got {ttl_s!r}")
    if ":" in call_id:
        # coturn splits the username at the first ':'; one in the call id
        # would still verify, but would make the username ambiguous to read.
        raise IceConfigError("call_id must not contain ':'")
    expires_at = math.floor(now + min(float(ttl_s), MAX_TURN_TTL_S))
    username = f"{expires_at}:{call_id}"
    digest = hmac.new(secret.encode("utf-8"), username.encode("utf-8"), hashlib.sha1).digest()
    return TurnCredentials(
        username=username,
        credential=base64.b64encode(digest).decode("ascii"),
        expires_at=expires_at,
    )


def ice_servers_for_call(
    *,
    stun_urls: Sequence[str],
    turn_urls: Sequence[str],
    turn_secret: str | None,
    ttl_s: float,
    call_id: str,
    now: float,
) -> list[IceServer]:
    """Build the ``ice_servers`` list for one call.

    One entry for all STUN URLs, one for all TURN URLs with per-call credentials.
    Empty when neither is configured. TURN URLs without a secret are a
    configuration error rather than silently unauthenticated.
    Note that aiortc uses only the first ``stun:`` and first usable ``turn:``
    URL; browsers try them all.
    """
    for url in stun_urls:
        if not url.startswith(("stun:", "stuns:")):
            raise IceConfigError(f"not a STUN URL: {url!r}")
    for url in turn_urls:
        if not url.startswith(("turn:", "turns:")):
            raise IceConfigError(f"not a TURN URL: {url!r}")
    if len(stun_urls) > MAX_ICE_URLS or len(turn_urls) > MAX_ICE_URLS:
        raise IceConfigError(f"at most {MAX_ICE_URLS} STUN and {MAX_ICE_URLS} TURN URLs")

    servers: list[IceServer] = []
    try:
        if stun_urls:
            servers.append(IceServer(urls=list(stun_urls)))
        if turn_urls:
            if not turn_secret:
                raise IceConfigError("TURN URLs are configured without a shared secret")
            creds = turn_credentials(turn_secret, call_id, now, ttl_s)
            servers.append(
                IceServer(
                    urls=list(turn_urls), username=creds.username, credential=creds.credential
                )
            )
    except ValidationError as exc:
        raise IceConfigError(f"unusable ICE server settings: {exc}") from exc
    return servers
