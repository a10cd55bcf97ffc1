"""The audit chain's verification while entries are being appended, and against
an entry slipped in past the head (real databases: SQLite and PostgreSQL)."""

from __future__ import annotations

import time
from typing import Any

from sqlalchemy import Select, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.db.banking import AuditEntry, AuditHead

Sessions = async_sessionmaker[AsyncSession]


async def _append(sessions: Sessions, kind: str) -> None:
    async with sessions() as s:
        await audit.record(s, kind, at=time.time(), data={"n": kind})
        await s.commit()


async def test_an_entry_committed_during_a_check_is_not_a_break(sessions: Sessions) -> None:
    for n in range(3):
        await _append(sessions, f"before.{n}")
    appended = False

    class AppendsBeforeTheHeadRead(AsyncSession):
        """The checker's session: just before its first read of the chain's head
        (it has read the entries and found no more), another session commits an
        append. The checker reads on to that head."""

        async def execute(self, statement: Any, *args: Any, **kwargs: Any) -> Any:
            nonlocal appended
            reads_head = isinstance(statement, Select) and (
                AuditHead.__table__ in statement.get_final_froms()
            )
            if reads_head and not appended:
                appended = True
                await _append(sessions, "during")
            return await super().execute(statement, *args, **kwargs)

    async with AppendsBeforeTheHeadRead(bind=sessions.kw["bind"]) as reader:
        verdict = await audit.verify(reader)
    assert appended
    assert verdict.ok, verdict
    assert verdict.entries >= 4


async def test_an_entry_past_the_head_is_named(sessions: Sessions) -> None:
    for n in range(2):
        await _append(sessions, f"entry.{n}")
    async with sessions() as s:
        last = (
            (await s.execute(select(AuditEntry).order_by(AuditEntry.seq.desc()))).scalars().first()
        )
        assert last is not None
        head_seq = last.seq
        await _append(sessions, "forged")
        # Put the head back, as if the last entry had been inserted behind its back.
        await s.execute(
            update(AuditHead)
            .where(AuditHead.head_id == 1)
            .values(last_seq=head_seq, last_hash=last.entry_hash)
        )
        await s.commit()
    async with sessions() as s:
        verdict = await audit.verify(s)
    assert not verdict.ok
    assert verdict.first_bad_seq == head_seq + 1, verdict
    assert "past the chain's head" in (verdict.problem or "")
