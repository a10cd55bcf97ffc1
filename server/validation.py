"""Wording of pydantic validation errors, shared by the HTTP layer and the services.

It lives outside ``server/http`` so that a service (operation parameters, for
one) can word a validation error the same way a request body does without
importing the HTTP layer.
"""

from __future__ import annotations

from pydantic import ValidationError


def describe(exc: ValidationError) -> str:
    """One readable line per problem: ``field: message``."""
    parts = []
    for error in exc.errors(include_url=False)[:10]:
        where = ".".join(str(p) for p in error["loc"]) or "body"
        parts.append(f"{where}: {error['msg']}")
    return "; ".join(parts)
