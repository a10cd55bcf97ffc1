"""HTTP endpoints: callbacks."""

from __future__ import annotations
