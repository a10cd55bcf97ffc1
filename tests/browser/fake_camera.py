"""A camera with a face for Chromium's fake capture device, written at test time.

Chromium plays a Y4M file as its camera (``--use-file-for-fake-video-capture``),
looping it at the frame rate its header names. Without one it paints a test
pattern with no face, which the video analysis rightly calls suspect
(``face_absent``). The clip written here shows what the analysis expects of a
live customer: a softly lit room whose light drifts, fresh sensor noise in every
frame, and one face that sways and drifts as a seated person does (a bounded
random walk, never periodic).

The face is the same as tests/integrity's synthetic camera: a crop of
``skimage.data.astronaut()`` (Eileen Collins, NASA photograph, public domain,
shipped by scikit-image), so nothing is downloaded and no media file is
committed.

The clip loops, so it is longer than the loop detector's history
(``integrity_loop_history_s``, 30 s by default, plus a run's length): a replay
of the whole file then lies beyond what the detector compares against, as a
customer's own movements a minute apart do. Frame timing is Chromium's own:
its file device stamps each frame with the moment its capture task ran.
"""

from __future__ import annotations

from pathlib import Path

import cv2
import numpy as np

from tests.integrity.sources import face_image

WIDTH, HEIGHT, FPS = 320, 240, 12
SECONDS = 45.0  # > the loop history (30 s) + a run (12 samples at 3/s): see above


def _frames(width: int, height: int, fps: int, seconds: float, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    face = face_image(width * 2 // 5)
    fh, fw = face.shape[:2]
    y, x = np.mgrid[0:height, 0:width]
    room = np.stack([x * 0.3 + 60, y * 0.3 + 70, (x + y) * 0.15 + 80], axis=-1).astype(np.float32)
    sway_x = sway_y = drift = lean = 0.0
    frames = []
    for _ in range(round(seconds * fps)):
        # The room's light drifts slowly and irregularly (clouds, a screen nearby).
        drift = 0.98 * drift + float(rng.normal(0.0, 0.6))
        image = room + drift + rng.normal(0.0, 2.5, room.shape).astype(np.float32)
        # A seated person's small movements: bounded random walks in x and y, and a
        # slower lean that wanders over seconds (no period: nothing repeats in the clip).
        sway_x = 0.92 * sway_x + float(rng.normal(0.0, 1.4))
        sway_y = 0.9 * sway_y + float(rng.normal(0.0, 0.8))
        lean = 0.99 * lean + float(rng.normal(0.0, 0.7))
        left = int(np.clip((width - fw) // 2 + sway_x + lean, 0, width - fw))
        top = int(np.clip(20 + sway_y, 0, height - fh))
        image[top : top + fh, left : left + fw] = face + rng.normal(0.0, 2.0, face.shape)
        frames.append(np.clip(image, 0, 255).astype(np.uint8))
    return frames


def write_clip(
    path: Path,
    *,
    width: int = WIDTH,
    height: int = HEIGHT,
    fps: int = FPS,
    seconds: float = SECONDS,
    seed: int = 7,
) -> Path:
    """Write the clip as Y4M (4:2:0, the format Chromium's file device reads)."""
    with path.open("wb") as out:
        out.write(f"YUV4MPEG2 W{width} H{height} F{fps}:1 Ip A1:1 C420jpeg\n".encode())
        for rgb in _frames(width, height, fps, seconds, seed):
            out.write(b"FRAME\n")
            out.write(cv2.cvtColor(rgb, cv2.COLOR_RGB2YUV_I420).tobytes())
    return path
