"""Local opening hours and time zones, parsed and checked without I/O.

Shared by the settings (which refuse a bad ``CLOUDBRANCH_CALLBACK_HOURS`` or time
zone at start-up) and the callback policy (which rings only within the hours),
so that the settings module need not import a service package.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError

_DAY_S = 24 * 3600
_HOURS = re.compile(r"^(\d{2}):(\d{2})-(\d{2}):(\d{2})$")


def zone_named(name: str) -> ZoneInfo:
    """The IANA time zone ``name``; ``ValueError`` if there is no such zone."""
    try:
        return ZoneInfo(name)
    except (ZoneInfoNotFoundError, ValueError) as exc:
        raise ValueError(f"unknown time zone {name!r}") from exc


@dataclass(frozen=True)
class LocalHours:
    """Allowed local hours ``[start, end)`` in seconds after local midnight.

    ``end`` may be 86400 (written ``24:00``). A window with ``start > end`` wraps
    past midnight (``20:00-08:00`` is the night).
    """

    start_s: int
    end_s: int

    def __post_init__(self) -> None:
        if not 0 <= self.start_s < _DAY_S:
            raise ValueError("callback hours must start between 00:00 and 23:59")
        if not 0 < self.end_s <= _DAY_S:
            raise ValueError("callback hours must end between 00:01 and 24:00")
        if self.start_s == self.end_s:
            raise ValueError("callback hours must not be empty")

    @classmethod
    def parse(cls, text: str) -> LocalHours:
        """``"HH:MM-HH:MM"``, e.g. ``"08:00-20:00"``."""
        match = _HOURS.match(text.strip())
        if match is None:
            raise ValueError(f"callback hours {text!r} are not HH:MM-HH:MM")
        h1, m1, h2, m2 = (int(g) for g in match.groups())
        if h1 > 23 or m1 > 59 or h2 > 24 or m2 > 59 or (h2 == 24 and m2 != 0):
            raise ValueError(f"callback hours {text!r} are not valid times of day")
        return cls(h1 * 3600 + m1 * 60, h2 * 3600 + m2 * 60)

    def contains(self, seconds_of_day: float) -> bool:
        if self.start_s < self.end_s:
            return self.start_s <= seconds_of_day < self.end_s
        return seconds_of_day >= self.start_s or seconds_of_day < self.end_s

    def describe(self) -> str:
        return f"{_clock(self.start_s)}-{_clock(self.end_s)}"


def _clock(seconds: int) -> str:
    return f"{seconds // 3600:02d}:{seconds % 3600 // 60:02d}"
