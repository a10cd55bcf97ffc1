"""Offline export with the bank's private key: verify, decrypt, one playable file per party.

``cloudbranch recording export CALL_ID --private-key FILE --out DIR`` reads the
index (the database in the settings) and the stored segments, recomputes the
chain, and refuses a recording that does not verify unless ``--allow-damaged``,
in which case every segment that cannot be used is named and left out. Each
party's audio and video segments are remuxed, not re-encoded, into
``CALL_ID-PARTY.mkv``; ``--side-by-side`` also composes both parties' video next
to each other (that one is re-encoded, offline) into ``CALL_ID-side-by-side.mkv``.
"""

from __future__ import annotations

import argparse
import asyncio
import hashlib
import io
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path
from typing import Any

import av

from server.settings import Settings, load_settings
from signaling.media.recording.keys import PrivateKey, RecordingKeyError
from signaling.media.recording.segment import SegmentFormatError, open_segment
from signaling.media.recording.storage import RecordingStorage

from .chain import IndexedSegment, Verdict, verify
from .index import RecordingIndex


@dataclass(frozen=True)
class Loaded:
    verdict: Verdict
    segments: list[IndexedSegment]
    unusable: dict[int, str]  # chain position -> why it is left out
    blobs: dict[int, bytes]


async def load(settings: Settings, storage: RecordingStorage, call_id: str) -> Loaded:
    from server.db.engine import make_engine, make_sessionmaker

    engine = make_engine(settings.database_url)
    try:
        index = RecordingIndex(make_sessionmaker(engine), settings.recording_retention_days)
        async with index.sessions() as session:
            row, segments, audited = await index.load(session, call_id)
    finally:
        await engine.dispose()
    if row is None:
        raise LookupError(f"no recording of call {call_id}")
    blobs: dict[int, bytes] = {}
    stored: dict[str, str] = {}
    for key in await asyncio.to_thread(storage.keys, f"{call_id}/"):
        stored[key] = hashlib.sha256(await asyncio.to_thread(storage.get, key)).hexdigest()
    unusable: dict[int, str] = {}
    for seg in segments:
        if stored.get(seg.storage_key) != seg.sha256:
            unusable[seg.seq] = "missing" if seg.storage_key not in stored else "altered"
            continue
        blobs[seg.seq] = await asyncio.to_thread(storage.get, seg.storage_key)
    verdict = verify(call_id, segments, audited, stored, row.final_hash)
    return Loaded(verdict, segments, unusable, blobs)


def decrypt_all(loaded: Loaded, private_key: PrivateKey | None) -> dict[int, bytes]:
    """Plain Matroska bytes of every usable segment (by chain position)."""
    keys: dict[str, bytes] = {}
    plain: dict[int, bytes] = {}
    for seq, blob in loaded.blobs.items():
        from signaling.media.recording.segment import parse_header

        header, _ = parse_header(blob)
        key: bytes | None = None
        if header.get("encryption") != "none":
            wrapped = header.get("wrapped_key")
            if private_key is None or not isinstance(wrapped, dict):
                raise RecordingKeyError("this recording is encrypted: --private-key is needed")
            marker = str(wrapped.get("wrapped"))
            if marker not in keys:
                keys[marker] = private_key.unwrap(wrapped)
            key = keys[marker]
        plain[seq] = open_segment(blob, key)[1]
    return plain


def write_party_file(path: Path, parts: list[bytes]) -> int:
    """Remux one party's segments (audio and video, in media time order) into one file."""
    packets: list[tuple[float, str, Any]] = []
    templates: dict[str, Any] = {}
    inputs = []
    for data in parts:
        container = av.open(io.BytesIO(data), "r")
        inputs.append(container)
        stream = container.streams[0]
        kind = str(stream.type)
        templates.setdefault(kind, stream)
        for packet in container.demux(stream):
            if packet.pts is None or packet.size == 0 or stream.time_base is None:
                continue
            packets.append((float(packet.pts * stream.time_base), kind, packet))
    packets.sort(key=lambda item: item[0])
    with av.open(str(path), "w", format="matroska") as out:
        streams = {kind: out.add_stream_from_template(t) for kind, t in sorted(templates.items())}
        for _at, kind, packet in packets:
            packet.stream = streams[kind]
            out.mux(packet)
    for container in inputs:
        container.close()
    return len(packets)


