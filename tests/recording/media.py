"""Real encoded media for recorder tests: VP8 video and Opus audio made with PyAV's
encoders, cut into EncodedFrames with RTP timestamps (random bases, as on the wire),
keyframes every second, and arrival times as a receiver would see them."""

from __future__ import annotations

import random
from dataclasses import replace
from fractions import Fraction

import av
import numpy as np

from signaling.media.tap import EncodedFrame, Party

FPS = 30
WIDTH, HEIGHT = 320, 240
OPUS_SAMPLES = 960  # 20 ms at 48 kHz


def _video(party: Party, seconds: float, start: float, base: int) -> list[EncodedFrame]:
    encoder = av.CodecContext.create("libvpx", "w")
    encoder.width, encoder.height, encoder.pix_fmt = WIDTH, HEIGHT, "yuv420p"
    encoder.time_base = Fraction(1, 90000)
    encoder.framerate = FPS
    encoder.gop_size = FPS
    encoder.thread_count = 1  # threads only contend on a loaded machine
    encoder.bit_rate = 800_000
    encoder.options = {"deadline": "realtime", "cpu-used": "8", "lag-in-frames": "0"}
    shade = 60 if party == "customer" else 180
    frames: list[EncodedFrame] = []
    count = round(seconds * FPS)
    for i in range(count + 1):
        if i < count:
            image = np.full((HEIGHT, WIDTH, 3), shade, dtype=np.uint8)
            x = (i * 4) % WIDTH
            image[:, x : x + 8] = 255  # a moving bar
            frame = av.VideoFrame.from_ndarray(image, format="rgb24").reformat(format="yuv420p")
            frame.pts, frame.time_base = i * 3000, encoder.time_base
            packets = encoder.encode(frame)
        else:
            packets = encoder.encode(None)
        for packet in packets:
            assert packet.pts is not None
            frames.append(
                EncodedFrame(
                    party=party,
                    kind="video",
                    codec="VP8",
                    data=bytes(packet),
                    timestamp=(base + packet.pts) & 0xFFFFFFFF,
                    clock_rate=90000,
                    keyframe=packet.is_keyframe,
                    arrival=start + packet.pts / 90000 + 0.03,
                )
            )
    return frames


def _audio(party: Party, seconds: float, start: float, base: int) -> list[EncodedFrame]:
    encoder = av.CodecContext.create("libopus", "w")
    encoder.sample_rate = 48000
    encoder.layout = "stereo"
    encoder.format = "s16"
    encoder.time_base = Fraction(1, 48000)
    encoder.bit_rate = 32000
    tone = 440 if party == "customer" else 660
    frames: list[EncodedFrame] = []
    count = round(seconds * 48000 / OPUS_SAMPLES)
    for i in range(count):
        t = (np.arange(OPUS_SAMPLES) + i * OPUS_SAMPLES) / 48000
        samples = (np.sin(2 * np.pi * tone * t) * 8000).astype(np.int16)
        audio = av.AudioFrame.from_ndarray(
            np.stack([samples, samples]).T.reshape(1, -1), format="s16", layout="stereo"
        )
        audio.sample_rate, audio.pts = 48000, i * OPUS_SAMPLES
        for packet in encoder.encode(audio):
            assert packet.pts is not None
            frames.append(
                EncodedFrame(
                    party=party,
                    kind="audio",
                    codec="opus",
                    data=bytes(packet),
                    timestamp=(base + packet.pts) & 0xFFFFFFFF,
                    clock_rate=48000,
                    keyframe=True,
                    arrival=start + packet.pts / 48000 + 0.02,
                )
            )
    return frames


def call_media(seconds: float, start: float, seed: int = 7) -> list[EncodedFrame]:
    """Both parties' audio and video for ``seconds``, in arrival order."""
    rng = random.Random(seed)
    frames: list[EncodedFrame] = []
    for party in ("customer", "specialist"):
        frames += _video(party, seconds, start, rng.randrange(1 << 32))
        frames += _audio(party, seconds, start, rng.randrange(1 << 32))
    return sorted(frames, key=lambda f: f.arrival)


def shifted(frames: list[EncodedFrame], by: float) -> list[EncodedFrame]:
    return [replace(f, arrival=f.arrival + by) for f in frames]
