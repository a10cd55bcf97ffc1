"""The Janus media backend: calls bridged by a Janus gateway (NoSIP plugin), recorded by us.

- :mod:`.config` writes a Janus configuration (only the NoSIP plugin and the
  WebSocket transport, no admin API, the API secret and ICE settings from ours);
- :mod:`.process` starts and watches a private Janus when no URL is configured;
- :mod:`.client` speaks Janus's WebSocket API (transactions, timeouts, keep-alives);
- :mod:`.sdp` reads and writes the plain SDP NoSIP exchanges for each leg;
- :mod:`.rtp` carries each leg's plain RTP between the two legs and to the taps;
- :mod:`.node` is the media node itself, behind :class:`signaling.media.node.MediaNodeBackend`.
"""
