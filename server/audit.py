"""The tamper-evident audit log: append-only entries, each bound to the one before.

Every entry stores the SHA-256 of its own canonical content and of the previous
entry (``entry_hash = sha256(seq, prev_hash, content_hash)``), so changing,
removing or reordering any stored row breaks every hash after it, and
:func:`verify` names the first entry that no longer fits.

Appends happen inside the caller's transaction, so an audited change and its
entry commit or roll back together. The one-row ``audit_head`` table is updated
first: that row lock (PostgreSQL) or write lock (SQLite) serialises appends from
every node, so the chain never forks.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import AuditEntry, AuditHead

GENESIS = "0" * 64
_BATCH = 1000


def _canonical(value: Any) -> str:
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False, default=str)


def _normalise(data: dict[str, Any]) -> dict[str, Any]:
    """What the JSON column will give back (Decimals and datetimes become strings)."""
    normalised: dict[str, Any] = json.loads(_canonical(data))
    return normalised


def content_hash(
    at: datetime,
    kind: str,
    actor_role: str | None,
    actor_id: str | None,
    subject_type: str | None,
    subject_id: str | None,
    data: dict[str, Any],
) -> str:
    content = {
        "at": at.astimezone(UTC).isoformat(timespec="microseconds"),
        "kind": kind,
        "actor_role": actor_role,
        "actor_id": actor_id,
        "subject_type": subject_type,
        "subject_id": subject_id,
        "data": data,
    }
    return hashlib.sha256(_canonical(content).encode()).hexdigest()


def chain_hash(seq: int, prev_hash: str, own_content_hash: str) -> str:
    return hashlib.sha256(f"{seq}:{prev_hash}:{own_content_hash}".encode()).hexdigest()


async def record(
    session: AsyncSession,
    kind: str,
    *,
    at: float,
    actor_role: str | None = None,
    actor_id: str | None = None,
    subject_type: str | None = None,
    subject_id: str | None = None,
    data: dict[str, Any] | None = None,
) -> AuditEntry:
    """Append one entry in the session's transaction (the caller commits)."""
    when = datetime.fromtimestamp(at, tz=UTC)
    payload = _normalise(data or {})
    head = (
        await session.execute(
            update(AuditHead)
            .where(AuditHead.head_id == 1)
            .values(last_seq=AuditHead.last_seq + 1)
            .returning(AuditHead.last_seq, AuditHead.last_hash)
        )
    ).one()
    seq, prev_hash = int(head[0]), str(head[1])
    own = content_hash(when, kind, actor_role, actor_id, subject_type, subject_id, payload)
    entry = AuditEntry(
        seq=seq,
        at=when,
        kind=kind,
        actor_role=actor_role,
        actor_id=actor_id,
        subject_type=subject_type,
        subject_id=subject_id,
        data=payload,
        content_hash=own,
        prev_hash=prev_hash,
        entry_hash=chain_hash(seq, prev_hash, own),
    )
    session.add(entry)
    await session.execute(
        update(AuditHead).where(AuditHead.head_id == 1).values(last_hash=entry.entry_hash)
    )
    return entry


@dataclass(frozen=True)
class Verification:
    ok: bool
    entries: int
    first_bad_seq: int | None = None
    problem: str | None = None

    def as_dict(self) -> dict[str, Any]:
        result: dict[str, Any] = {"ok": self.ok, "entries": self.entries}
        if not self.ok:
            result["first_bad_seq"] = self.first_bad_seq
            result["problem"] = self.problem
        return result


async def verify_stored(sessions: Callable[[], AsyncSession]) -> Verification:
    """Verify the stored chain in a session of its own (``GET /api/v1/audit/verify``)."""
    async with sessions() as session:
        return await verify(session)


async def verify(session: AsyncSession) -> Verification:
    """Recompute the whole chain, in order, and compare it with what is stored.

    The head is read once the entries run out, and entries appended meanwhile are
    read on to it: reads need not share one snapshot (on SQLite each SELECT
    outside a write sees the latest commit), and an entry commits together with
    the head that counts it, so everything up to that head read is there."""
    prev_hash = GENESIS
    expected_seq = 1
    count = 0
    last_seq = 0
    head: tuple[int, str] | None = None
    while True:
        rows = await _entries_after(session, last_seq)
        if not rows:
            head = await _head(session)
            if head is None or head[0] <= count:
                break
            rows = await _entries_after(session, last_seq)
            if not rows:
                break
        for entry in rows:
            problem = _check(entry, expected_seq, prev_hash)
            if problem is not None:
                return Verification(False, count, entry.seq, problem)
            prev_hash = entry.entry_hash
            expected_seq += 1
            count += 1
            last_seq = entry.seq
    if head is not None and head[0] < count:
        return Verification(
            False, count, head[0] + 1, f"entry {head[0] + 1} is past the chain's head"
        )
    if head is not None and (head[0] != count or head[1] != prev_hash):
        return Verification(
            False, count, count + 1, "entries after the last stored one are missing"
        )
    return Verification(True, count)


async def _entries_after(session: AsyncSession, seq: int) -> Sequence[AuditEntry]:
    query = select(AuditEntry).where(AuditEntry.seq > seq).order_by(AuditEntry.seq)
    return (await session.execute(query.limit(_BATCH))).scalars().all()


async def _head(session: AsyncSession) -> tuple[int, str] | None:
    """The head as stored now (a column read, not the session's cached object)."""
    row = (
        await session.execute(
            select(AuditHead.last_seq, AuditHead.last_hash).where(AuditHead.head_id == 1)
        )
    ).one_or_none()
    return None if row is None else (int(row[0]), str(row[1]))


def _check(entry: AuditEntry, expected_seq: int, prev_hash: str) -> str | None:
    if entry.seq != expected_seq:
        return f"entry {expected_seq} is missing (found {entry.seq})"
    if entry.prev_hash != prev_hash:
        return f"entry {entry.seq} does not follow entry {entry.seq - 1}"
    own = content_hash(
        entry.at,
        entry.kind,
        entry.actor_role,
        entry.actor_id,
        entry.subject_type,
        entry.subject_id,
        entry.data,
    )
    if own != entry.content_hash:
        return f"entry {entry.seq} ({entry.kind}) was altered"
    if chain_hash(entry.seq, entry.prev_hash, entry.content_hash) != entry.entry_hash:
        return f"entry {entry.seq} has a forged chain hash"
    return None
