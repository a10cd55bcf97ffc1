"""The tamper-evident audit log: append-only entries, each bound to the one before.

Every entry stores the SHA-256 of its own canonical content and of the previous
entry (``entry_hash = sha256(seq, prev_hash, content_hash)``), so changing,
removing or reordering any stored row breaks every hash after it, and
:func:`verify` names the first entry that no longer fits.

Appends belong to the caller's transaction, so an audited change and its entry
commit or roll back together (a savepoint rolled back takes its entries with it).
:func:`record` only hashes the content; the entries are chained as the *last*
statements before the transaction commits (a ``before_commit`` hook): the
one-row ``audit_head`` is updated then, and its row lock (PostgreSQL) serialises
appends from every node only for the few statements up to the commit, not for
the whole transaction, so the chain never forks and audited writes on different
calls run side by side. One lock order follows: whatever a transaction locks, it
locks the head last.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import event, select, update
from sqlalchemy.ext.asyncio import AsyncSession
from sqlalchemy.orm import Session, SessionTransaction

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


@dataclass(frozen=True)
class _Pending:
    """An entry hashed but not yet chained, and the (sub)transaction it belongs to."""

    entry: AuditEntry
    transaction: SessionTransaction | None


_PENDING = "audit.pending"


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
    """Append one entry to the session's transaction (the caller commits). Its
    ``seq`` and chain hashes are given when the transaction commits."""
    when = datetime.fromtimestamp(at, tz=UTC)
    payload = _normalise(data or {})
    entry = AuditEntry(
        at=when,
        kind=kind,
        actor_role=actor_role,
        actor_id=actor_id,
        subject_type=subject_type,
        subject_id=subject_id,
        data=payload,
        content_hash=content_hash(
            when, kind, actor_role, actor_id, subject_type, subject_id, payload
        ),
    )
    sync = session.sync_session
    if not sync.in_transaction():
        sync.begin()  # no I/O: the connection is taken by the first statement
    transaction = sync.get_nested_transaction() or sync.get_transaction()
    sync.info.setdefault(_PENDING, []).append(_Pending(entry, transaction))
    return entry


# The chaining runs in every session (the hooks act only on sessions holding
# pending entries): SQLAlchemy's ORM events are set on the session class.
@event.listens_for(Session, "before_commit")
def _chain_pending(session: Session) -> None:
    """Give the transaction's entries their place in the chain, last thing before
    commit. Runs inside the async session's greenlet, so it may execute SQL."""
    if session.in_nested_transaction():
        return  # a savepoint released: its entries go with the outer transaction
    pending: list[_Pending] = session.info.pop(_PENDING, [])
    if not pending:
        return
    # Everything else first, so the head's lock is held only from here to commit.
    session.flush()
    head = session.execute(
        update(AuditHead)
        .where(AuditHead.head_id == 1)
        .values(last_seq=AuditHead.last_seq + len(pending))
        .returning(AuditHead.last_seq, AuditHead.last_hash)
    ).one()
    seq, prev_hash = int(head[0]) - len(pending), str(head[1])
    for item in pending:
        seq += 1
        entry = item.entry
        entry.seq, entry.prev_hash = seq, prev_hash
        entry.entry_hash = chain_hash(seq, prev_hash, entry.content_hash)
        prev_hash = entry.entry_hash
        session.add(entry)
    session.flush()
    session.execute(update(AuditHead).where(AuditHead.head_id == 1).values(last_hash=prev_hash))


@event.listens_for(Session, "after_soft_rollback")
def _drop_rolled_back(session: Session, previous_transaction: SessionTransaction) -> None:
    """A rolled-back (sub)transaction takes its entries, and its savepoints', with it."""
    pending: list[_Pending] | None = session.info.get(_PENDING)
    if not pending:
        return
    session.info[_PENDING] = [
        p for p in pending if not _within(p.transaction, previous_transaction)
    ]


@event.listens_for(Session, "after_transaction_end")
def _drop_unfinished(session: Session, transaction: SessionTransaction) -> None:
    """The outer transaction ended without committing (closed, or rolled back)."""
    if transaction.parent is None:
        session.info.pop(_PENDING, None)


def _within(transaction: SessionTransaction | None, outer: SessionTransaction) -> bool:
    while transaction is not None:
        if transaction is outer:
            return True
        transaction = transaction.parent
    return False


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
