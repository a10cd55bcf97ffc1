"""SIGKILL a process in the middle of a recording: every closed segment verifies, the
open ones are salvaged up to their last whole chunk on restart (never deleted), the
recording is interrupted, and a resumed recording continues with the gap marked."""

from __future__ import annotations

import asyncio
import json
import os
import signal
import subprocess
import sys
from pathlib import Path

import pytest

from server.db.engine import make_engine, make_sessionmaker
from server.recordings.service import RecordingService
from signaling.media.tap import EncodedFrame
from tests.recording.crash_child import FED_S
from tests.recording.support import KeyPair, RelaySettings, _at
from tests.recording.test_recorder import decoded, run_export

pytestmark = pytest.mark.slow


def start_child(settings: RelaySettings, started_at: float) -> subprocess.Popen[str]:
    return subprocess.Popen(
        [
            sys.executable,
            "-m",
            "tests.recording.crash_child",
            settings.model_dump_json(exclude={"jwt_secret"}),
            str(started_at),
        ],
        stdout=subprocess.PIPE,
        text=True,
    )


def open_parts(settings: RelaySettings) -> list[Path]:
    return list(Path(settings.recording_spool_dir).rglob("*.part"))


async def test_sigkill_mid_recording_then_salvage_and_resume(
    settings: RelaySettings, rsa_keys: KeyPair, media: list[EncodedFrame], tmp_path: Path
) -> None:
    import time

    started_at = time.time() - 30
    child = start_child(settings, started_at)
    try:
        line = await asyncio.wait_for(asyncio.to_thread(child.stdout.readline), 90)  # type: ignore[union-attr]
        assert line.strip() == "fed"
        parts = open_parts(settings)
        assert len(parts) == 4, parts  # one open segment per track
    finally:
        os.kill(child.pid, signal.SIGKILL)
        child.wait(10)
    assert child.returncode == -signal.SIGKILL

    engine = make_engine(settings.database_url)
    service = RecordingService(settings, make_sessionmaker(engine))
    try:
        async with service.sessions() as session:
            _row, before, _ = await service.index.load(session, "call-crash")
        assert len(before) == 4 and all(s.status == "closed" for s in before)

        await service.start()  # the restart: salvage the spool
        assert not open_parts(settings)
        status = await service.status("call-crash")
        assert status["state"] == "interrupted"
        async with service.sessions() as session:
            _row, after, _ = await service.index.load(session, "call-crash")
        salvaged = [s for s in after if s.status == "salvaged"]
        assert len(after) == 8 and len(salvaged) == 4
        for segment in salvaged:
            assert 6.0 <= segment.start_s < segment.end_s <= FED_S + 0.1
        verdict = await service.verify("call-crash")
        assert verdict.ok, verdict

        # The call goes on (on this node): the recording continues, the gap marked.
        tap = await service.open("call-crash", started_at=time.time())
        for frame in media:
            if frame.arrival > FED_S + 1:
                tap.write(_at(frame, started_at))
        await service.close_call("call-crash")
        status = await service.status("call-crash")
        assert status["state"] == "interrupted"
        assert "recording_resumed" in [m["kind"] for m in status["markers"]]
        assert (await service.verify("call-crash")).ok
    finally:
        await service.stop()
        await engine.dispose()

    out = tmp_path / "out"
    done = await asyncio.to_thread(
        run_export, settings, "call-crash", out, "--private-key", str(rsa_keys.private_path)
    )
    assert done.returncode == 0, done.stderr
    video_frames, span = decoded(out / "call-crash-customer.mkv")["video"]
    # Salvage keeps what reached whole chunks (clusters of ~1 s) before the kill.
    assert 30 * (FED_S - 1.5) <= video_frames - 30 * (12 - FED_S - 1) <= 30 * FED_S
    assert span > 11
    json.dumps(status)


def leave_open_segments(spool: Path, call_id: str, media: list[EncodedFrame]) -> list[Path]:
    """Segment files in ``spool`` as a process killed before storing them leaves them."""
    from signaling.media.recording.track import SegmentLimits
    from signaling.media.recording.writer import CallWriter

    writer = CallWriter(
        call_id=call_id,
        started_at=0.0,
        spool=spool,
        recording_key=None,
        wrapped_key=None,
        on_closed=lambda segment: None,  # never stored: as if killed at once
        on_problem=lambda reason, at: None,
        limits=SegmentLimits(target_s=6.0, max_s=10.0),
        queue_size=10_000,
        want_keyframe=lambda party: None,
    )
    writer.start()
    for frame in media:
        assert writer.submit(frame)
    assert writer.stop(60)
    return sorted(spool.glob(f"{call_id}/*.part"))


async def test_a_segment_of_a_call_the_database_does_not_know_is_set_aside_once(
    settings: RelaySettings, media: list[EncodedFrame]
) -> None:
    """A spool file whose call has no recording row (the node pointed at another
    database, or one restored from an older backup) is kept, renamed ``.orphan``,
    and not tried again at the next start."""
    spool = Path(settings.recording_spool_dir)
    left = await asyncio.to_thread(leave_open_segments, spool, "call-unknown", media)
    sizes = sorted(path.stat().st_size for path in left)
    assert len(left) >= 4  # at least a segment per track
    engine = make_engine(settings.database_url)
    service = RecordingService(settings, make_sessionmaker(engine))
    try:
        assert await service.salvage_spool() == len(left)
        assert not open_parts(settings)
        aside = await asyncio.to_thread(lambda: sorted(spool.rglob("*.orphan")))
        assert sorted(path.stat().st_size for path in aside) == sizes  # every byte kept
        assert await service.salvage_spool() == 0  # the next start does not look again
    finally:
        await engine.dispose()
