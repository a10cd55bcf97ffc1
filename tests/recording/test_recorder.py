"""A recorded call end to end: real VP8/Opus frames in, sealed segments on disk,
verification, and the offline export decoded back with PyAV (real process)."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
from pathlib import Path

import av
import pytest

from server.recordings.export import export
from server.recordings.service import RecordingService
from signaling.media.recording.keys import PrivateKey
from signaling.media.recording.segment import SegmentFormatError, open_segment
from signaling.media.recording.storage import LocalStorage
from signaling.media.tap import EncodedFrame
from tests.recording.support import CALL_SECONDS, KeyPair, RelaySettings, record_call

FPS, OPUS_PER_S = 30, 50


def run_export(
    settings: RelaySettings, call_id: str, out: Path, *args: str
) -> subprocess.CompletedProcess[str]:
    env = {
        **os.environ,
        "CLOUDBRANCH_DEV_MODE": "1",
        "CLOUDBRANCH_DATABASE_URL": settings.database_url,
        "CLOUDBRANCH_RECORDING_DIR": settings.recording_dir,
    }
    return subprocess.run(
        [
            sys.executable,
            "-c",
            "import sys; from server.cli import main; sys.exit(main())",
            "recording",
            "export",
            call_id,
            "--out",
            str(out),
            *args,
        ],
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )


def files(settings: RelaySettings, call_id: str) -> tuple[list[Path], list[Path]]:
    """The call's stored segments, and whatever is in the spool."""
    stored = sorted(Path(settings.recording_dir, call_id).glob("*.cbseg"))
    return stored, list(Path(settings.recording_spool_dir).rglob("*"))


def decoded(path: Path) -> dict[str, tuple[int, float]]:
    """Frames decoded and media span per stream kind."""
    result: dict[str, tuple[int, float]] = {}
    with av.open(str(path)) as container:
        for stream in container.streams:
            first = last = None
            count = 0
            container.seek(0)
            for frame in container.decode(stream):
                count += 1
                if frame.time is not None:
                    first = frame.time if first is None else first
                    last = frame.time
            step = 1 / FPS if stream.type == "video" else 0.02
            result[stream.type] = (count, (last or 0) - (first or 0) + step)
    return result


@pytest.mark.slow  # runs the export command as its own process
async def test_export_plays_both_parties_with_the_key(
    service: RecordingService,
    settings: RelaySettings,
    rsa_keys: KeyPair,
    media: list[EncodedFrame],
    tmp_path: Path,
) -> None:
    await record_call(service, "call-export", media)
    status = await service.status("call-export")
    assert status["state"] == "complete"
    assert {(t["party"], t["kind"]) for t in status["tracks"]} == {
        (p, k) for p in ("customer", "specialist") for k in ("audio", "video")
    }
    for track in status["tracks"]:
        assert track["segments"] >= 2  # 12 s in segments of at most 10 s
        assert track["duration_s"] == pytest.approx(CALL_SECONDS, rel=0.05)
    assert (await service.verify("call-export")).ok

    out = tmp_path / "export"
    done = await asyncio.to_thread(
        run_export,
        settings,
        "call-export",
        out,
        "--private-key",
        str(rsa_keys.private_path),
        "--side-by-side",
    )
    assert done.returncode == 0, done.stderr
    sent = {
        k: sum(1 for f in media if f.party == "customer" and f.kind == k)
        for k in ("audio", "video")
    }
    for party in ("customer", "specialist"):
        streams = decoded(out / f"call-export-{party}.mkv")
        assert set(streams) == {"audio", "video"}
        for kind, (count, span) in streams.items():
            assert count == pytest.approx(sent[kind], rel=0.05), (party, kind)
            assert span == pytest.approx(CALL_SECONDS, rel=0.05), (party, kind)
    side = decoded(out / "call-export-side-by-side.mkv")
    assert side["video"][1] == pytest.approx(CALL_SECONDS, rel=0.05)


