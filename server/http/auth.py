"""Authenticating HTTP requests: every request under /api/v1 carries a bearer token."""

from __future__ import annotations

from aiohttp import web

from server.appkeys import SETTINGS
from server.auth.principal import Principal, Role
from server.auth.tokens import verify_token
from server.errors import Unauthorized

_PUBLIC = frozenset(
    {
        "/api/v1/desk/login",
        "/api/v1/dev/tokens",
        "/api/v1/openapi.json",
        "/api/v1/ws",  # authenticated by its first message
        "/api/v1/redirects",  # authenticated by its HMAC signature
    }
)


def is_public(path: str) -> bool:
    return not path.startswith("/api/") or path in _PUBLIC or path.startswith("/api/v1/schemas")


def principal_of(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>", code="unauthorized")
    principal = verify_token(request.app[SETTINGS], token.strip())
    return principal


def require(request: web.Request, *roles: Role) -> Principal:
    principal = principal_of(request)
    principal.require(*roles)
    return principal
