"""Synthetic customer cameras for the integrity tests: aiortc video tracks.

:class:`SyntheticCamera` is a live camera: a softly lit room whose light
drifts, sensor noise in every frame, zero, one or two faces swaying a little,
and capture timestamps that jitter like a real camera's (a webcam's frames do
not leave it at exact intervals). Its ``mode`` switches it, while it keeps
sending, to what the attacks look like: one repeated frame (``frozen``), a
3-second clip played again and again (``looped``), or timestamps on a perfect
metronome (``metronome``, like a file played out by a virtual camera). For the
liveness tests it can tint its picture (the screen's colour reflected on the
face) and move the face sideways (a head turn).

The face is a crop of ``skimage.data.astronaut()``: Eileen Collins, NASA
photograph, public domain (shipped by scikit-image).
"""

from __future__ import annotations

import asyncio
import fractions
import random
import time
from collections import deque
from typing import Any, Literal

import av
import cv2
import numpy as np
from aiortc import MediaStreamTrack
from aiortc.mediastreams import MediaStreamError

CLOCK = 90_000
Mode = Literal["live", "frozen", "looped", "metronome", "replay"]
TINTS = {"red": (60, -25, -25), "green": (-25, 60, -25), "blue": (-25, -25, 60)}


def face_image(size: int) -> np.ndarray:
    from skimage import data

    crop = data.astronaut()[20:260, 120:340]
    height = size * crop.shape[0] // crop.shape[1]
    return np.asarray(cv2.resize(crop, (size, height), interpolation=cv2.INTER_AREA))


class SyntheticCamera(MediaStreamTrack):
    kind = "video"

    def __init__(
        self,
        *,
        faces: int = 1,
        width: int = 320,
        height: int = 240,
        fps: float = 15.0,
        jitter_ms: float = 2.0,
        seed: int = 1,
    ) -> None:
        super().__init__()
        self.faces = faces
        self.width, self.height, self.fps = width, height, fps
        self.jitter_s = jitter_ms / 1000.0
        self.mode: Mode = "live"
        self.tint: str | None = None
        self.face_shift = 0.0  # fraction of the width the (first) face moves sideways
        self._rng = np.random.default_rng(seed)
        self._sway = [0.0, 0.0, 0.0, 0.0]
        self._jitter = random.Random(seed)
        self._face = face_image(width * 2 // 5)
        self._start: float | None = None
        self._index = 0
        self._metronome_pts = 0
        self._last: np.ndarray | None = None
        self._clip: deque[np.ndarray] = deque(maxlen=round(3 * fps))
        self._clip_pos = 0
        self._recent: deque[np.ndarray] = deque(maxlen=round(6 * fps))
        self._replay: list[np.ndarray] = []
        y, x = np.mgrid[0:height, 0:width]
        self._room = np.stack([x * 0.3 + 60, y * 0.3 + 70, (x + y) * 0.15 + 80], axis=-1).astype(
            np.float32
        )
        self._noise = self._rng.normal(0.0, 2.5, (32, height, width, 3)).astype(np.float32)

    def set_mode(self, mode: Mode) -> None:
        if mode == "looped":
            self._clip_pos = 0
        if mode == "replay":
            self._replay, self._clip_pos = list(self._recent), 0
        self.mode = mode

    def _picture(self, index: int, t: float) -> np.ndarray:
        drift = 8.0 * np.sin(t * 0.7)
        # Sensor noise, new in every frame (drawn from a bank: cheaper than fresh noise,
        # and a random pick per frame never repeats as a sequence).
        noise = self._noise[int(self._rng.integers(len(self._noise)))]
        image = self._room + drift + noise
        fh, fw = self._face.shape[:2]
        # A person's small movements: a bounded random walk, never periodic.
        self._sway = [0.9 * s + float(self._rng.normal(0.0, 1.2)) for s in self._sway]
        for n in range(self.faces):
            sway = int(self._sway[n])
            if self.faces == 1:
                left = (self.width - fw) // 2 + sway  # one face: in the middle, room to turn
            else:
                left = (16 if n == 0 else self.width - fw - 16) + sway
            if n == 0:
                left += int(self.face_shift * self.width)
            left = max(0, min(self.width - fw, left))
            top = max(0, min(self.height - fh, 20 + int(self._sway[n + 2] / 2)))
            image[top : top + fh, left : left + fw] = self._face
        if self.tint is not None:
            image = image + np.array(TINTS[self.tint])
        return np.clip(image, 0, 255).astype(np.uint8)

    async def recv(self) -> av.VideoFrame:
        if self.readyState != "live":
            raise MediaStreamError
        now = time.monotonic()
        if self._start is None:
            self._start = now
        else:
            self._index += 1
            due = self._start + self._index / self.fps + self._jitter.gauss(0.0, self.jitter_s)
            if due > now:
                await asyncio.sleep(due - now)
        captured = time.monotonic() - self._start
        if self.mode == "frozen" and self._last is not None:
            image = self._last
        elif self.mode == "looped" and len(self._clip) == self._clip.maxlen:
            image = self._clip[self._clip_pos % len(self._clip)]
            self._clip_pos += 1
        elif self.mode == "replay" and self._replay:
            image = self._replay[self._clip_pos % len(self._replay)]
            self._clip_pos += 1
        else:
            image = self._picture(self._index, captured)
            self._clip.append(image)
            self._recent.append(image)
        self._last = image
        frame = av.VideoFrame.from_ndarray(image, format="rgb24")
        if self.mode == "metronome":
            self._metronome_pts += round(CLOCK / self.fps)
            frame.pts = self._metronome_pts
        else:
            frame.pts = round(captured * CLOCK)
            self._metronome_pts = frame.pts
        frame.time_base = fractions.Fraction(1, CLOCK)
        return frame


async def follow(camera: SyntheticCamera, challenge: dict[str, Any]) -> None:
    """Do what a ``liveness.challenge`` asks, as the app and the customer would:
    the screen's colour shows on the face, the head turns the way the arrow says."""
    started = time.monotonic()
    for step in challenge["steps"]:
        due = started + float(step["at_s"]) - time.monotonic()
        if due > 0:
            await asyncio.sleep(due)
        if "colour" in step:
            camera.tint = str(step["colour"])
        else:
            camera.face_shift = -0.18 if step["direction"] == "left" else 0.18
        await asyncio.sleep(float(step["duration_s"]))
        camera.tint, camera.face_shift = None, 0.0
