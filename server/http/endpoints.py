"""What a route declares, and what its handler is given: :class:`Endpoint` and
:class:`RouteContext` (the registry that fills them in is server/http/registry.py)."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Any, Generic, TypeVar

from aiohttp import web
from pydantic import BaseModel

from server.auth.principal import Principal, Role
from server.errors import CloudBranchError

B = TypeVar("B")


@dataclass(frozen=True)
class RouteContext(Generic[B]):
    """What a handler is given: the request, and what the registry made of it."""

    request: web.Request
    endpoint: Endpoint
    caller: Principal | None = None
    parsed: B | None = None

    @property
    def app(self) -> web.Application:
        return self.request.app

    @property
    def principal(self) -> Principal:
        """The authenticated caller (routes that declare roles always have one)."""
        if self.caller is None:
            raise RuntimeError(f"{self.endpoint.path} declares no roles: it has no principal")
        return self.caller

    @property
    def body(self) -> B:
        """The validated body (routes that declare a body the registry reads)."""
        if self.parsed is None:
            raise RuntimeError(f"{self.endpoint.path} declares no body the registry reads")
        return self.parsed

    def path(self, name: str) -> str:
        """A path parameter, already checked to be a plausible id."""
        return self.request.match_info[name]


RouteHandler = Callable[[RouteContext[Any]], Awaitable[web.StreamResponse]]


@dataclass(frozen=True)
class Endpoint:
    method: str
    path: str
    handler: RouteHandler
    summary: str
    roles: tuple[str, ...]
    body: type[BaseModel] | None
    response: type[BaseModel] | None
    status: int
    errors: tuple[int, ...]
    tag: str
    # What a malformed path id gets instead of the generic not-found, where the
    # route must answer unknown ids exactly as it answers other refusals.
    invalid_id: Callable[[], CloudBranchError] | None = None
    # The response is a JSON array of ``response``.
    many: bool = False
    # Other success statuses with the same body (200 for "the same request again").
    also: tuple[int, ...] = ()
    # An empty body is read as ``{}``.
    body_optional: bool = False
    # The handler reads the body itself (a signature is checked over its raw bytes
    # before anything parses them); ``body`` then only documents it.
    raw_body: bool = False
    # Served in development mode only; 404 otherwise, before anything else is looked at.
    dev_only: bool = False

    @property
    def allowed(self) -> tuple[Role, ...]:
        return tuple(Role(role) for role in self.roles)

    @property
    def name(self) -> str:
        return f"{self.method} {self.path}"


ENDPOINTS: web.AppKey[dict[tuple[str, str], Endpoint]] = web.AppKey("endpoints", dict)


def endpoint_of(request: web.Request) -> Endpoint | None:
    """The registered route serving ``request``, if any (HEAD is served as GET)."""
    resource = request.match_info.route.resource
    if resource is None:
        return None
    method = "GET" if request.method == "HEAD" else request.method
    return request.app.get(ENDPOINTS, {}).get((method, resource.canonical))


def statuses_of(endpoint: Endpoint) -> set[int]:
    """Every problem status a route can answer: its own, and those of the layers
    every request goes through (auth, body reading, path ids, dependencies)."""
    statuses = set(endpoint.errors) | {503}
    if endpoint.roles:
        statuses |= {401, 403}
    if endpoint.body is not None:
        statuses |= {400, 408, 413, 415, 422}
    if "{" in endpoint.path or endpoint.dev_only:
        statuses.add(404)
    return statuses