@pytest.mark.slow  # runs the export command as its own process
async def test_stored_segments_are_sealed_and_useless_without_the_key(
    service: RecordingService,
    settings: RelaySettings,
    media: list[EncodedFrame],
    tmp_path: Path,
) -> None:
    await record_call(service, "call-sealed", media)
    stored, spool = files(settings, "call-sealed")
    assert stored
    assert all(p.is_dir() for p in spool), spool  # nothing left in the spool
    for path in stored:
        data = path.read_bytes()
        # No Matroska (EBML) header, codec id or Opus header in the clear.
        for plain in (b"\x1a\x45\xdf\xa3", b"V_VP8", b"A_OPUS", b"OpusHead"):
            assert plain not in data
        with pytest.raises(SegmentFormatError):
            open_segment(data, None)
        with pytest.raises(SegmentFormatError):
            open_segment(data, os.urandom(32))
        with pytest.raises(av.error.InvalidDataError):
            av.open(str(path))
    done = await asyncio.to_thread(run_export, settings, "call-sealed", tmp_path / "out")
    assert done.returncode != 0 and "private-key" in done.stderr


@pytest.mark.parametrize("damage", ["altered", "missing", "reordered", "extra"])
async def test_verify_names_the_first_damaged_segment(
    service: RecordingService,
    settings: RelaySettings,
    rsa_keys: KeyPair,
    media: list[EncodedFrame],
    tmp_path: Path,
    damage: str,
) -> None:
    await record_call(service, "call-damage", media)
    async with service.sessions() as session:
        _row, segments, _ = await service.index.load(session, "call-damage")
    root = Path(settings.recording_dir)
    victim, other = segments[2], segments[5]
    path = root / victim.storage_key
    if damage == "altered":
        data = bytearray(path.read_bytes())
        data[len(data) // 2] ^= 0x01
        path.write_bytes(bytes(data))
    elif damage == "missing":
        path.unlink()
    elif damage == "reordered":
        other_path = root / other.storage_key
        a, b = path.read_bytes(), other_path.read_bytes()
        path.write_bytes(b)
        other_path.write_bytes(a)
    else:
        (root / "call-damage" / "customer-video-00099-ffffffffffffffff.cbseg").write_bytes(b"x")
    verdict = await service.verify("call-damage")
    assert not verdict.ok
    assert verdict.first_bad is not None
    assert verdict.first_bad["problem"] == damage
    if damage != "extra":
        assert verdict.first_bad["index"] == victim.seq
        assert (verdict.first_bad["party"], verdict.first_bad["kind"]) == (
            victim.party,
            victim.kind,
        )
    else:
        assert (verdict.first_bad["party"], verdict.first_bad["kind"]) == ("customer", "video")

    # The export refuses it (in process here; the command itself runs as a process above).
    out = tmp_path / "out"
    storage, key = (
        LocalStorage(Path(settings.recording_dir)),
        PrivateKey.load(str(rsa_keys.private_path)),
    )
    verdict, written, _ = await asyncio.to_thread(
        export, settings, storage, "call-damage", key, out, allow_damaged=False, side_by_side=False
    )
    assert not verdict.ok and written == []
    if damage in ("missing", "altered"):
        verdict, written, unusable = await asyncio.to_thread(
            export,
            settings,
            storage,
            "call-damage",
            key,
            out,
            allow_damaged=True,
            side_by_side=False,
        )
        assert unusable == {victim.seq: damage}
        assert out / f"call-damage-{victim.party}.mkv" in written
        assert decoded(out / f"call-damage-{victim.party}.mkv")[victim.kind][0] > 0


async def test_a_changed_index_entry_is_caught_by_the_audit_chain(
    service: RecordingService,
    media: list[EncodedFrame],
) -> None:
    from sqlalchemy import update

    from server.recordings.models import RecordingSegment

    await record_call(service, "call-index", media)
    async with service.sessions() as session:
        await session.execute(
            update(RecordingSegment)
            .where(RecordingSegment.call_id == "call-index", RecordingSegment.seq == 1)
            .values(end_s=RecordingSegment.end_s + 5)
        )
        await session.commit()
    verdict = await service.verify("call-index")
    assert verdict.first_bad is not None
    assert (verdict.first_bad["index"], verdict.first_bad["problem"]) == (1, "altered")
