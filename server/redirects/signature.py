"""Signing and verifying scenario redirects: pure functions, the clock passed in.

The mobile banking backend signs each redirect with a secret both sides share::

    X-CB-Timestamp: <unix seconds>
    X-CB-Signature: sha256=<hex HMAC-SHA256(secret, timestamp + "." + raw body)>

The timestamp is part of the signed message and must lie within a skew window
of our clock (either way), so a captured request cannot be replayed later; the
same ``event_id`` sent again inside the window is harmless anyway (idempotent).

Verification works on the raw bytes as received, before anything parses them,
and compares digests with :func:`hmac.compare_digest` so the time taken does not
tell an attacker how many leading bytes of a forged signature were right.
"""

from __future__ import annotations

import hashlib
import hmac
import re
from enum import StrEnum

from server.errors import Unauthorized

TIMESTAMP_HEADER = "X-CB-Timestamp"
SIGNATURE_HEADER = "X-CB-Signature"
SCHEME = "sha256"

# Unix seconds as plain decimal digits; twelve are enough until the year 33658 and
# keep a hostile header from turning into a huge integer.
_TIMESTAMP = re.compile(r"[0-9]{1,12}")
_SIGNATURE = re.compile(r"sha256=([0-9a-fA-F]{64})")


class Flaw(StrEnum):
    """Why a signature was refused: for the audit log and metrics, never a secret."""

    MISSING_TIMESTAMP = "missing_timestamp"
    MISSING_SIGNATURE = "missing_signature"
    MALFORMED_TIMESTAMP = "malformed_timestamp"
    MALFORMED_SIGNATURE = "malformed_signature"
    STALE_TIMESTAMP = "stale_timestamp"
    MISMATCH = "mismatch"


_DETAIL = {
    Flaw.MISSING_TIMESTAMP: f"send {TIMESTAMP_HEADER}: <unix seconds>",
    Flaw.MISSING_SIGNATURE: f"send {SIGNATURE_HEADER}: sha256=<hex HMAC-SHA256>",
    Flaw.MALFORMED_TIMESTAMP: f"{TIMESTAMP_HEADER} must be whole unix seconds",
    Flaw.MALFORMED_SIGNATURE: f"{SIGNATURE_HEADER} must be sha256= and 64 hex digits",
    Flaw.STALE_TIMESTAMP: f"{TIMESTAMP_HEADER} is too far from the server's clock",
    Flaw.MISMATCH: "the signature does not match the timestamp and body",
}


class InvalidSignature(Unauthorized):
    """A redirect whose signature cannot be trusted: 401 ``invalid_signature``.

    ``flaw`` says which check failed; ``timestamp`` is the claimed time when it
    could at least be read (it is safe to record: it is not a secret).
    """

    code = "invalid_signature"

    def __init__(self, flaw: Flaw, timestamp: int | None = None) -> None:
        super().__init__(_DETAIL[flaw])
        self.flaw = flaw
        self.timestamp = timestamp


def message(timestamp: str, body: bytes) -> bytes:
    """The signed bytes: the timestamp exactly as sent, a dot, the raw body."""
    return timestamp.encode("ascii") + b"." + body


def digest(secret: str, timestamp: str, body: bytes) -> bytes:
    return hmac.new(secret.encode("utf-8"), message(timestamp, body), hashlib.sha256).digest()


def sign(secret: str, timestamp: int | str, body: bytes) -> str:
    """The ``X-CB-Signature`` value for ``body`` sent at ``timestamp``."""
    return f"{SCHEME}={digest(secret, str(timestamp), body).hex()}"


def parse_timestamp(value: str | None) -> tuple[str, int]:
    """The header text (what was signed) and its value in seconds."""
    if value is None or not value.strip():
        raise InvalidSignature(Flaw.MISSING_TIMESTAMP)
    text = value.strip()
    if _TIMESTAMP.fullmatch(text) is None:
        raise InvalidSignature(Flaw.MALFORMED_TIMESTAMP)
    return text, int(text)


def parse_signature(value: str | None) -> bytes:
    """The 32 digest bytes of a ``sha256=<hex>`` header."""
    if value is None or not value.strip():
        raise InvalidSignature(Flaw.MISSING_SIGNATURE)
    match = _SIGNATURE.fullmatch(value.strip())
    if match is None:
        raise InvalidSignature(Flaw.MALFORMED_SIGNATURE)
    return bytes.fromhex(match.group(1))


def within_skew(timestamp: int, now: float, skew_s: float) -> bool:
    """True if ``timestamp`` is at most ``skew_s`` seconds from ``now``, either way."""
    return abs(now - timestamp) <= skew_s


def verify(
    secret: str,
    timestamp_header: str | None,
    signature_header: str | None,
    body: bytes,
    *,
    now: float,
    skew_s: float,
) -> int:
    """Check a redirect's headers against its raw body; returns the signed timestamp.

    Raises :class:`InvalidSignature` naming the first check that failed. The
    digest is compared even when the timestamp is stale, so a stale request costs
    the same as any other and the order of checks leaks nothing useful.
    """
    if not secret:
        raise ValueError("an empty secret would accept signatures anyone can make")
    text, timestamp = parse_timestamp(timestamp_header)
    claimed = parse_signature(signature_header)
    matches = hmac.compare_digest(digest(secret, text, body), claimed)
    if not within_skew(timestamp, now, skew_s):
        raise InvalidSignature(Flaw.STALE_TIMESTAMP, timestamp)
    if not matches:
        raise InvalidSignature(Flaw.MISMATCH, timestamp)
    return timestamp
