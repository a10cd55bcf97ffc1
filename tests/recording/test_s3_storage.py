"""Recording into S3-compatible storage with Object Lock, against a real S3 API server
(moto in server mode, started here as its own process on a loopback port)."""

from __future__ import annotations

import contextlib
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest

from server.auth.principal import Principal, Role
from server.db.engine import make_engine, make_sessionmaker
from server.recordings.service import RecordingService
from signaling.media.recording.storage import S3Storage, StorageError
from signaling.media.tap import EncodedFrame
from tests.recording.support import RelaySettings, record_call

pytestmark = pytest.mark.slow
BUCKET = "cb-recordings"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


@pytest.fixture(scope="module")
def s3_endpoint() -> Iterator[str]:
    os.environ.setdefault("AWS_ACCESS_KEY_ID", "testing")
    os.environ.setdefault("AWS_SECRET_ACCESS_KEY", "testing")
    os.environ.setdefault("AWS_DEFAULT_REGION", "us-east-1")
    binary = shutil.which("moto_server", path=str(Path(sys.executable).parent))
    if binary is None:
        pytest.fail("moto_server is not installed: `make install` installs the dev extras")
    port = _free_port()
    process = subprocess.Popen(
        [binary, "-H", "127.0.0.1", "-p", str(port)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
        start_new_session=True,
    )
    endpoint = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:
            try:
                with socket.create_connection(("127.0.0.1", port), timeout=1):
                    break
            except OSError:
                if process.poll() is not None or time.monotonic() > deadline:
                    pytest.fail("moto_server did not start")
                time.sleep(0.1)
        yield endpoint
    finally:
        process.terminate()
        process.wait(10)


@pytest.fixture
def s3(s3_endpoint: str) -> S3Storage:
    storage = S3Storage.connect(BUCKET, endpoint_url=s3_endpoint, region="us-east-1")
    with contextlib.suppress(storage.client.exceptions.BucketAlreadyOwnedByYou):
        storage.client.create_bucket(Bucket=BUCKET, ObjectLockEnabledForBucket=True)
    return storage


@pytest.fixture
async def s3_service(settings: RelaySettings, s3: S3Storage) -> AsyncIterator[RecordingService]:
    engine = make_engine(settings.database_url)
    service = RecordingService(settings, make_sessionmaker(engine), storage=s3)
    await service.start()
    try:
        yield service
    finally:
        await service.stop()
        await engine.dispose()


async def test_segments_are_locked_in_compliance_mode_and_verify(
    s3_service: RecordingService, s3: S3Storage, media: list[EncodedFrame]
) -> None:
    call_id = f"call-s3-{time.time_ns()}"
    await record_call(s3_service, call_id, media[: len(media) // 2])
    keys = s3.keys(f"{call_id}/")
    assert len(keys) >= 4
    head: dict[str, Any] = s3.client.head_object(Bucket=BUCKET, Key=keys[0])
    assert head["ObjectLockMode"] == "COMPLIANCE"
    retain = head["ObjectLockRetainUntilDate"]
    expected = datetime.now(UTC) + timedelta(days=180)
    assert abs((retain - expected).total_seconds()) < 3600
    assert (await s3_service.verify(call_id)).ok

    # A supervisor's legal hold is also set on every stored object.
    await s3_service.set_hold(call_id, True, "complaint 2026-118", Principal(Role.SUPERVISOR, "S1"))
    held = s3.client.get_object_legal_hold(Bucket=BUCKET, Key=keys[0])
    assert held["LegalHold"]["Status"] == "ON"

    # Compliance mode: not even the owner deletes a locked version early.
    with pytest.raises(StorageError):
        s3.delete(keys[0])
    assert keys[0] in s3.keys(f"{call_id}/")

    # Overwriting makes a new version; verification reads what is served and says so.
    data = bytearray(s3.get(keys[1]))
    data[-5] ^= 0xFF
    s3.client.put_object(Bucket=BUCKET, Key=keys[1], Body=bytes(data))
    verdict = await s3_service.verify(call_id)
    assert not verdict.ok and verdict.first_bad is not None
    assert verdict.first_bad["problem"] == "altered"
