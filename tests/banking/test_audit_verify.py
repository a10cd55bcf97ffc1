"""The audit chain's verification while entries are being appended, and against
an entry slipped in past the head; appends from many sessions at once, chained
as the last statements of their transactions (real databases: SQLite and
PostgreSQL)."""

from __future__ import annotations

import asyncio
import time
from typing import Any

from sqlalchemy import Select, event, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server import audit
from server.db.banking import AuditEntry, AuditHead
from server.db.models import Customer

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


async def _chain_length(sessions: Sessions) -> int:
    async with sessions() as s:
        verdict = await audit.verify(s)
    assert verdict.ok, verdict
    return verdict.entries


async def test_concurrent_appends_from_many_sessions_keep_one_verifiable_chain(
    sessions: Sessions,
) -> None:
    before = await _chain_length(sessions)

    async def writer(n: int) -> None:
        for k in range(5):
            async with sessions() as s:
                await audit.record(s, f"w{n}.{k}", at=time.time(), data={"n": n})
                # Two entries in one transaction stay adjacent in the chain.
                await audit.record(s, f"w{n}.{k}.b", at=time.time())
                await s.commit()

    await asyncio.gather(*(writer(n) for n in range(8)))
    assert await _chain_length(sessions) == before + 8 * 5 * 2
    async with sessions() as s:
        kinds = (await s.execute(select(AuditEntry.kind).order_by(AuditEntry.seq))).scalars()
        listed = list(kinds)
    for n in range(8):
        for k in range(5):
            at = listed.index(f"w{n}.{k}")
            assert listed[at + 1] == f"w{n}.{k}.b"


async def test_the_head_is_taken_last_and_rolled_back_entries_are_not_chained(
    sessions: Sessions,
) -> None:
    before = await _chain_length(sessions)
    statements: list[str] = []

    def seen(_conn: Any, _cursor: Any, statement: str, *_args: Any) -> None:
        statements.append(statement.split()[0].upper() + " " + statement.split()[1])

    engine = sessions.kw["bind"].sync_engine
    event.listen(engine, "before_cursor_execute", seen)
    try:
        async with sessions() as s:
            await audit.record(s, "kept", at=time.time())
            await s.execute(
                update(Customer).where(Customer.customer_id == "C1001").values(age=Customer.age)
            )
            statements.clear()
            await audit.record(s, "kept.too", at=time.time())
            await s.execute(
                update(Customer).where(Customer.customer_id == "C1002").values(age=Customer.age)
            )
            try:
                async with s.begin_nested():
                    await audit.record(s, "undone", at=time.time())
                    raise RuntimeError("the savepoint's work fails")
            except RuntimeError:
                pass
            await s.commit()
    finally:
        event.remove(engine, "before_cursor_execute", seen)
    heads = [i for i, text in enumerate(statements) if "audit_head" in text.lower()]
    customers = [i for i, text in enumerate(statements) if "customers" in text.lower()]
    assert heads and customers and max(customers) < min(heads), statements

    async with sessions() as s:
        await audit.record(s, "abandoned", at=time.time())
        await s.rollback()
    assert await _chain_length(sessions) == before + 2
    async with sessions() as s:
        kinds = set((await s.execute(select(AuditEntry.kind))).scalars())
    assert {"kept", "kept.too"} <= kinds
    assert not kinds & {"undone", "abandoned"}
