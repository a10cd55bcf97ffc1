"""Fixtures for recorder tests: a migrated database, real key pairs, real encoded media.

The helpers (settings, key pairs, feeding a call) are in tests/recording/support.py;
they are imported here too, for tests that still import them from this file.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from cryptography.hazmat.primitives.asymmetric import rsa, x25519

from server.recordings.service import RecordingService
from signaling.media.tap import EncodedFrame
from tests.api.harness import clone_sqlite, prepare_template
from tests.plugin.databases import _run_async
from tests.recording.media import call_media
from tests.recording.support import CALL_SECONDS as CALL_SECONDS
from tests.recording.support import KeyPair as KeyPair
from tests.recording.support import RelaySettings as RelaySettings
from tests.recording.support import _at as _at
from tests.recording.support import record_call as record_call
from tests.recording.support import recording_settings as recording_settings
from tests.recording.support import write_pair


@pytest.fixture(scope="session")
def recording_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("recording-template") / "template.db"
    _run_async(prepare_template(f"sqlite+aiosqlite:///{path}"))
    return path


@pytest.fixture(scope="session")
def media() -> list[EncodedFrame]:
    """Twelve seconds of both parties' VP8 and Opus, arrivals starting at 0."""
    return call_media(CALL_SECONDS, 0.0)


@pytest.fixture(scope="session")
def rsa_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    folder = tmp_path_factory.mktemp("rsa")
    return write_pair(folder, rsa.generate_private_key(public_exponent=65537, key_size=2048), "r")


@pytest.fixture(scope="session")
def x25519_keys(tmp_path_factory: pytest.TempPathFactory) -> KeyPair:
    return write_pair(tmp_path_factory.mktemp("x25519"), x25519.X25519PrivateKey.generate(), "x")


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
