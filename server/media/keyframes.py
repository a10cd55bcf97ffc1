"""The media node's keyframe requests, as its taps see them.

The node and its taps need each other: the taps (recorder, analyser) are built
into the node, and ask it for keyframes. The line is made first and given to the
taps' constructors; the :class:`~server.media.nodes.NodeHost` that builds the node
connects the node to it, once, in its own constructor. Before that, or without a
node in this process, a request is a no-op (a segment then ends at the next
keyframe the sender sends anyway).
"""

from __future__ import annotations

from typing import Protocol

from signaling.media.tap import Party


class KeyframeSource(Protocol):
    def request_keyframe(self, call_id: str, party: Party) -> None: ...


class KeyframeLine:
    """``line(call_id, party)`` asks the connected node for the party's keyframe."""

    def __init__(self) -> None:
        self._node: KeyframeSource | None = None

    def connect(self, node: KeyframeSource) -> None:
        if self._node is not None:
            raise RuntimeError("the keyframe line is already connected to a media node")
        self._node = node

    def __call__(self, call_id: str, party: Party) -> None:
        if self._node is not None:
            self._node.request_keyframe(call_id, party)