def write_side_by_side(path: Path, video_parts: dict[str, list[bytes]], fps: int = 15) -> int:
    """Both parties' video next to each other (re-encoded VP8, offline)."""
    width, height = 320, 240
    timelines: dict[str, list[tuple[float, Any]]] = {}
    for party, parts in video_parts.items():
        frames: list[tuple[float, Any]] = []
        for data in parts:
            with av.open(io.BytesIO(data), "r") as container:
                for frame in container.decode(container.streams.video[0]):
                    if frame.time is not None:
                        image = frame.reformat(width=width, height=height, format="rgb24")
                        frames.append((float(frame.time), image.to_ndarray()))
        timelines[party] = frames
    import numpy as np

    end = max((f[-1][0] for f in timelines.values() if f), default=0.0)
    out = av.open(str(path), "w", format="matroska")
    stream = out.add_stream("libvpx", rate=fps)
    stream.width, stream.height, stream.pix_fmt = width * 2, height, "yuv420p"
    cursors = dict.fromkeys(timelines, 0)
    blank = np.zeros((height, width, 3), dtype=np.uint8)
    count = 0
    for tick in range(int(end * fps) + 1):
        at = tick / fps
        halves = []
        for party in ("customer", "specialist"):
            frames = timelines.get(party, [])
            while cursors.get(party, 0) + 1 < len(frames) and frames[cursors[party] + 1][0] <= at:
                cursors[party] += 1
            shown = frames[cursors[party]][1] if frames and frames[0][0] <= at else blank
            halves.append(shown)
        frame = av.VideoFrame.from_ndarray(np.hstack(halves), format="rgb24")
        frame.pts, frame.time_base = tick, Fraction(1, fps)
        for packet in stream.encode(frame):
            out.mux(packet)
        count += 1
    for packet in stream.encode():
        out.mux(packet)
    out.close()
    return count


def export(
    settings: Settings,
    storage: RecordingStorage,
    call_id: str,
    private_key: PrivateKey | None,
    out_dir: Path,
    *,
    allow_damaged: bool,
    side_by_side: bool,
) -> tuple[Verdict, list[Path], dict[int, str]]:
    loaded = asyncio.run(load(settings, storage, call_id))
    if not loaded.verdict.ok and not allow_damaged:
        return loaded.verdict, [], loaded.unusable
    plain = decrypt_all(loaded, private_key)
    out_dir.mkdir(parents=True, exist_ok=True)
    written: list[Path] = []
    by_party: dict[str, list[bytes]] = {}
    video: dict[str, list[bytes]] = {}
    for seg in loaded.segments:
        if seg.seq in plain and seg.frames > 0:
            by_party.setdefault(seg.party, []).append(plain[seg.seq])
            if seg.kind == "video":
                video.setdefault(seg.party, []).append(plain[seg.seq])
    for party, parts in sorted(by_party.items()):
        path = out_dir / f"{call_id}-{party}.mkv"
        write_party_file(path, parts)
        written.append(path)
    if side_by_side and video:
        path = out_dir / f"{call_id}-side-by-side.mkv"
        write_side_by_side(path, video)
        written.append(path)
    return loaded.verdict, written, loaded.unusable


def main(argv: Sequence[str]) -> int:
    parser = argparse.ArgumentParser(prog="cloudbranch recording")
    sub = parser.add_subparsers(dest="command", required=True)
    cmd = sub.add_parser("export", help="verify, decrypt and write one playable file per party")
    cmd.add_argument("call_id")
    cmd.add_argument("--private-key", type=Path, default=None)
    cmd.add_argument("--out", type=Path, required=True)
    cmd.add_argument("--allow-damaged", action="store_true")
    cmd.add_argument("--side-by-side", action="store_true")
    args = parser.parse_args(list(argv))
    from .service import storage_from

    settings = load_settings()
    try:
        key = PrivateKey.load(str(args.private_key)) if args.private_key else None
        verdict, written, unusable = export(
            settings,
            storage_from(settings),
            args.call_id,
            key,
            args.out,
            allow_damaged=args.allow_damaged,
            side_by_side=args.side_by_side,
        )
    except (LookupError, RecordingKeyError, SegmentFormatError) as exc:
        print(f"cannot export: {exc}", file=sys.stderr)
        return 2
    if not verdict.ok:
        bad = verdict.first_bad or {}
        print(
            f"the recording does not verify: segment {bad.get('index')} "
            f"({bad.get('party')} {bad.get('kind')}) is {bad.get('problem')}",
            file=sys.stderr,
        )
        if not written:
            print("refusing to export; --allow-damaged exports what is intact", file=sys.stderr)
            return 3
    for seq, why in sorted(unusable.items()):
        print(f"segment {seq} is {why} and was left out", file=sys.stderr)
    for path in written:
        print(path)
    return 0
