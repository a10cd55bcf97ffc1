"""Scenario redirects from the mobile banking backend (contract: Scenario redirects).

The endpoint is public to bearer-token auth and authenticated by its HMAC
signature instead. Order matters, and is why the body is read by hand here
(the route is declared ``raw_body``: the registry only documents its model):

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

from aiohttp import web

from server.appkeys import SETTINGS
from server.auth.throttle import THROTTLE
from server.errors import (
    Unauthorized,
)
from server.redirects.desk import TicketDesk
from server.redirects.schemas import RedirectEvent, RedirectRequest, RedirectResponse
from server.redirects.signature import (
    SIGNATURE_HEADER,
    TIMESTAMP_HEADER,
    InvalidSignature,
    verify,
)

from .body import parse_body, read_raw
from .edge import client_address
from .registry import RouteContext, registry
from .respond import json_response

TICKET_DESK: web.AppKey[TicketDesk] = web.AppKey("ticket_desk", TicketDesk)


def parse_event(content_type: str, raw: bytes) -> RedirectEvent:
    """A verified body as a redirect, with the same 4xx answers as every other body."""
    return parse_body(raw, content_type, RedirectRequest).root


@registry.route(
    "POST",
    "/api/v1/redirects",
    "Scenario redirect from the mobile banking backend, signed with X-CB-Timestamp and "
    "X-CB-Signature: issues a single-use call ticket (the same event_id again: 200, same ticket)",
    body=RedirectRequest,
    response=RedirectResponse,
    status=201,
    errors=(400, 401, 404, 408, 409, 413, 415, 422, 429),
    tag="redirects",
    also=(200,),
    raw_body=True,
)
async def receive_redirect(ctx: RouteContext[None]) -> web.Response:
    request = ctx.request
    settings = request.app[SETTINGS]
    desk = request.app[TICKET_DESK]
    secret = settings.redirect_secret.get_secret_value() if settings.redirect_secret else ""
    if not secret:
        raise Unauthorized(
            "scenario redirects are not configured on this branch: no sender can be verified",
            code="redirects_not_configured",
        )
    # Signature guessing: an address with too many bad signatures waits (429)
    # before its next attempt is read, checked or audited.
    throttle_keys = {"redirect:address": client_address(request)}
    await request.app[THROTTLE].check(throttle_keys)
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
        await request.app[THROTTLE].failed(throttle_keys)
        await desk.record_bad_signature(exc.flaw.value, raw, exc.timestamp, request.remote, now)
        raise
    event = parse_event(request.content_type, raw)
    receipt, created = await desk.receive(event, now)
    return json_response(receipt.as_dict(), status=201 if created else 200)
