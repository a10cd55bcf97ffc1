"""HTTP endpoints: operations."""

from __future__ import annotations
