"""Media node cost: N concurrent 1:1 calls relayed without transcoding, against
the same calls peer to peer (floor) and through a decode-and-re-encode relay.

Each call is a desk and an app (aiortc, in this process) sending PRE-ENCODED
media: a 640x480 VP8 clip at 30 fps and about 800 kb/s, and Opus, both encoded
once with PyAV at start-up and then sent as ``av.Packet``s, so that the
clients' own encoding does not hide the node's cost. The clients do not decode
either: they count the encoded frames they receive (``signaling.media.passthrough``).

The node runs in its own process (``bench/_relay_node.py``), reached over a
loopback WebSocket carrying the contract's ``webrtc.*`` messages; its CPU time
is read from the OS (psutil) over the measured window. Three runs, same clients:

- ``p2p``: desk and app connected directly, the node process only passing their
  signaling on, as in ``direct`` mode (the floor: no media through the node);
- ``relay``: through :class:`signaling.media.node.MediaNode` (forwarding), every
  call recorded by the real write path (``bench/_bench_taps.py``);
- ``transcode``: through a node that uses aiortc's ``MediaRelay`` and lets
  aiortc decode and re-encode every frame (what a naive relay does).

Figures: node CPU per call-second, calls per core, delivered video fps per
leg, added one-way latency (video frame sent to received, matched by content,
minus the p2p figure), set-up time (desk's offer to first video frame at both
ends). Targets: >= 25 relayed calls per core (<= 40 ms CPU per call-second),
>= 5x the transcoding relay, delivered fps >= 95 % of the source, set-up <=
1.5x peer to peer.

    .venv/bin/python bench/relay.py [--calls 4] [--seconds 10]

With ``--backend janus`` the runs are ``p2p``, ``relay-recorded`` (the aiortc
node, every call recorded), ``janus`` (a private Janus bridging NoSIP legs,
the node relaying their plain RTP and recording every call the same way) and
``janus-srtp`` (the same with SDES-SRTP on those plain legs, as when Janus is on
another host); CPU
is split into Janus's process, the node's event-loop thread (aiortc, or the RTP
relay and depacketising for Janus) and the recorder's writer threads. Targets:
Janus <= 10 ms CPU per call-second, recorder <= 10 ms, the whole recorded call
>= 4x cheaper than through the aiortc node.

    .venv/bin/python bench/relay.py --backend janus [--calls 8] [--seconds 10]
"""

from __future__ import annotations

import argparse
import asyncio
import fractions
import hashlib
import json
import math
import os
import statistics
import subprocess
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import aiohttp
import av
import numpy as np
import psutil
from aiortc import MediaStreamTrack, RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from signaling.media.passthrough import divert_receiver, on_keyframe_request  # noqa: E402
from signaling.rtc import rtc_configuration  # noqa: E402

FPS = 30
WIDTH, HEIGHT = 640, 480
VIDEO_BITRATE = 800_000
CLIP_FRAMES = 90  # 3 s, looped: one keyframe per loop
AUDIO_PTIME = 0.020


# --------------------------------------------------------------------------- the clip


