"""Ticket rules, pure: what a redirect grants, when a ticket may be redeemed.

A ticket is a random, single-use bearer string the app receives in a deep link.
It opens one call for the customer it was issued to, until it expires. The
rules here take a snapshot of the stored redirect and ``now`` and decide; the
single-use guarantee itself is the conditional update in :mod:`.desk`.

Refusals, and why each status:

- unknown ticket: 404 ``ticket_not_found``.
- another customer's ticket: 403 ``ticket_not_yours``. Tickets carry 256 random
  bits, so confirming that one exists tells its holder nothing they could use;
  saying so plainly helps support spot a forwarded link. Checked before the
  ticket's state, so a stranger learns nothing about whether it was used.
- already used: 409 ``ticket_used``.
- expired: 409 ``ticket_expired`` (the ticket's state forbids it, like a used one).
"""

from __future__ import annotations

import json
import re
import secrets
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from urllib.parse import quote

from server.errors import CloudBranchError, Conflict, Forbidden, NotFound
from server.routing.model import PriorityClass

# token_urlsafe(32): 43 characters of the URL-safe base64 alphabet.
_TICKET = re.compile(r"[A-Za-z0-9_\-]{20,64}")

# The attempted transfer, as a transfer operation's params (contract: Specialist).
TRANSFER_FIELDS = ("amount", "currency", "payee_account", "payee_name", "payee_bank")

PRIORITY = {
    "transfer_over_limit": PriorityClass.URGENT,
    "password_locked": PriorityClass.REDIRECT,
}

# What each redirect says the customer needs: the call's intent, which routing
# uses to prefer specialists with the skill (server/routing/intents.py).
INTENT = {
    "transfer_over_limit": "transfer",
    "password_locked": "password",
}


def new_ticket() -> str:
    return secrets.token_urlsafe(32)


def looks_like_ticket(value: str) -> bool:
    """Whether ``value`` could be a ticket at all (anything else is not looked up)."""
    return _TICKET.fullmatch(value) is not None


def expiry(now: float, ttl_s: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC) + timedelta(seconds=ttl_s)


def rfc3339(value: datetime) -> str:
    """Whole seconds, UTC, ``Z``; rounded down, so a client never waits past it."""
    return value.astimezone(UTC).replace(microsecond=0).isoformat().replace("+00:00", "Z")


def deep_link(base: str, ticket: str) -> str:
    separator = "&" if "?" in base else "?"
    return f"{base}{separator}ticket={quote(ticket, safe='')}"


def canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False)


@dataclass(frozen=True)
class StoredRedirect:
    """What the rules need of a stored redirect."""

    event_id: str
    customer_id: str
    kind: str
    context: dict[str, Any]
    ticket: str
    created_at: datetime
    expires_at: datetime
    used: bool


def same_event(
    stored: StoredRedirect, customer_id: str, kind: str, context: dict[str, Any]
) -> bool:
    """Whether a repeated ``event_id`` carries the same redirect (a retry) or another."""
    return (
        stored.customer_id == customer_id
        and stored.kind == kind
        and canonical(stored.context) == canonical(context)
    )


class Refusal(StrEnum):
    NOT_FOUND = "not_found"
    NOT_YOURS = "not_yours"
    USED = "used"
    EXPIRED = "expired"

    def error(self) -> CloudBranchError:
        """The problem the customer's app gets for this refusal."""
        if self is Refusal.NOT_FOUND:
            return NotFound("this ticket is not known", code="ticket_not_found")
        if self is Refusal.NOT_YOURS:
            return Forbidden("this ticket was issued to someone else", code="ticket_not_yours")
        if self is Refusal.USED:
            return Conflict("this ticket has already opened a call", code="ticket_used")
        return Conflict("this ticket has expired", code="ticket_expired")


def refusal(stored: StoredRedirect | None, customer_id: str, now: float) -> Refusal | None:
    """Why ``customer_id`` may not redeem the ticket at ``now``; None if they may."""
    if stored is None:
        return Refusal.NOT_FOUND
    if stored.customer_id != customer_id:
        return Refusal.NOT_YOURS
    if stored.used:
        return Refusal.USED
    if now >= stored.expires_at.timestamp():
        return Refusal.EXPIRED
    return None


def call_context(stored: StoredRedirect) -> dict[str, Any]:
    """What a redeemed ticket puts on the call (``calls.context``).

    ``{"redirect": {"kind", "event_id", "received_at", "context", "transfer"?}}``: the desk is
    shown ``redirect`` as it is; ``transfer`` (``transfer_over_limit`` only) is the
    attempted transfer shaped as a transfer operation's params, the stable key the
    in-call operations read to open the pending transfer.
    """
    redirect: dict[str, Any] = {
        "kind": stored.kind,
        "event_id": stored.event_id,
        "received_at": rfc3339(stored.created_at),
        "context": stored.context,
    }
    if stored.kind == "transfer_over_limit":
        redirect["transfer"] = {key: stored.context[key] for key in TRANSFER_FIELDS}
    return {"redirect": redirect}
