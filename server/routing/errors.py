"""Errors the queue backends raise; the server maps them to problem responses."""

from __future__ import annotations


class RoutingError(Exception):
    """Root of routing errors. ``code`` is the stable machine-readable name."""

    code = "routing_error"


class OfferExpired(RoutingError):
    """The offer is unknown, withdrawn, expired, or not made to this specialist."""

    code = "offer_expired"


class CallNotQueued(RoutingError):
    code = "call_not_queued"


class SpecialistNotFound(RoutingError):
    code = "specialist_not_found"


class SpecialistBusy(RoutingError):
    """The specialist holds a call and cannot take another or change presence now."""

    code = "specialist_busy"


class NoAssignment(RoutingError):
    code = "no_assignment"