def encode_clip() -> tuple[list[bytes], list[bytes]]:
    """(VP8 frames, Opus packets): encoded once, sent many times."""
    video = av.CodecContext.create("libvpx", "w")
    video.width, video.height, video.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    video.bit_rate = VIDEO_BITRATE
    video.framerate = fractions.Fraction(FPS, 1)
    video.time_base = fractions.Fraction(1, FPS)
    video.gop_size = CLIP_FRAMES
    video.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    y, x = np.mgrid[0:HEIGHT, 0:WIDTH]
    base = np.stack([x * 255 // WIDTH, y * 255 // HEIGHT, (x + y) * 255 // 1120], -1).astype(
        np.uint8
    )
    frames: list[bytes] = []
    for index in range(CLIP_FRAMES):
        image = np.roll(base, index * 8, axis=1)
        top, left = (index * 4) % (HEIGHT - 120), (index * 6) % (WIDTH - 120)
        image[top : top + 120, left : left + 120] = 255
        frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
        frame.pts = index
        frames += [bytes(p) for p in video.encode(frame)]
    frames += [bytes(p) for p in video.encode(None)]
    audio = av.CodecContext.create("libopus", "w")
    audio.sample_rate, audio.format, audio.layout = 48_000, "s16", "mono"
    audio.bit_rate = 32_000
    packets: list[bytes] = []
    samples = 960
    for index in range(50):
        t = (np.arange(samples) + index * samples) / 48_000
        tone = (8000 * np.sin(2 * math.pi * 440 * t)).astype(np.int16).reshape(1, -1)
        chunk = av.AudioFrame.from_ndarray(tone, format="s16", layout="mono")
        chunk.sample_rate, chunk.pts = 48_000, index * samples
        packets += [bytes(p) for p in audio.encode(chunk)]
    return frames[:CLIP_FRAMES], packets


class PacketTrack(MediaStreamTrack):
    """Sends a looped list of encoded frames on the wall clock (``av.Packet``s)."""

    def __init__(self, kind: str, chunks: list[bytes], sent: dict[bytes, float]) -> None:
        super().__init__()
        self.kind = kind
        self._chunks = chunks
        self._interval = 1 / FPS if kind == "video" else AUDIO_PTIME
        self._ticks = 90_000 // FPS if kind == "video" else 960
        self._time_base = fractions.Fraction(1, 90_000 if kind == "video" else 48_000)
        self._sent = sent
        self._start: float | None = None
        self._index = 0
        self._offset = 0  # where in the clip the next frame comes from
        self.keyframe_wanted = False

    def want_keyframe(self) -> None:
        """A receiver asked for a keyframe: a real encoder sends one; the clip restarts."""
        self.keyframe_wanted = True

    async def recv(self) -> av.Packet:
        if self.readyState != "live":
            raise MediaStreamError
        if self._start is None:
            self._start = time.monotonic()
        due = self._start + self._index * self._interval
        if due > time.monotonic():
            await asyncio.sleep(due - time.monotonic())
        if self.keyframe_wanted:
            self.keyframe_wanted = False
            self._offset = -self._index % len(self._chunks)
        data = self._chunks[(self._index + self._offset) % len(self._chunks)]
        packet = av.Packet(data)
        packet.pts, packet.time_base = self._index * self._ticks, self._time_base
        self._index += 1
        if self.kind == "video":
            self._sent[_digest(data)] = time.monotonic()
        return packet


def _digest(data: bytes) -> bytes:
    return hashlib.blake2b(data, digest_size=8).digest()


# --------------------------------------------------------------------------- clients


@dataclass
class Leg:
    """What one client received."""

    video: list[float] = field(default_factory=list)  # arrival times
    latency: list[float] = field(default_factory=list)
    first_video: float | None = None


class BenchPeer:
    """A desk (offerer) or app (answerer) with pre-encoded tracks and counting receivers."""

    def __init__(
        self,
        role: str,
        clip: tuple[list[bytes], list[bytes]],
        sent: dict[bytes, float],
        peer_sent: dict[bytes, float],
    ) -> None:
        self.role = role
        self.pc = RTCPeerConnection(rtc_configuration([]))
        self.leg = Leg()
        self._peer_sent = peer_sent
        self._tracks = [PacketTrack("video", clip[0], sent), PacketTrack("audio", clip[1], sent)]
        if role == "offerer":
            for track in self._tracks:
                transceiver = self.pc.addTransceiver(track, direction="sendrecv")
                self._divert(transceiver)
                on_keyframe_request(transceiver.sender, track.want_keyframe)

    def _divert(self, transceiver: Any) -> None:
        kind = transceiver.kind

        def on_frame(codec: Any, frame: Any) -> None:
            if kind != "video":
                return
            now = time.monotonic()
            if self.leg.first_video is None:
                self.leg.first_video = now
            self.leg.video.append(now)
            sent = self._peer_sent.get(_digest(frame.data))
            if sent is not None:
                self.leg.latency.append(now - sent)

        divert_receiver(transceiver.receiver, kind, on_frame)

    async def offer(self) -> str:
        await self.pc.setLocalDescription(await self.pc.createOffer())
        return str(self.pc.localDescription.sdp)

    async def answer(self, offer: str) -> str:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=offer, type="offer"))
        for transceiver in self.pc.getTransceivers():
            self._divert(transceiver)
        for track in self._tracks:
            on_keyframe_request(self.pc.addTrack(track), track.want_keyframe)
        await self.pc.setLocalDescription(await self.pc.createAnswer())
        return str(self.pc.localDescription.sdp)

    async def accept(self, answer: str) -> None:
        await self.pc.setRemoteDescription(RTCSessionDescription(sdp=answer, type="answer"))

    async def close(self) -> None:
        await self.pc.close()


