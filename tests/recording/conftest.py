"""Fixtures for recorder tests: a migrated database, real key pairs, real encoded media."""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa, x25519

from server.recordings.service import RecordingService
from server.settings import Settings
from signaling.media.tap import EncodedFrame
from tests.api.harness import clone_sqlite, prepare_template
from tests.conftest import _run_async
from tests.recording.media import call_media

CALL_SECONDS = 12.0


@pytest.fixture(scope="session")
def recording_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recording-template") / "template.db"
    _run_async(prepare_template(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def media() -> list[EncodedFrame]:
    """Twelve seconds of both parties' VP8 and Opus, arrivals starting at 0."""
    return call_media(CALL_SECONDS, 0.0)


@dataclass(frozen=True)
class KeyPair:
    public_pem: str
    private_path: Path


def _write_pair(folder: Path, private: Any, name: str) -> KeyPair:
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


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    folder = tmp_path_factory.mktemp("rsa")
    return _write_pair(folder, rsa.generate_private_key(public_exponent=65537, key_size=2048), "r")


@pytest.fixture(scope="session")
def x25519_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return _write_pair(tmp_path_factory.mktemp("x25519"), x25519.X25519PrivateKey.generate(), "x")


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


@pytest.fixture
def database_url(recording_template: Path, tmp_path: Path) -> str:
    return clone_sqlite(recording_template, tmp_path / "cb.db")


@pytest.fixture
def settings(tmp_path: Path, database_url: str, rsa_keys: KeyPair) -> RelaySettings:
    return recording_settings(tmp_path, database_url, recording_public_key=rsa_keys.public_pem)


@pytest.fixture
async def service(settings: RelaySettings) -> AsyncIterator[RecordingService]:
    from server.db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    recordings = RecordingService(settings, make_sessionmaker(engine))
    await recordings.start()
    try:
        yield recordings
    finally:
        await recordings.stop()
        await engine.dispose()


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
    from dataclasses import replace

    return replace(frame, arrival=frame.arrival + started_at)
