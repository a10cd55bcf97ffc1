"""Authenticating HTTP requests: routes that declare roles need a bearer token."""

from __future__ import annotations

from typing import TYPE_CHECKING

from aiohttp import web

from server.appkeys import SETTINGS
from server.auth.principal import Principal
from server.auth.tokens import verify_token
from server.errors import Unauthorized

if TYPE_CHECKING:
    from .endpoints import Endpoint


def is_public(endpoint: Endpoint | None) -> bool:
    """The one definition of a route open without a bearer token.

    Public are the routes outside the registry (pages, the OpenAPI document and
    schemas, and the socket, which is authenticated by its first message) and the
    registered routes that declare no roles: login and refresh, development tokens,
    scenario redirects (authenticated by their HMAC signature), the probes and
    ``/metrics`` (its own token). Every other route authenticates in the registry,
    and only those get the staff access check of the edge.
    """
    return endpoint is None or not endpoint.roles


def principal_of(request: web.Request) -> Principal:
    header = request.headers.get("Authorization", "")
    scheme, _, token = header.partition(" ")
    if scheme.lower() != "bearer" or not token.strip():
        raise Unauthorized("send Authorization: Bearer <token>", code="unauthorized")
    principal = verify_token(request.app[SETTINGS], token.strip())
    return principal