@dataclass
class Call:
    desk: BenchPeer
    app: BenchPeer
    started: float = 0.0

    def setup_s(self) -> float | None:
        firsts = [self.desk.leg.first_video, self.app.leg.first_video]
        return None if None in firsts else max(firsts) - self.started  # type: ignore[type-var]


def make_call(clip: tuple[list[bytes], list[bytes]]) -> Call:
    desk_sent: dict[bytes, float] = {}
    app_sent: dict[bytes, float] = {}
    return Call(
        BenchPeer("offerer", clip, desk_sent, app_sent),
        BenchPeer("answerer", clip, app_sent, desk_sent),
    )


# --------------------------------------------------------------------------- runs


@dataclass
class Result:
    name: str
    cpu_ms_per_call_s: float | None
    fps: list[float]
    latency_ms: float | None
    setup_s: list[float]
    missing: int
    # CPU ms per call-second by part: "janus", "loop" (node main thread), "recorder".
    parts: dict[str, float] = field(default_factory=dict)


async def run_node(mode: str, clip: Any, calls: int, seconds: float) -> Result:
    process = await asyncio.create_subprocess_exec(
        sys.executable,
        str(Path(__file__).with_name("_relay_node.py")),
        "direct" if mode == "p2p" else mode,
        stdout=subprocess.PIPE,
        cwd=ROOT,
    )
    try:
        assert process.stdout is not None
        line = await process.stdout.readline()
        while line and not line.strip().isdigit():  # the node's log lines come first
            line = await process.stdout.readline()
        port = int(line)
        pairs = {f"c{i}": make_call(clip) for i in range(calls)}
        async with (
            aiohttp.ClientSession() as http,
            http.ws_connect(f"http://127.0.0.1:{port}/") as ws,
        ):

            async def read() -> None:
                async for msg in ws:
                    data = json.loads(msg.data)
                    call, message = pairs[data["call_id"]], data["message"]
                    if message["type"] == "webrtc.offer":
                        answer = await call.app.answer(message["sdp"])
                        await ws.send_json(
                            {
                                "call_id": data["call_id"],
                                "party": "customer",
                                "message": {
                                    "type": "webrtc.answer",
                                    "call_id": data["call_id"],
                                    "sdp": answer,
                                },
                            }
                        )
                    elif message["type"] == "webrtc.answer":
                        await call.desk.accept(message["sdp"])

            reader = asyncio.create_task(read())
            for call_id, call in pairs.items():
                call.started = time.monotonic()
                offer = await call.desk.offer()
                await ws.send_json(
                    {
                        "call_id": call_id,
                        "party": "specialist",
                        "message": {"type": "webrtc.offer", "call_id": call_id, "sdp": offer},
                    }
                )
            result = await measure(mode, list(pairs.values()), seconds, psutil.Process(process.pid))
            reader.cancel()
            return result
    finally:
        process.terminate()
        await asyncio.wait_for(process.wait(), timeout=20)


