"""Money moves only inside a live call (SQLite and PostgreSQL).

The executing update itself requires the call to be in conversation, so a
confirmation that arrives after the hang-up never executes, even when the
hang-up's cancellation of pending operations did not happen; and a hang-up
racing a confirmation either lets the confirmation finish first (the transfer
happened during the call) or refuses it, never executes after the end.
"""

from __future__ import annotations

import asyncio
from decimal import Decimal

from sqlalchemy import select, update

from server.db.banking import Account, AuditEntry, Operation, Payee
from server.db.engine import make_engine
from tests.api.harness import Api, Party, RunningServer
from tests.api.test_operations import active_call, pin_morning


async def _son_of_c1002(server: RunningServer) -> dict[str, str]:
    engine = make_engine(server.settings.database_url)
    try:
        async with engine.connect() as conn:
            row = (
                await conn.execute(
                    select(Payee.account_no, Payee.name, Payee.bank).where(
                        Payee.customer_id == "C1002", Payee.relation == "family"
                    )
                )
            ).first()
    finally:
        await engine.dispose()
    assert row is not None
    return {
        "amount": "100.00",
        "currency": "CNY",
        "payee_account": row[0],
        "payee_name": row[1],
        "payee_bank": row[2],
    }


async def _balance(server: RunningServer) -> Decimal:
    engine = make_engine(server.settings.database_url)
    try:
        async with engine.connect() as conn:
            rows = await conn.execute(select(Account.balance).where(Account.customer_id == "C1002"))
            return sum((Decimal(b) for (b,) in rows), Decimal(0))
    finally:
        await engine.dispose()


async def _pending_transfer(desk: Party, call_id: str, params: dict[str, str]) -> str:
    started = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {"kind": "transfer", "params": params, "customer_statement": "给儿子的生活费"},
    )
    assert started.status == 201, started
    op_id: str = started.body["operation_id"]
    if started.body["state"] == "awaiting_review":
        # Repeated transfers within a day are reviewed: the desk answers and proceeds.
        questions = [q for r in started.body["risk"]["reasons"] for q in r["questions"]]
        answers = {q: "客户说明了情况" for q in questions}
        reviewed = await desk.post(
            f"/api/v1/operations/{op_id}/review", {"action": "proceed", "answers": answers}
        )
        assert reviewed.status == 200, reviewed
        assert reviewed.body["state"] == "awaiting_confirmation", reviewed.body
    else:
        assert started.body["state"] == "awaiting_confirmation", started.body
    return op_id


async def test_a_confirm_after_the_hang_up_never_executes(api: Api, server: RunningServer) -> None:
    pin_morning(server)
    params = await _son_of_c1002(server)
    desk, _desk_ws, customer, _customer_ws, call_id = await active_call(api, "zhou.min", "C1002")
    op_id = await _pending_transfer(desk, call_id, params)
    before = await _balance(server)

    assert (await customer.request("DELETE", f"/api/v1/calls/{call_id}")).status == 204
    # As if the hang-up's cancellation had failed: the operation is still pending.
    engine = make_engine(server.settings.database_url)
    try:
        async with engine.begin() as conn:
            await conn.execute(
                update(Operation)
                .where(Operation.operation_id == op_id)
                .values(state="awaiting_confirmation", failure_reason=None)
            )
    finally:
        await engine.dispose()

    late = await customer.post(f"/api/v1/operations/{op_id}/confirm", {"confirmed": True})
    assert late.status == 409 and late.body["code"] == "call_not_active", late
    assert await _balance(server) == before, "no money moved after the hang-up"


async def test_a_hang_up_racing_a_confirm_never_moves_money_after_the_end(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    params = await _son_of_c1002(server)
    outcomes: list[str] = []
    for _round in range(4):
        before = await _balance(server)
        desk, desk_ws, customer, customer_ws, call_id = await active_call(api, "zhou.min", "C1002")
        op_id = await _pending_transfer(desk, call_id, params)
        confirm, hang_up = await asyncio.gather(
            customer.post(f"/api/v1/operations/{op_id}/confirm", {"confirmed": True}),
            customer.request("DELETE", f"/api/v1/calls/{call_id}"),
        )
        assert hang_up.status == 204, hang_up
        assert confirm.status in (200, 409), confirm
        after = await _balance(server)
        operation = (await desk.get(f"/api/v1/operations/{op_id}")).body
        if operation["state"] == "executed":
            # The confirmation won the race: the audit chain (one order for
            # everything) has the execution before the end of the conversation.
            engine = make_engine(server.settings.database_url)
            try:
                async with engine.connect() as conn:
                    ended_seq = await conn.scalar(
                        select(AuditEntry.seq).where(
                            AuditEntry.subject_id == call_id,
                            AuditEntry.kind == "call.conversation_ended",
                        )
                    )
                    executed_seq = await conn.scalar(
                        select(AuditEntry.seq).where(
                            AuditEntry.subject_id == op_id,
                            AuditEntry.kind == "operation.executed",
                        )
                    )
            finally:
                await engine.dispose()
            assert ended_seq is not None and executed_seq is not None
            assert executed_seq < ended_seq, "executed after the conversation ended"
            assert after == before - Decimal(params["amount"])
        else:
            assert operation["state"] == "rejected", operation
            assert after == before, "a refused confirmation moved money"
        outcomes.append(operation["state"])
        wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "served"})
        assert wrapped.status == 200, wrapped
        await desk_ws.close()
        await customer_ws.close()
    assert len(outcomes) == 4
