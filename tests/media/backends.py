"""Both media node backends, built the same way for the media contract suite.

``aiortc`` is :class:`signaling.media.node.MediaNode` in this process; ``janus``
is :class:`server.media.janus.node.JanusMediaNode` driving a private Debian
``janus`` started on loopback with free ports (a missing ``janus`` fails the
test: ``make test`` installs it).
"""

from __future__ import annotations

import secrets
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from typing import Any

from server.media.janus.config import JanusOptions
from server.media.janus.connection import JanusLink
from server.media.janus.node import JanusMediaNode
from signaling.media.interface import MediaNodeBackend
from signaling.media.node import MediaNode
from signaling.media.tap import MediaTapFactory

BACKENDS = ("aiortc", "janus")


def janus_link() -> JanusLink:
    secret = secrets.token_hex(16)
    return JanusLink(url=None, api_secret=secret, options=JanusOptions(api_secret=secret))


@asynccontextmanager
async def media_node(
    backend: str, send: Any, taps: MediaTapFactory | None = None, *, node_id: str = "n1"
) -> AsyncIterator[MediaNodeBackend]:
    node: MediaNodeBackend
    if backend == "aiortc":
        node = MediaNode(node_id, send, lambda call_id: [], taps)
    elif backend == "janus":
        node = JanusMediaNode(node_id, send, lambda call_id: [], taps, 50, link=janus_link())
    else:
        raise ValueError(backend)
    await node.start()
    try:
        yield node
    finally:
        await node.close()
