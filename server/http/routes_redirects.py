"""HTTP endpoints: redirects."""

from __future__ import annotations
