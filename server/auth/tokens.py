"""JWTs: issued here for the desk (and in development for anyone), verified for all.

Desk and development tokens are HS256 with ``CLOUDBRANCH_JWT_SECRET`` and issuer
``cloudbranch``. Customer tokens come from the bank's identity provider (issuer
``CLOUDBRANCH_CUSTOMER_JWT_ISSUER``), signed HS256 with a shared secret or RS256 with
its key; they can only ever make a customer principal.
"""

from __future__ import annotations

import time
from typing import Any

import jwt

from server.errors import Unauthorized
from server.settings import Settings

from .principal import Principal, Role

OWN_ISSUER = "cloudbranch"
_SUBJECT_MAX = 32


def issue_token(settings: Settings, role: Role, subject: str, now: float | None = None) -> str:
    issued = int(now if now is not None else time.time())
    claims = {
        "iss": OWN_ISSUER,
        "sub": subject,
        "role": role.value,
        "iat": issued,
        "exp": issued + settings.token_ttl_s,
    }
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
    elif issuer == settings.customer_jwt_issuer:
        claims = _decode_customer(settings, token)
        role = Role.CUSTOMER
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
    return Principal(role=role, subject=subject)


def _decode_customer(settings: Settings, token: str) -> dict[str, Any]:
    issuer = settings.customer_jwt_issuer
    if settings.customer_jwt_public_key:
        return _decode(token, settings.customer_jwt_public_key, ["RS256"], issuer)
    if settings.customer_jwt_secret:
        return _decode(token, settings.customer_jwt_secret.get_secret_value(), ["HS256"], issuer)
    raise Unauthorized("customer tokens are not configured", code="invalid_token")


def _decode(token: str, key: str, algorithms: list[str], issuer: str) -> dict[str, Any]:
    try:
        claims: dict[str, Any] = jwt.decode(
            token,
            key,
            algorithms=algorithms,
            issuer=issuer,
            options={"require": ["exp", "sub", "iss"]},
            leeway=30,
        )
    except jwt.ExpiredSignatureError as exc:
        raise Unauthorized("token expired", code="token_expired") from exc
    except jwt.PyJWTError as exc:
        raise Unauthorized(f"invalid token: {exc}", code="invalid_token") from exc
    return claims
