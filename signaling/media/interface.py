"""The media node interface: what the server drives, whichever media engine carries the call.

Two implementations: :class:`signaling.media.node.MediaNode` (aiortc in this
process, the embedded default) and :class:`server.media.janus.node.JanusMediaNode`
(a Janus gateway that this node drives, the production option), selected with
``CLOUDBRANCH_MEDIA_BACKEND``. Both speak the clients' contract unchanged: the
desk offers and gets an answer, the app gets an offer and answers, candidates
trickle as ``webrtc.ice``, and a restart means new peer connections for both.
Both hand each party's media to the call's :class:`~signaling.media.tap.MediaTap`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol, runtime_checkable

from .bridge import Outbound
from .tap import MediaTapFactory, Party

__all__ = ["MediaNodeBackend", "MediaNodeFactory"]


@runtime_checkable
class MediaNodeBackend(Protocol):
    """One media node: the calls whose media it carries."""

    node_id: str
    capacity: int
    #: Called with the ids of calls whose media the node lost all at once (its
    #: media engine died); the host has them moved, with ``media.restart``.
    on_calls_lost: Callable[[list[str]], None] | None

    @property
    def load(self) -> int:
        """Calls carried now."""

    @property
    def healthy(self) -> bool:
        """False while the node cannot take calls (its media engine is down)."""

    async def start(self) -> None:
        """Bring up what the node needs (a private Janus, say) before its first call."""

    async def signal(self, call_id: str, party: Party, message: Mapping[str, Any]) -> None:
        """A party's ``webrtc.offer`` / ``webrtc.answer`` / ``webrtc.ice``; raises
        :class:`~signaling.media.bridge.BridgeRefused` when it cannot act on it."""

    async def restart(self, call_id: str) -> None:
        """Drop the call's legs: both parties are about to build new peer connections."""

    async def party_left(self, call_id: str, party: Party) -> None:
        """A party's socket dropped: its leg is useless until the restart."""

    async def close_call(self, call_id: str) -> None:
        """The call's conversation ended: close its legs and its tap."""

    def request_keyframe(self, call_id: str, party: Party) -> None:
        """Ask ``party``'s sender in that call for a keyframe (rate limited): the
        recorder's video segments and the integrity analyser start on one."""

    def stats(self) -> Any:
        """A :class:`~signaling.media.node.NodeStats`."""

    async def close(self) -> None:
        """Close every call's media; safe to call twice."""


class MediaNodeFactory(Protocol):
    def __call__(
        self,
        node_id: str,
        send: Outbound,
        ice_servers: Callable[[str], Sequence[Mapping[str, Any]]],
        taps: MediaTapFactory | None,
        capacity: int,
    ) -> MediaNodeBackend: ...
