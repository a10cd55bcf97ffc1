"""The node process of ``bench/relay.py``: one loopback WebSocket carrying
``{call_id, party, message}`` both ways, and behind it one of

- ``direct``: signaling only, passed to the other party (the peer-to-peer floor);
- ``relay``: :class:`signaling.media.node.MediaNode`, forwarding encoded media,
  every call recorded (``bench/_bench_taps.py``);
- ``transcode``: a naive relay, aiortc's ``MediaRelay`` decoding and re-encoding;
- ``relay-recorded``: the same as ``relay`` (the name the Janus comparison uses);
- ``janus``: :class:`server.media.janus.node.JanusMediaNode` driving a private
  Janus (a child process of this one), every call recorded the same way.

Prints its port on stdout, serves until SIGTERM. With ``BENCH_RELAY_PROFILE=PATH``
the event-loop thread runs under cProfile and its statistics go to ``PATH``
(``{mode}`` in it is replaced by the node's mode).

    .venv/bin/python bench/_relay_node.py relay
"""

from __future__ import annotations

import asyncio
import json
import os
import signal
import sys
from pathlib import Path
from typing import Any

from aiohttp import web
from aiortc import RTCPeerConnection, RTCSessionDescription

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))

from signaling.media.node import MediaNode
from signaling.rtc import rtc_configuration


class TranscodingBridge:
    """A naive relay: aiortc decodes each party's media and re-encodes it for the other."""

    def __init__(self, send: Any) -> None:
        from aiortc.contrib.media import MediaRelay

        self._relay = MediaRelay()
        self._send = send
        self.desk = RTCPeerConnection(rtc_configuration([]))
        self.app = RTCPeerConnection(rtc_configuration([]))

    async def on_offer(self, sdp: str) -> None:
        await self.desk.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="offer"))
        for transceiver in self.desk.getTransceivers():
            self.app.addTrack(self._relay.subscribe(transceiver.receiver.track))
        await self.app.setLocalDescription(await self.app.createOffer())
        await self._send("customer", {"type": "webrtc.offer", "sdp": self.app.localDescription.sdp})

    async def on_answer(self, sdp: str) -> None:
        await self.app.setRemoteDescription(RTCSessionDescription(sdp=sdp, type="answer"))
        for transceiver in self.app.getTransceivers():
            self.desk.addTrack(self._relay.subscribe(transceiver.receiver.track))
        await self.desk.setLocalDescription(await self.desk.createAnswer())
        await self._send(
            "specialist", {"type": "webrtc.answer", "sdp": self.desk.localDescription.sdp}
        )

    async def close(self) -> None:
        await self.desk.close()
        await self.app.close()


async def serve(mode: str) -> None:
    """The node process: one WebSocket, messages ``{call_id, party, message}`` both ways."""
    sockets: list[web.WebSocketResponse] = []

    async def send(call_id: str, party: str, message: dict[str, Any]) -> None:
        for ws in sockets:
            await ws.send_json({"call_id": call_id, "party": party, "message": message})

    from bench._bench_taps import WriterTaps

    # The figure is for relayed *and recorded* calls: "relay" records too.
    taps = WriterTaps() if mode in ("relay", "relay-recorded", "janus", "janus-srtp") else None
    node: Any
    if mode in ("janus", "janus-srtp"):
        import secrets

        from server.media.janus.config import JanusOptions
        from server.media.janus.connection import JanusLink
        from server.media.janus.node import JanusMediaNode

        secret = secrets.token_hex(16)
        link = JanusLink(url=None, api_secret=secret, options=JanusOptions(api_secret=secret))
        # "janus" as deployed beside its Janus (loopback: plain RTP between them);
        # "janus-srtp" with SDES-SRTP forced on, to show what that encryption costs.
        node = JanusMediaNode(
            "bench", send, lambda call_id: [], taps, 10_000, link=link, srtp=mode == "janus-srtp"
        )
        await node.start()
    else:
        node = MediaNode("bench", send, lambda call_id: [], taps, capacity=10_000)
    bridges: dict[str, TranscodingBridge] = {}
    tasks: set[asyncio.Task[None]] = set()

    async def handle(data: dict[str, Any]) -> None:
        call_id, message = data["call_id"], data["message"]
        if mode == "direct":
            # Signaling only, as in CLOUDBRANCH_MEDIA_MODE=direct: pass it to the other party.
            other = "customer" if data["party"] == "specialist" else "specialist"
            await send(call_id, other, message)
            return
        if mode in ("relay", "relay-recorded", "janus", "janus-srtp"):
            await node.signal(call_id, data["party"], message)
            return

        async def reply(party: str, body: dict[str, Any]) -> None:
            await send(call_id, party, {**body, "call_id": call_id})

        bridge = bridges.setdefault(call_id, TranscodingBridge(reply))
        if message["type"] == "webrtc.offer":
            await bridge.on_offer(message["sdp"])
        elif message["type"] == "webrtc.answer":
            await bridge.on_answer(message["sdp"])

    async def websocket(request: web.Request) -> web.WebSocketResponse:
        ws = web.WebSocketResponse()
        await ws.prepare(request)
        sockets.append(ws)
        async for msg in ws:
            # Calls are set up concurrently, as on a real node; each task is kept until done.
            task = asyncio.create_task(handle(json.loads(msg.data)))
            tasks.add(task)
            task.add_done_callback(tasks.discard)
        return ws

    app = web.Application()
    app.router.add_get("/", websocket)
    runner = web.AppRunner(app)
    await runner.setup()
    site = web.TCPSite(runner, "127.0.0.1", 0)
    await site.start()
    port = site._server.sockets[0].getsockname()[1]  # type: ignore[union-attr]
    print(port, flush=True)
    stop = asyncio.Event()
    asyncio.get_running_loop().add_signal_handler(signal.SIGTERM, stop.set)
    profile = None
    if os.environ.get("BENCH_RELAY_PROFILE"):
        import cProfile

        profile = cProfile.Profile()
        profile.enable()
    try:
        await stop.wait()
    finally:
        dropped = sum(
            track.dropped
            for call_id in (list(node._calls) if isinstance(node, MediaNode) else [])
            for party in ("customer", "specialist")
            if (bridge := node.bridge(call_id)) and (leg := bridge.leg(party))  # type: ignore[arg-type]
            for track in leg.outgoing.values()
        )
        print(f"node: {node.stats()}, packets not forwarded {dropped}", file=sys.stderr)
        if profile is not None:
            profile.disable()
            # "{mode}" in the path keeps each run's profile apart.
            profile.dump_stats(os.environ["BENCH_RELAY_PROFILE"].replace("{mode}", mode))
        await node.close()
        if taps is not None:
            taps.report()
        for bridge in bridges.values():
            await bridge.close()


if __name__ == "__main__":
    asyncio.run(serve(sys.argv[1]))
