"""The recording's hash chain and its verification: pure functions over what is stored.

Each segment's entry covers its SHA-256 (over the stored bytes), chain position,
party, track, media time span and size, and the previous entry's hash, so an
altered, missing, reordered or extra segment shows at the first place it breaks.
The same entries go into the audit chain as ``recording.segment``, so a
rewritten index does not match the audit log either.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any


def genesis(call_id: str) -> str:
    return hashlib.sha256(f"cloudbranch recording:{call_id}".encode()).hexdigest()


def entry_content(
    *,
    call_id: str,
    seq: int,
    party: str,
    kind: str,
    codec: str,
    track_index: int,
    start_s: float,
    end_s: float,
    frames: int,
    size: int,
    sha256: str,
    status: str,
    prev_hash: str,
) -> dict[str, Any]:
    return {
        "call_id": call_id,
        "seq": seq,
        "party": party,
        "kind": kind,
        "codec": codec,
        "track_index": track_index,
        "start_s": round(start_s, 3),
        "end_s": round(end_s, 3),
        "frames": frames,
        "size": size,
        "sha256": sha256,
        "status": status,
        "prev_hash": prev_hash,
    }


def entry_hash(content: Mapping[str, Any]) -> str:
    canonical = json.dumps(dict(content), sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(canonical.encode()).hexdigest()


@dataclass(frozen=True)
class IndexedSegment:
    """What the index says about one segment (a row of ``recording_segments``)."""

    seq: int
    party: str
    kind: str
    codec: str
    track_index: int
    storage_key: str
    start_s: float
    end_s: float
    frames: int
    size: int
    sha256: str
    status: str
    prev_hash: str
    entry_hash: str

    def content(self, call_id: str) -> dict[str, Any]:
        return entry_content(
            call_id=call_id,
            seq=self.seq,
            party=self.party,
            kind=self.kind,
            codec=self.codec,
            track_index=self.track_index,
            start_s=self.start_s,
            end_s=self.end_s,
            frames=self.frames,
            size=self.size,
            sha256=self.sha256,
            status=self.status,
            prev_hash=self.prev_hash,
        )


@dataclass(frozen=True)
class Verdict:
    ok: bool
    segments: int
    first_bad: dict[str, Any] | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "segments": self.segments}
        if self.first_bad is not None:
            result["first_bad"] = self.first_bad
        return result


def _bad(segments: int, index: int, party: str, kind: str, problem: str, **more: Any) -> Verdict:
    return Verdict(
        False,
        segments,
        {"index": index, "party": party, "kind": kind, "problem": problem, **more},
    )


def verify(
    call_id: str,
    rows: Sequence[IndexedSegment],
    audited: Mapping[int, Mapping[str, Any]],
    stored: Mapping[str, str],
    final_hash: str | None,
) -> Verdict:
    """Recompute the chain over the index, the audit entries and the stored bytes.

    ``audited`` maps chain position to the ``recording.segment`` audit entry's
    data; ``stored`` maps every stored key of the call to the SHA-256 of its bytes.
    Problems: ``missing`` (a segment, its index row or its stored bytes are gone),
    ``altered`` (the bytes or the index entry changed), ``reordered`` (the bytes
    of another segment of the chain are in its place), ``extra`` (stored bytes no
    entry accounts for).
    """
    prev = genesis(call_id)
    by_sha = {row.sha256: row for row in rows}
    ordered = sorted(rows, key=lambda r: r.seq)
    count = len(ordered)
    for position, row in enumerate(ordered):
        if row.seq != position:
            missing = audited.get(position, {})
            return _bad(
                count,
                position,
                str(missing.get("party", "?")),
                str(missing.get("kind", "?")),
                "missing",
            )
        expected = audited.get(position)
        content = row.content(call_id)
        if (
            row.prev_hash != prev
            or entry_hash(content) != row.entry_hash
            or expected is None
            or dict(expected) != content
        ):
            return _bad(count, row.seq, row.party, row.kind, "altered", part="index entry")
        actual = stored.get(row.storage_key)
        if actual is None:
            return _bad(count, row.seq, row.party, row.kind, "missing")
        if actual != row.sha256:
            other = by_sha.get(actual)
            if other is not None:
                return _bad(
                    count, row.seq, row.party, row.kind, "reordered", holds_segment=other.seq
                )
            return _bad(count, row.seq, row.party, row.kind, "altered")
        prev = row.entry_hash
    for position in sorted(p for p in audited if p >= count):
        gone = audited[position]
        return _bad(count, position, str(gone.get("party")), str(gone.get("kind")), "missing")
    if final_hash is not None and final_hash != prev:
        return _bad(count, count, "?", "?", "missing", part="after the last segment")
    known = {row.storage_key for row in ordered}
    for key in sorted(set(stored) - known):
        party, kind = _party_kind(key)
        return _bad(count, count, party, kind, "extra", key=key)
    return Verdict(True, count)


def _party_kind(key: str) -> tuple[str, str]:
    name = key.rsplit("/", 1)[-1]
    parts = name.split("-")
    return (parts[0], parts[1]) if len(parts) >= 2 else ("?", "?")
