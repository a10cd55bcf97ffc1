"""Errors the queue backends raise; the server maps them to problem responses.

They are part of the service's one exception tree (:mod:`server.errors`), so
one that escapes a handler becomes a problem response with its own stable
``code`` (never a 500).
"""

from __future__ import annotations

from server.errors import Conflict, NotFound


class RoutingError(Conflict):
    """Root of routing errors. ``code`` is the stable machine-readable name."""

    code = "routing_error"


class OfferExpired(RoutingError):
    """The offer is unknown, withdrawn, expired, or not made to this specialist."""

    code = "offer_expired"


class CallNotQueued(RoutingError):
    code = "call_not_queued"


class SpecialistNotFound(RoutingError):
    code, title = "specialist_not_found", NotFound.title


class SpecialistBusy(RoutingError):
    """The specialist holds a call and cannot take another or change presence now."""

    code = "specialist_busy"


class NoAssignment(RoutingError):
    code = "no_assignment"
