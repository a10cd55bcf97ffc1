"""The HTTP edge: staff access on every request, throttles, security headers, /metrics.

``install_edge(app)`` adds, in this order of effect:

- a middleware that, for every request carrying a staff bearer token, asks
  :class:`server.auth.staff.StaffAccess` whether the account is active and the
  session live (401 ``account_disabled`` / ``session_revoked`` otherwise), and that
  turns a throttle refusal into ``429 too_many_attempts`` with ``Retry-After``;
- ``/metrics`` behind ``CLOUDBRANCH_METRICS_TOKEN`` outside development mode
  (``/healthz`` and ``/readyz`` stay open for probes);
- security headers on every response and no ``Server`` banner;
- the watch that closes open sockets of staff who may no longer act.

Header and body read bounds are :func:`handler_args` (given to the application)
and ``http_body_timeout_s`` (server/http/body.py).
"""

from __future__ import annotations

import hmac
from typing import Any

from aiohttp import web
from aiohttp.typedefs import Handler

from server.appkeys import SETTINGS
from server.auth.principal import Principal
from server.auth.staff import STAFF_ACCESS, STAFF_ROLES
from server.auth.throttle import TooManyAttempts
from server.auth.tokens import verify_token
from server.errors import CloudBranchError, Unauthorized
from server.settings import Settings

from .auth import is_public
from .endpoints import endpoint_of
from .problems import problem, status_of

_CSP = (
    "default-src 'self'; script-src 'self'; style-src 'self'; img-src 'self' data:; "
    "connect-src 'self'; media-src 'self' blob:; object-src 'none'; base-uri 'none'; "
    "frame-ancestors 'none'; form-action 'self'"
)
_METRICS = "/metrics"
SERVER_NAME = "cloudbranch"


def handler_args(settings: Settings) -> dict[str, Any]:
    """Bounds on what aiohttp reads before a request reaches a handler.

    aiohttp arms its keep-alive timer when a connection opens and it is only
    re-armed after a complete response, so a client that trickles its headers is
    dropped ``http_header_timeout_s`` after connecting (a slow-loris bound);
    idle keep-alive connections get the same bound.
    """
    return {
        "keepalive_timeout": settings.http_header_timeout_s,
        "max_line_size": settings.max_header_bytes,
        "max_field_size": settings.max_header_bytes,
        "max_headers": 64,
    }


def client_address(request: web.Request) -> str:
    """The client's address, for per-address throttles.

    The TCP peer, unless that peer is a reverse proxy named in
    ``CLOUDBRANCH_TRUSTED_PROXIES``: then the nearest ``X-Forwarded-For`` hop that is
    not itself a trusted proxy (hops further left are whatever the client claimed).
    """
    peer = request.remote or "unknown"
    trusted = request.app[SETTINGS].trusted_proxies
    if peer not in trusted:
        return peer
    hops = [h.strip() for h in request.headers.get("X-Forwarded-For", "").split(",")]
    for hop in reversed([h for h in hops if h]):
        if hop not in trusted:
            return hop[:64]
    return peer


def _bearer(request: web.Request) -> str | None:
    scheme, _, token = request.headers.get("Authorization", "").partition(" ")
    return token.strip() or None if scheme.lower() == "bearer" else None


@web.middleware
async def staff_access_middleware(request: web.Request, handler: Handler) -> web.StreamResponse:
    token = _bearer(request)
    if token is not None and not is_public(endpoint_of(request)):
        try:
            principal: Principal | None = verify_token(request.app[SETTINGS], token)
        except CloudBranchError:
            principal = None  # the route refuses it with the precise reason
        if principal is not None and principal.role in STAFF_ROLES:
            await request.app[STAFF_ACCESS].check(principal)
    if request.path == _METRICS:
        _check_metrics_token(request)
    try:
        return await handler(request)
    except TooManyAttempts as exc:
        response = problem(status_of(exc), exc.code, exc.title, exc.detail, exc.extra)
        response.headers["Retry-After"] = str(exc.retry_after_s)
        return response


def _check_metrics_token(request: web.Request) -> None:
    settings = request.app[SETTINGS]
    expected = settings.metrics_token
    if expected is None:
        if settings.dev_mode:
            return
        raise Unauthorized(
            "metrics need CLOUDBRANCH_METRICS_TOKEN outside development mode",
            code="metrics_not_configured",
        )
    given = _bearer(request) or ""
    if not hmac.compare_digest(given.encode(), expected.get_secret_value().encode()):
        raise Unauthorized("send Authorization: Bearer <metrics token>", code="unauthorized")


async def security_headers(request: web.Request, response: web.StreamResponse) -> None:
    """Headers every response carries; stricter ones for pages."""
    headers = response.headers
    # A fixed product word instead of aiohttp's "Python/3.x aiohttp/3.y": no versions
    # for a scanner to match against known vulnerabilities.
    headers["Server"] = SERVER_NAME
    headers.setdefault("X-Content-Type-Options", "nosniff")
    headers.setdefault("Referrer-Policy", "no-referrer")
    content_type = headers.get("Content-Type", "")
    if content_type.startswith("text/html"):
        # A page that states its own policy keeps it; the legacy frame header then
        # says the same as its frame-ancestors, so old and new browsers agree.
        policy = headers.setdefault("Content-Security-Policy", _CSP)
        framing = "SAMEORIGIN" if "frame-ancestors 'self'" in policy else "DENY"
        headers.setdefault("X-Frame-Options", framing)
    elif request.path.startswith("/api/") or not content_type.startswith(("text/css", "image/")):
        headers.setdefault("Cache-Control", "no-store")
    if request.secure:
        headers.setdefault("Strict-Transport-Security", "max-age=31536000; includeSubDomains")


def _no_version_banner() -> None:
    """Responses aiohttp writes itself (a malformed request, oversized headers) never
    reach ``on_response_prepare``; they take their Server header from this constant."""
    from aiohttp import web_response

    web_response.SERVER_SOFTWARE = SERVER_NAME  # type: ignore[attr-defined]


def install_edge(app: web.Application) -> None:
    """The middleware and response headers above; the staff checks, throttles and
    socket watch themselves are built by the bootstrap and started by ``create_app``."""
    _no_version_banner()
    app.middlewares.append(staff_access_middleware)
    app.on_response_prepare.append(security_headers)
