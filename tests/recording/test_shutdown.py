"""A server shutting down with a call still relayed: the embedded media node lets go
of the call's media first (aiohttp runs cleanups in reverse order), and the
recording must close as ``interrupted``, not ``complete`` (the call did not end)."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path

from aiohttp import web
from sqlalchemy import select

from server.app import create_app
from server.appkeys import COMPONENTS
from server.db.engine import make_engine, make_sessionmaker
from server.recordings.models import Recording
from tests.api.harness import TEST_SETTINGS
from tests.recording.media import call_media
from tests.recording.support import RelaySettings, _at


async def _state(database_url: str, call_id: str) -> str:
    engine = make_engine(database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            state = await session.scalar(
                select(Recording.state).where(Recording.call_id == call_id)
            )
            return str(state)
    finally:
        await engine.dispose()


async def test_an_embedded_nodes_shutdown_leaves_its_calls_recordings_interrupted(
    database_url: str, tmp_path: Path
) -> None:
    settings = RelaySettings(
        **{
            **TEST_SETTINGS,
            "database_url": database_url,
            "recording_dir": str(tmp_path / "recordings"),
            "recording_spool_dir": str(tmp_path / "spool"),
            "media_mode": "relay",
            "media_embedded_node": True,
            "integrity_enabled": False,  # not what this is about; spares spawning workers
        }
    )
    app = create_app(settings)
    runner = web.AppRunner(app, shutdown_timeout=2)
    await runner.setup()
    try:
        components = app[COMPONENTS]
        assert components.media_host is not None
        node = components.media_host.node
        # The node opens the call's media as on the desk's first offer: a bridge whose
        # tap comes from the server's recorder (through the integrity analyser).
        bridge = await node._open("call-going-on")  # type: ignore[attr-defined]
        started = time.time()
        for frame in call_media(3.0, 0.0):
            bridge.tap.write(_at(frame, started))
        await asyncio.sleep(0.3)  # the tap hands its last batch to the writer
        assert await _state(database_url, "call-going-on") == "recording"
    finally:
        await asyncio.wait_for(runner.cleanup(), 30)
    assert await _state(database_url, "call-going-on") == "interrupted"