async def measure(
    name: str, calls: list[Call], seconds: float, node: psutil.Process | None
) -> Result:
    deadline = time.monotonic() + 20
    while any(c.setup_s() is None for c in calls) and time.monotonic() < deadline:  # noqa: ASYNC110
        await asyncio.sleep(0.05)
    await asyncio.sleep(1.0)  # settle
    start = time.monotonic()
    cpu0 = sum(node.cpu_times()[:2]) if node else 0.0
    parts0 = cpu_parts(node) if node else {}
    await asyncio.sleep(seconds)
    cpu1 = sum(node.cpu_times()[:2]) if node else 0.0
    parts1 = cpu_parts(node) if node else {}
    end = time.monotonic()
    fps: list[float] = []
    latency: list[float] = []
    for call in calls:
        for leg in (call.desk.leg, call.app.leg):
            fps.append(sum(1 for t in leg.video if start <= t < end) / (end - start))
            latency += leg.latency[-int(seconds * FPS) :]
    setups = [s for s in (c.setup_s() for c in calls) if s is not None]
    for call in calls:
        await call.desk.close()
        await call.app.close()
    per_call_s = 1000 / (len(calls) * (end - start))
    parts = {k: (parts1[k] - parts0.get(k, 0.0)) * per_call_s for k in parts1}
    total = (cpu1 - cpu0) + (parts1.get("janus", 0.0) - parts0.get("janus", 0.0))
    return Result(
        name,
        total * per_call_s if node else None,
        fps,
        statistics.median(latency) * 1000 if latency else None,
        setups,
        len(calls) - len(setups),
        parts,
    )


def cpu_parts(node: psutil.Process) -> dict[str, float]:
    """CPU seconds so far: the node's main thread (the event loop), its RTP thread
    (the Janus node's packet pump), its other threads (the recorder's writers), and
    its child processes (a private Janus)."""
    loop = rtp = others = 0.0
    for thread in node.threads():
        used = thread.user_time + thread.system_time
        if thread.id == node.pid:
            loop += used
        elif _thread_name(node.pid, thread.id) == "janus-rtp":
            rtp += used
        else:
            others += used
    janus = 0.0
    for child in node.children(recursive=True):
        try:
            janus += sum(child.cpu_times()[:2])
        except psutil.NoSuchProcess:
            continue
    return {"loop": loop, "rtp": rtp, "recorder": others, "janus": janus}


def _thread_name(pid: int, tid: int) -> str:
    try:
        return Path(f"/proc/{pid}/task/{tid}/comm").read_text().strip()
    except OSError:
        return ""


