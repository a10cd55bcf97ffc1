"""Helpers of the recorder tests (imported by tests here and elsewhere; fixtures
are in conftest.py): settings for recording, key pairs, feeding a call's frames."""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from cryptography.hazmat.primitives import serialization

from server.recordings.service import RecordingService
from server.settings import Settings
from signaling.media.tap import EncodedFrame

CALL_SECONDS = 12.0


@dataclass(frozen=True)
class KeyPair:
    public_pem: str
    private_path: Path


def write_pair(folder: Path, private: Any, name: str) -> KeyPair:
    private_pem = private.private_bytes(
        serialization.Encoding.PEM,
        serialization.PrivateFormat.PKCS8,
        serialization.NoEncryption(),
    )
    public_pem = private.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    path = folder / f"{name}.pem"
    path.write_bytes(private_pem)
    return KeyPair(public_pem.decode(), path)


# Recording applies with media through the relay, the settings' default; the
# helpers below also say so explicitly.
RelaySettings = Settings


def recording_settings(tmp_path: Path, database_url: str, **overrides: Any) -> RelaySettings:
    values: dict[str, Any] = {
        "dev_mode": True,
        "database_url": database_url,
        "recording_dir": str(tmp_path / "recordings"),
        "recording_spool_dir": str(tmp_path / "spool"),
        "recording_queue_frames": 5000,
        "log_level": "WARNING",
        "node_id": "node-a",
        "media_mode": "relay",
        **overrides,
    }
    return RelaySettings(**values)


async def record_call(
    service: RecordingService, call_id: str, frames: list[EncodedFrame], *, close: bool = True
) -> float:
    """Feed a whole call's frames through the tap (as the relay would), then close it."""
    started_at = time.time() - CALL_SECONDS - 1
    tap = await service.open(call_id, started_at=started_at)
    for frame in frames:
        tap.write(_at(frame, started_at))
    if close:
        await service.close_call(call_id)
    assert tap.healthy
    return started_at


def _at(frame: EncodedFrame, started_at: float) -> EncodedFrame:
    return replace(frame, arrival=frame.arrival + started_at)
