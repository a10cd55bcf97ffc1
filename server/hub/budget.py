"""Per-socket message budgets: what one client may send, and how fast.

Each message type has a token bucket (``burst`` messages at once, refilled at
``per_s``); ICE candidates are also counted per negotiation, which a client's
``webrtc.offer`` or ``webrtc.answer`` starts. A client over its budget gets an
``error`` (``rate_limited``) and then the socket is closed with
:data:`CLOSE_RATE_LIMITED`; its call goes on (the media grace window applies, as
for any dropped socket), and nobody else is slowed.

Pure: every decision takes ``now``.
"""

from __future__ import annotations

from dataclasses import dataclass, field

from server.settings import Settings

CLOSE_RATE_LIMITED = 4429
"""Close code for a client that sent more than its message budget."""

_NEGOTIATION_STARTS = frozenset({"webrtc.offer", "webrtc.answer"})
# Messages a well-behaved client sends rarely get a smaller bucket than the default.
_RARE = frozenset({"webrtc.offer", "webrtc.answer", "risk.warning_shown", "media.state"})


@dataclass
class TokenBucket:
    burst: float
    per_s: float
    tokens: float = -1.0
    at: float = 0.0

    def take(self, now: float) -> bool:
        if self.tokens < 0:
            self.tokens, self.at = self.burst, now
        self.tokens = min(self.burst, self.tokens + (now - self.at) * self.per_s)
        self.at = now
        if self.tokens < 1:
            return False
        self.tokens -= 1
        return True


@dataclass
class MessageBudget:
    burst: int
    per_s: float
    ice_per_negotiation: int
    _buckets: dict[str, TokenBucket] = field(default_factory=dict)
    _ice: int = 0

    @classmethod
    def from_settings(cls, settings: Settings) -> MessageBudget:
        return cls(
            settings.ws_message_burst, settings.ws_message_per_s, settings.ws_ice_per_negotiation
        )

    def admit(self, kind: str, now: float) -> str | None:
        """None if this message is within budget; else why it is not."""
        bucket = self._buckets.get(kind[:40])
        if bucket is None:
            if len(self._buckets) >= 32:  # unknown types share one bucket
                kind = "other"
            rare = kind in _RARE
            bucket = self._buckets.setdefault(
                kind[:40],
                TokenBucket(
                    burst=max(1, self.burst // 4) if rare else self.burst,
                    per_s=self.per_s / 4 if rare else self.per_s,
                ),
            )
        if not bucket.take(now):
            return f"too many {kind[:40]} messages"
        if kind in _NEGOTIATION_STARTS:
            self._ice = 0
        elif kind == "webrtc.ice":
            self._ice += 1
            if self._ice > self.ice_per_negotiation:
                return f"more than {self.ice_per_negotiation} ICE candidates in one negotiation"
        return None
