"""A recorder that cannot keep up degrades the recording, never the call; production
refuses relay mode without a recording key unless recording is turned off."""

from __future__ import annotations

import time
from pathlib import Path

import pytest
from structlog.testing import capture_logs

from server.db.engine import make_engine, make_sessionmaker
from server.recordings.service import RecordingConfigError, RecordingService
from signaling.media.tap import EncodedFrame, NullTap
from tests.recording.support import KeyPair, RelaySettings, _at, recording_settings


async def test_a_full_queue_drops_says_so_and_keeps_what_decodes(
    tmp_path: Path, database_url: str, rsa_keys: KeyPair, media: list[EncodedFrame]
) -> None:
    settings = recording_settings(
        tmp_path, database_url, recording_public_key=rsa_keys.public_pem, recording_queue_frames=10
    )
    engine = make_engine(settings.database_url)
    service = RecordingService(settings, make_sessionmaker(engine))
    try:
        started = time.time()
        tap = await service.open("call-flood", started_at=started)
        with capture_logs() as logs:
            for frame in media:
                tap.write(_at(frame, started))  # never blocks, never raises
        assert not tap.healthy
        assert any(e["event"] == "recording.degraded" for e in logs)
        await service.close_call("call-flood")
        status = await service.status("call-flood")
        assert status["state"] == "interrupted" and status["healthy"] is False
        degraded = [m for m in status["markers"] if m["kind"] == "recording_degraded"]
        assert degraded and degraded[0]["data"]["problem"] == "queue_full"
        assert (await service.verify("call-flood")).ok  # what was kept is whole
    finally:
        await service.stop()
        await engine.dispose()


def _production(tmp_path: Path, database_url: str, **more: object) -> RelaySettings:
    return recording_settings(tmp_path, database_url, dev_mode=False, jwt_secret="x" * 40, **more)


async def test_production_relay_needs_a_key_unless_recording_is_off(
    tmp_path: Path, database_url: str, rsa_keys: KeyPair
) -> None:
    engine = make_engine(database_url)
    sessions = make_sessionmaker(engine)
    try:
        with pytest.raises(RecordingConfigError, match="RECORDING_PUBLIC_KEY"):
            RecordingService(_production(tmp_path, database_url), sessions)
        off = RecordingService(
            _production(tmp_path, database_url, recording_enabled=False), sessions
        )
        assert isinstance(await off.open("call-x", started_at=time.time()), NullTap)
        keyed = _production(tmp_path, database_url, recording_public_key=rsa_keys.public_pem)
        assert RecordingService(keyed, sessions).public_key is not None
    finally:
        await engine.dispose()
