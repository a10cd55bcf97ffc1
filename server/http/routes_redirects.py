"""Scenario redirects from the mobile banking backend (contract: Scenario redirects).

The endpoint is public to bearer-token auth and authenticated by its HMAC
signature instead. Order matters, and is why the body is read by hand here:

1. no ``redirect_secret`` configured: 401 ``redirects_not_configured``. There is
   nothing to check a signature against (no default secret is ever assumed), so
   no sender can be authenticated; a 4xx keeps "nothing a client sends causes a
   5xx" true, and the distinct code tells the sender's operators the fault is
   this branch's configuration, not their secret;
2. the raw body is read, bounded by ``max_body_bytes`` (413);
3. the signature is checked over those exact bytes (401 ``invalid_signature``),
   before anything parses them or the database is asked about them;
4. only then content type (415), JSON (400), the body's shape (422), and the
   customer (404), replays (200) and conflicting replays (409).
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING

import structlog
from aiohttp import web
from pydantic import ValidationError

from server.appkeys import SETTINGS
from server.errors import (
    BadRequest,
    PayloadTooLarge,
    Unauthorized,
    UnsupportedMediaType,
    ValidationFailed,
)
from server.redirects.desk import TicketDesk
from server.redirects.schemas import RedirectEvent, RedirectRequest, RedirectResponse
from server.redirects.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    verify,
)

from .body import describe, unstorable_text
from .registry import registry
from .respond import json_response

if TYPE_CHECKING:
    from server.wiring import Components

log = structlog.get_logger(__name__)

TICKET_DESK: web.AppKey[TicketDesk] = web.AppKey("ticket_desk", TicketDesk)

_JSON_TYPES = ("application/json", "application/octet-stream", "")


def install(app: web.Application, components: Components) -> TicketDesk:
    """Create the ticket desk, serve redirects with it, and let calls redeem its tickets."""
    desk = TicketDesk(components.settings, components.sessions, components.calls.clock)
    components.calls.ticket_resolver = desk.redeem
    app[TICKET_DESK] = desk
    if components.settings.redirect_secret is None:
        log.info("redirects.not_configured", hint="set CLOUDBRANCH_REDIRECT_SECRET")
    return desk


async def read_raw(request: web.Request, limit: int) -> bytes:
    """The whole body as sent, refusing anything over ``limit`` bytes."""
    if request.content_length is not None and request.content_length > limit:
        raise PayloadTooLarge(f"body is larger than {limit} bytes")
    raw = bytearray()
    # read(n) returns whatever has arrived, up to n: loop until the end of the body.
    while chunk := await request.content.read(limit + 1 - len(raw)):
        raw += chunk
        if len(raw) > limit:
            raise PayloadTooLarge(f"body is larger than {limit} bytes")
    return bytes(raw)


def parse_event(content_type: str, raw: bytes) -> RedirectEvent:
    """A verified body as a redirect, with the same 4xx answers as every other body."""
    if not raw.strip():
        raise BadRequest("a JSON body is required", code="malformed_json")
    if content_type not in _JSON_TYPES:
        raise UnsupportedMediaType("send the body as application/json")
    try:
        data = json.loads(raw)
    except ValueError as exc:
        raise BadRequest(f"body is not valid JSON: {exc}", code="malformed_json") from exc
    except RecursionError as exc:
        raise BadRequest("body is nested too deeply", code="malformed_json") from exc
    if not isinstance(data, dict):
        raise ValidationFailed("body must be a JSON object")
    where = unstorable_text(data)
    if where is not None:
        raise ValidationFailed(f"{where}: text must not contain NUL or unpaired surrogates")
    try:
        return RedirectRequest.model_validate(data).root
    except ValidationError as exc:
        raise ValidationFailed(describe(exc)) from exc


@registry.route(
    "POST",
    "/api/v1/redirects",
    "Scenario redirect from the mobile banking backend, signed with X-CB-Timestamp and "
    "X-CB-Signature: issues a single-use call ticket (the same event_id again: 200, same ticket)",
    body=RedirectRequest,
    response=RedirectResponse,
    status=201,
    errors=(400, 401, 404, 409, 413, 415, 422),
    tag="redirects",
)
async def receive_redirect(request: web.Request) -> web.Response:
    settings = request.app[SETTINGS]
    desk = request.app[TICKET_DESK]
    secret = settings.redirect_secret.get_secret_value() if settings.redirect_secret else ""
    if not secret:
        raise Unauthorized(
            "scenario redirects are not configured on this branch: no sender can be verified",
            code="redirects_not_configured",
        )
    raw = await read_raw(request, settings.max_body_bytes)
    now = desk.clock()
    try:
        verify(
            secret,
            request.headers.get(TIMESTAMP_HEADER),
            request.headers.get(SIGNATURE_HEADER),
            raw,
            now=now,
            skew_s=settings.redirect_skew_s,
        )
    except InvalidSignature as exc:
        await desk.record_bad_signature(exc.flaw.value, raw, exc.timestamp, request.remote, now)
        raise
    event = parse_event(request.content_type, raw)
    receipt, created = await desk.receive(event, now)
    return json_response(receipt.as_dict(), status=201 if created else 200)
