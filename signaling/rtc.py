"""Bridge from the wire's ``ice_servers`` to aiortc's configuration objects.

Kept apart from the pure modules so that importing :mod:`signaling` does not
load aiortc. Only this module (and the media code that uses it) needs aiortc.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from aiortc import RTCConfiguration, RTCIceServer

from signaling.messages import IceServer

__all__ = ["rtc_configuration", "rtc_ice_servers"]


def rtc_ice_servers(servers: Iterable[IceServer | Mapping[str, Any]]) -> list[RTCIceServer]:
    """Convert ``ice_servers`` entries (models or their JSON form) to aiortc objects."""
    result: list[RTCIceServer] = []
    for server in servers:
        model = server if isinstance(server, IceServer) else IceServer.model_validate(server)
        result.append(
            RTCIceServer(
                urls=list(model.urls), username=model.username, credential=model.credential
            )
        )
    return result


def rtc_configuration(servers: Iterable[IceServer | Mapping[str, Any]]) -> RTCConfiguration:
    """An ``RTCConfiguration`` with exactly these ICE servers.

    Always passes a list, even an empty one: aiortc treats ``iceServers=None``
    as "use Google's public STUN server", which the product must never do.
    """
    return RTCConfiguration(iceServers=rtc_ice_servers(servers))
