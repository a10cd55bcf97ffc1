"""A bound on how many refusals (bad redirect signatures, failed logins) are audited.

Anyone can post junk to the public redirect endpoint or the login, and every audit entry
takes the chain's one lock. So refusals of unsigned requests are recorded up to
a budget per window; the rest are counted, and the next entry written says how
many were left out, so the log still shows the whole volume.
"""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class AuditBudget:
    """At most ``per_window`` admissions per ``window_s`` seconds (fixed windows)."""

    per_window: int = 20
    window_s: float = 60.0
    _window_start: float | None = None
    _used: int = 0
    _left_out: int = 0

    def admit(self, now: float) -> int | None:
        """None if this one is left out; else how many were left out before it."""
        if self._window_start is None or now - self._window_start >= self.window_s:
            self._window_start = now
            self._used = 0
        if self._used >= self.per_window:
            self._left_out += 1
            return None
        self._used += 1
        left_out, self._left_out = self._left_out, 0
        return left_out
