"""Retention: past its retain-until an unheld recording is deleted and the deletion
audited; a held one is kept; the sweeper is an owned task that stops."""

from __future__ import annotations

import time
from datetime import timedelta
from pathlib import Path

from sqlalchemy import select

from server.auth.principal import Principal, Role
from server.db.banking import AuditEntry
from server.recordings.service import RecordingService
from signaling.media.tap import EncodedFrame
from tests.recording.support import RelaySettings, record_call

SUPERVISOR = Principal(Role.SUPERVISOR, "SUP1")


async def test_expired_is_deleted_and_audited_held_is_kept(
    service: RecordingService, settings: RelaySettings, media: list[EncodedFrame]
) -> None:
    short = media[: len(media) // 4]
    await record_call(service, "call-old", short)
    await record_call(service, "call-held", short)
    await record_call(service, "call-open", short, close=False)
    await service.set_hold("call-held", True, "court order 17", SUPERVISOR)
    root = Path(settings.recording_dir)
    assert list((root / "call-old").glob("*.cbseg"))

    status = await service.status("call-old")
    assert status["retain_until"]
    assert await service.sweep(time.time()) == []  # nothing is due for 180 days

    later = time.time() + timedelta(days=settings.recording_retention_days + 1).total_seconds()
    assert await service.sweep(later) == ["call-old"]
    assert not list((root / "call-old").glob("*.cbseg"))
    assert list((root / "call-held").glob("*.cbseg"))
    assert (await service.status("call-old"))["state"] == "deleted"
    assert (await service.status("call-held"))["legal_hold"] is True
    async with service.sessions() as session:
        deleted = (
            (
                await session.execute(
                    select(AuditEntry).where(AuditEntry.kind == "recording.deleted")
                )
            )
            .scalars()
            .all()
        )
    assert [e.subject_id for e in deleted] == ["call-old"]
    assert deleted[0].data["objects"] > 0 and deleted[0].data["final_hash"]

    await service.set_hold("call-held", False, "released by court", SUPERVISOR)
    assert await service.sweep(later) == ["call-held"]
    await service.close_call("call-open")


async def test_the_sweeper_is_owned_and_stops(service: RecordingService) -> None:
    task = service._sweeper
    assert task is not None and not task.done()
    await service.stop()
    assert task.done() and service._sweeper is None
    await service.stop()  # twice is fine
