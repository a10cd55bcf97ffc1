"""JWTs: issued here for the desk (and in development for anyone), verified for all.

Desk and development tokens are HS256 with ``CLOUDBRANCH_JWT_SECRET`` and issuer
``cloudbranch``; a staff token names its session (``sid``), which every request and
socket checks (server/auth/staff.py). Customer tokens come from the bank's identity
provider (issuer ``CLOUDBRANCH_CUSTOMER_JWT_ISSUER``, audience
``CLOUDBRANCH_CUSTOMER_JWT_AUDIENCE``, both required), signed HS256 with a shared
secret or with the provider's public key, whose type pins the algorithm (RSA: RS256,
EC: ES256); they can only ever make a customer principal.
"""

from __future__ import annotations

import functools
import time
from typing import Any

import jwt
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec, rsa

from server.errors import Unauthorized
from server.settings import Settings

from .principal import Principal, Role

OWN_ISSUER = "cloudbranch"
_SUBJECT_MAX = 32


def issue_token(
    settings: Settings,
    role: Role,
    subject: str,
    now: float | None = None,
    session_id: str | None = None,
) -> str:
    issued = int(now if now is not None else time.time())
    claims: dict[str, Any] = {
        "iss": OWN_ISSUER,
        "sub": subject,
        "role": role.value,
        "iat": issued,
        "exp": issued + settings.token_ttl_s,
    }
    if session_id is not None:
        claims["sid"] = session_id
    return jwt.encode(claims, settings.signing_secret, algorithm="HS256")


def verify_token(settings: Settings, token: str) -> Principal:
    """Check signature, expiry and issuer; return who the token speaks for."""
    if not token or len(token) > 8192:
        raise Unauthorized("missing or oversized token", code="invalid_token")
    try:
        issuer = jwt.decode(token, options={"verify_signature": False}).get("iss")
    except jwt.PyJWTError as exc:
        raise Unauthorized("malformed token", code="invalid_token") from exc
    if issuer == OWN_ISSUER:
        claims = _decode(token, settings.signing_secret, ["HS256"], OWN_ISSUER)
        try:
            role = Role(str(claims.get("role")))
        except ValueError as exc:
            raise Unauthorized("token has no valid role", code="invalid_token") from exc
        session_id = claims.get("sid")
        if session_id is not None and not (
            isinstance(session_id, str) and 0 < len(session_id) <= _SUBJECT_MAX
        ):
            raise Unauthorized("token has no valid session", code="invalid_token")
    elif issuer == settings.customer_jwt_issuer:
        claims = _decode_customer(settings, token)
        role = Role.CUSTOMER
        session_id = None
    else:
        raise Unauthorized("token from an unknown issuer", code="invalid_token")
    subject = claims.get("sub")
    # isprintable() refuses control characters (NUL above all, which PostgreSQL
    # cannot take as a query parameter) and unpaired surrogates: a subject is an id.
    if (
        not isinstance(subject, str)
        or not 0 < len(subject) <= _SUBJECT_MAX
        or not subject.isprintable()
    ):
        raise Unauthorized("token has no valid subject", code="invalid_token")
    return Principal(role=role, subject=subject, session_id=session_id)


def _decode_customer(settings: Settings, token: str) -> dict[str, Any]:
    issuer, audience = settings.customer_jwt_issuer, settings.customer_jwt_audience
    if settings.customer_jwt_public_key:
        key, algorithm = _public_key(settings.customer_jwt_public_key)
        return _decode(token, key, [algorithm], issuer, audience)
    if settings.customer_jwt_secret:
        secret = settings.customer_jwt_secret.get_secret_value()
        return _decode(token, secret, ["HS256"], issuer, audience)
    raise Unauthorized("customer tokens are not configured", code="invalid_token")


@functools.cache
def _public_key(pem: str) -> tuple[Any, str]:
    """The identity provider's key and the one algorithm its type allows.

    Pinning the algorithm to the key type (never taking it from the token header)
    is what keeps an HS256 token "signed" with the public key from passing.
    """
    key = serialization.load_pem_public_key(pem.encode())
    if isinstance(key, rsa.RSAPublicKey):
        return key, "RS256"
    if isinstance(key, ec.EllipticCurvePublicKey):
        return key, "ES256"
    raise ValueError("customer_jwt_public_key must be an RSA or EC public key")


def _decode(
    token: str, key: Any, algorithms: list[str], issuer: str, audience: str | None = None
) -> dict[str, Any]:
    required = ["exp", "sub", "iss"] + (["aud"] if audience is not None else [])
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=issuer,
            audience=audience,
            options={"require": required},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from exc
    return claims
