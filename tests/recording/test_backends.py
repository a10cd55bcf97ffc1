"""One recording format whichever backend carried the call: a call through the
aiortc node and through Janus (RTP from its NoSIP legs) is recorded by the same
recorder, verifies the same way, and a tampered segment is named the same way."""

from __future__ import annotations

from pathlib import Path

import pytest

from server.recordings.service import RecordingService
from tests.media.backends import BACKENDS, media_node
from tests.media.node_harness import NodeRouter, relayed_calls
from tests.recording.conftest import RelaySettings

pytestmark = [pytest.mark.media, pytest.mark.parametrize("backend", BACKENDS)]


async def test_a_call_is_recorded_verified_and_tampering_is_named(
    backend: str, service: RecordingService, settings: RelaySettings
) -> None:
    router = NodeRouter()
    async with (
        media_node(backend, router.send, service) as node,
        relayed_calls(node, router) as (call,),
    ):
        for peer in (call.app, call.desk):
            await peer.wait_for_frames(45, timeout=40)
            await peer.wait_for_frames(45, timeout=40, kind="audio")
        call_id = call.call_id
    # relayed_calls closed the call on the node, which closed its recorder.
    await service.close_call(call_id)
    status = await service.status(call_id)
    assert status["state"] == "complete" and status["healthy"]
    assert status["encryption"] == "AES-256-GCM"
    tracks = {(t["party"], t["kind"]): t for t in status["tracks"]}
    assert set(tracks) == {(p, k) for p in ("customer", "specialist") for k in ("audio", "video")}
    for track in tracks.values():
        assert track["duration_s"] > 1.0
    assert (await service.verify(call_id)).ok

    async with service.sessions() as session:
        _row, segments, _ = await service.index.load(session, call_id)
    victim = segments[0]
    path = Path(settings.recording_dir) / victim.storage_key
    data = bytearray(path.read_bytes())
    data[len(data) // 2] ^= 0x01
    path.write_bytes(bytes(data))
    verdict = await service.verify(call_id)
    assert not verdict.ok and verdict.first_bad is not None
    assert verdict.first_bad["problem"] == "altered"
    assert (verdict.first_bad["party"], verdict.first_bad["kind"]) == (victim.party, victim.kind)
