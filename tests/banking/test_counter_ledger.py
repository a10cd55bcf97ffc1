"""The counter's kinds on the ledger itself (SQLite and PostgreSQL): executed once
per operation id, refusals leave nothing behind, certificates are stored once."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.banking import ExecutionFailed, SqlLedger
from server.banking.documents import DocumentStore
from server.db.banking import Document, LossReport, Passbook
from server.operations.state import Kind
from server.ports import Transaction

from .helpers import op_id

Sessions = async_sessionmaker[AsyncSession]


async def _execute(
    sessions: Sessions, ledger: SqlLedger, operation_id: str, kind: str, params: dict[str, Any]
) -> dict[str, Any]:
    async with sessions() as s:
        result = await ledger.execute(
            Transaction(s), operation_id, "C1021", kind, params, datetime.now(UTC)
        )
        await s.commit()
    return result


async def _count(sessions: Sessions, model: Any) -> int:
    """Rows of ``model`` for C1021 (every test here is about her)."""
    async with sessions() as s:
        query = select(func.count()).select_from(model).where(model.customer_id == "C1021")
        return int(await s.scalar(query) or 0)


async def test_a_loss_report_executes_once_even_when_raced(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    params = {"medium": "passbook", "stage": "temporary"}
    same = op_id()
    first, second = await asyncio.gather(
        _execute(sessions, ledger, same, "loss_report", params),
        _execute(sessions, ledger, same, "loss_report", params),
    )
    assert first == second and first["blocked"] is True
    assert await _count(sessions, LossReport) == 1
    # A different operation on the reported passbook is refused, and nothing is written.
    with pytest.raises(ExecutionFailed) as caught:
        await _execute(sessions, ledger, op_id(), "loss_report", params)
    assert caught.value.reason_code == "already_reported"
    assert await _count(sessions, LossReport) == 1
    with pytest.raises(ExecutionFailed) as replaced_early:
        await _execute(sessions, ledger, op_id(), "replacement", {"medium": "passbook"})
    assert replaced_early.value.reason_code == "loss_report_not_formal"
    assert await _count(sessions, Passbook) == 1


async def test_a_certificate_is_stored_once_per_operation(
    sessions: Sessions, tmp_path: Path
) -> None:
    ledger = SqlLedger(documents=DocumentStore(tmp_path))
    same = op_id()
    first = await _execute(sessions, ledger, same, "certificate", {"type": "deposit"})
    again = await _execute(sessions, ledger, same, "certificate", {"type": "deposit"})
    assert first == again
    assert await _count(sessions, Document) == 1
    assert len(await asyncio.to_thread(lambda: list(tmp_path.rglob("*.pdf")))) == 1
    assert float(first["total"]) > 0


def test_the_ledger_executes_every_operation_kind_of_the_api() -> None:
    assert SqlLedger().kinds == {kind.value for kind in Kind}
