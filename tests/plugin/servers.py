"""A real server on loopback (tests/api/harness.py) and a client for it."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import aiohttp
import pytest

from tests.api.harness import Api, RunningServer, running_server


@pytest.fixture
def server_settings() -> dict[str, Any]:
    """Override in a test module to change settings of the server under test."""
    return {}


@pytest.fixture
def default_media_mode() -> str:
    """The API tests report both parties' media state without real peers, so media
    goes peer to peer (``direct``): nothing reaches a media node and nothing is
    recorded. The relay, recording and their fail-closed rule are exercised with
    real aiortc peers in tests/e2e, tests/recording and the browser tests, which
    override this with ``relay``."""
    return "direct"


@pytest.fixture
def default_integrity_enabled() -> bool:
    """The customer video of most tests is aiortc's test pattern: no face and a
    metronome clock, which the video analysis rightly calls suspect, so the risk
    engine would review every transfer they make. Tests about other things run with
    the analysis off; tests/integrity, whose synthetic camera shows a face with
    camera-like jitter, turns it on (the production default), and so does Grandpa
    Wu's browser story, whose Chromium camera plays a live face
    (tests/browser/fake_camera.py)."""
    return False


@pytest.fixture
async def server(
    database_url: str,
    server_settings: dict[str, Any],
    default_media_mode: str,
    default_integrity_enabled: bool,
) -> AsyncIterator[RunningServer]:
    settings = {
        "media_mode": default_media_mode,
        "integrity_enabled": default_integrity_enabled,
        **server_settings,
    }
    async with running_server(database_url=database_url, **settings) as handle:
        yield handle


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=20)) as session:
        yield Api(server.base_url, session)