def report(results: dict[str, Result], calls: int, seconds: float) -> None:
    load = os.getloadavg()
    print(
        f"\nbench/relay.py: {calls} calls x {seconds:.0f} s, {WIDTH}x{HEIGHT} VP8 "
        f"{VIDEO_BITRATE // 1000} kb/s {FPS} fps + Opus; {psutil.cpu_count()} cores, "
        f"load average before/after {load[0]:.2f}"
    )
    print(
        f"{'run':<10} {'node CPU ms/call-s':>19} {'calls/core':>11} {'fps/leg min/med':>16} "
        f"{'latency ms':>11} {'set-up med s':>13} {'no media':>9}"
    )
    for r in results.values():
        cpu = f"{r.cpu_ms_per_call_s:.1f}" if r.cpu_ms_per_call_s is not None else "-"
        per_core = f"{1000 / r.cpu_ms_per_call_s:.1f}" if r.cpu_ms_per_call_s else "-"
        fps = f"{min(r.fps):.1f}/{statistics.median(r.fps):.1f}" if r.fps else "-"
        lat = f"{r.latency_ms:.1f}" if r.latency_ms is not None else "-"
        setup = f"{statistics.median(r.setup_s):.3f}" if r.setup_s else "-"
        print(
            f"{r.name:<10} {cpu:>19} {per_core:>11} {fps:>16} {lat:>11} {setup:>13} {r.missing:>9}"
        )

    def verdict(ok: bool) -> str:
        if not ok:
            MISSED.append(1)
        return "met" if ok else "missed"

    if "janus" in results:
        from bench._janus_report import report_backends

        report_backends(results, FPS, verdict)
        return
    relay, floor, naive = results["relay"], results["p2p"], results["transcode"]
    print(
        f"relay CPU by part, ms per call-second: node loop {relay.parts.get('loop', 0.0):.1f}, "
        f"recorder writer threads {relay.parts.get('recorder', 0.0):.1f}"
    )

    if relay.cpu_ms_per_call_s and relay.fps:
        # CPU per call-second counts only if the calls got their frames; a starved
        # node delivers fewer, so then the figure is scaled up to the full rate.
        delivered = min(1.0, statistics.mean(relay.fps) / FPS)
        cost = relay.cpu_ms_per_call_s / delivered
        per_core = 1000 / cost
        scaled = "" if delivered >= 0.95 else f", scaled from {delivered:.0%} of frames delivered"
        print(
            f"relayed and recorded calls per core: {per_core:.1f} ({cost:.1f} ms CPU per "
            f"call-second{scaled}; "
            f"target >= 25, ratio {per_core / 25:.2f}x): {verdict(per_core >= 25)}"
        )
        if naive.cpu_ms_per_call_s and naive.fps and relay.fps:
            # A saturated transcoding relay delivers fewer frames, which makes its CPU
            # per call-second look cheaper than it is: compare CPU per delivered frame.
            relay_per_frame = relay.cpu_ms_per_call_s / statistics.mean(relay.fps)
            naive_per_frame = naive.cpu_ms_per_call_s / statistics.mean(naive.fps)
            ratio = naive_per_frame / relay_per_frame
            raw = naive.cpu_ms_per_call_s / relay.cpu_ms_per_call_s
            print(
                f"vs transcoding relay: {ratio:.1f}x less CPU per delivered frame "
                f"({raw:.1f}x per call-second; transcoding at {statistics.mean(naive.fps):.1f} "
                f"fps, relay at {statistics.mean(relay.fps):.1f}) (target >= 5x): "
                f"{verdict(ratio >= 5)}"
            )

    if relay.fps:
        worst = min(relay.fps) / FPS
        print(
            f"delivered fps, worst leg: {min(relay.fps):.1f} of {FPS} = {worst:.0%} "
            f"(target >= 95%): {verdict(worst >= 0.95)}"
            f"; transcoding relay worst leg {min(naive.fps) if naive.fps else 0:.1f}"
        )
    if relay.latency_ms is not None and floor.latency_ms is not None:
        print(
            f"one-way video latency: relay {relay.latency_ms:.1f} ms, "
            f"p2p {floor.latency_ms:.1f} ms, added {relay.latency_ms - floor.latency_ms:.1f} ms"
        )
    if relay.setup_s and floor.setup_s:
        ratio = statistics.median(relay.setup_s) / statistics.median(floor.setup_s)
        print(
            f"set-up: relay {statistics.median(relay.setup_s):.3f} s, p2p "
            f"{statistics.median(floor.setup_s):.3f} s, ratio {ratio:.2f}x (target <= 1.5x): "
            f"{verdict(ratio <= 1.5)}"
        )


async def main(calls: int, seconds: float, backend: str = "aiortc") -> None:
    clip = encode_clip()
    kbps = sum(map(len, clip[0])) * 8 * FPS / len(clip[0]) / 1000
    print(
        f"clip: {len(clip[0])} VP8 frames ({kbps:.0f} kb/s), {len(clip[1])} Opus packets",
        flush=True,
    )
    results: dict[str, Result] = {}
    runs = ("p2p", "relay", "transcode")
    if backend == "janus":
        runs = ("p2p", "relay-recorded", "janus", "janus-srtp")
    for name in runs:
        # p2p: the node process only passes signaling on (media mode "direct").
        started = time.monotonic()
        results[name] = await run_node(name, clip, calls, seconds)
        print(f"  {name}: done in {time.monotonic() - started:.1f} s", flush=True)
    report(results, calls, seconds)


# One entry per target missed in this run: the exit status says whether any was.
MISSED: list[int] = []

if __name__ == "__main__":
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--calls", type=int, default=4)
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--backend", choices=("aiortc", "janus"), default="aiortc")
    args = parser.parse_args()
    asyncio.run(main(args.calls, args.seconds, args.backend))
    sys.exit(1 if MISSED else 0)
