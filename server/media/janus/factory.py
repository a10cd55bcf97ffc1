"""``CLOUDBRANCH_MEDIA_BACKEND``: which media node a media host runs.

``aiortc`` (the default) is :class:`signaling.media.node.MediaNode`; ``janus``
is :class:`.node.JanusMediaNode` driving the Janus at ``CLOUDBRANCH_JANUS_URL``
or, when that is unset, a private one it starts with a generated configuration.
"""

from __future__ import annotations

import ipaddress
import secrets
from collections.abc import Callable, Mapping, Sequence
from typing import Any
from urllib.parse import urlsplit

from server.settings import Settings
from signaling.media.bridge import Outbound
from signaling.media.interface import MediaNodeBackend, MediaNodeFactory
from signaling.media.node import MediaNode
from signaling.media.tap import MediaTapFactory

from .config import JanusOptions
from .connection import JanusLink
from .node import JanusMediaNode

__all__ = ["janus_options", "media_node_factory"]


def _stun_server(urls: Sequence[str]) -> tuple[str, int] | None:
    for url in urls:
        if url.startswith("stun:"):
            host, _, port = url[len("stun:") :].partition(":")
            return host, int(port or 3478)
    return None


def janus_options(settings: Settings, api_secret: str) -> JanusOptions:
    return JanusOptions(
        api_secret=api_secret,
        rtp_host=settings.janus_rtp_host,
        stun_server=_stun_server(settings.stun_urls),
        ice_enforce_list=tuple(settings.janus_ice_enforce_list),
    )


def media_node_factory(settings: Settings) -> MediaNodeFactory:
    if settings.media_backend == "aiortc":
        return MediaNode

    def janus_node(
        node_id: str,
        send: Outbound,
        ice_servers: Callable[[str], Sequence[Mapping[str, Any]]],
        taps: MediaTapFactory | None,
        capacity: int,
    ) -> MediaNodeBackend:
        given = settings.janus_api_secret
        secret = given.get_secret_value() if given is not None else secrets.token_urlsafe(32)
        if settings.janus_url is not None and urlsplit(settings.janus_url).scheme not in (
            "ws",
            "wss",
        ):
            raise ValueError("CLOUDBRANCH_JANUS_URL must be a ws:// or wss:// URL")
        link = JanusLink(
            url=settings.janus_url,
            api_secret=secret,
            options=janus_options(settings, secret),
            request_timeout_s=settings.janus_request_timeout_s,
            keepalive_s=settings.janus_keepalive_s,
        )
        return JanusMediaNode(
            node_id,
            send,
            ice_servers,
            taps,
            capacity,
            link=link,
            rtp_host=settings.janus_rtp_host,
            srtp=plain_srtp(settings.janus_plain_srtp, settings.janus_rtp_host),
        )

    return janus_node


def plain_srtp(setting: str, rtp_host: str) -> bool:
    """Whether the plain legs are SRTP: ``auto`` protects them unless they stay on
    loopback (a name, not an address, counts as off loopback)."""
    if setting != "auto":
        return setting == "on"
    try:
        return not ipaddress.ip_address(rtp_host).is_loopback
    except ValueError:
        return True
