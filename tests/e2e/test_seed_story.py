"""The seed stories, end to end through the public API with aiortc parties.

Grandma Li (C1001, 78) calls in to move 50,000 yuan "to herself" at another bank
because a caller told her about a "WeChat account million protection plan": the
desk gets the pop-up, she gets a warning she can understand, the specialist
blocks, no money moves, and the audit chain verifies.

Grandpa Wu (C1002, 83) sends his son, a payee of eight years, money after his
pension came in: it proceeds to his own confirmation and executes, and his
balance moves by exactly the amount.
"""

from __future__ import annotations

from decimal import Decimal

import pytest
from sqlalchemy import select

from server.db.banking import Payee, Posting, Transfer, WarningShown
from tests.api.harness import Api, RunningServer
from tests.api.test_operations import pin_morning
from tests.e2e.stories import active_call, balances, db_rows

pytestmark = pytest.mark.media


async def test_protection_plan_scam_is_blocked_and_no_money_moves(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, customer, call_id = await active_call(api, "chen.li", "C1001")
    try:
        before = await balances(server, "C1001")
        started = await desk.party.post(
            f"/api/v1/calls/{call_id}/operations",
            {
                "kind": "transfer",
                "params": {
                    "amount": "50000.00",
                    "currency": "CNY",
                    "payee_account": "6217000099998888",
                    "payee_name": "李秀英",
                    "payee_bank": "CCB",
                },
                "customer_statement": "客服说微信百万保障计划要关闭，要把钱转到我自己的安全账户",
            },
        )
        assert started.status == 201, started
        operation = started.body
        op_id = operation["operation_id"]
        # The engine may block outright; the story must hold either way.
        assert operation["risk"]["decision"] in ("review", "hold", "block")
        assert {"safe_account_pattern", "typology_protection_plan"} <= {
            r["code"] for r in operation["risk"]["reasons"]
        }
        codes = {r["code"] for r in operation["risk"]["reasons"]}
        assert codes, "the desk must see why"

        popup = await desk.expect("risk.popup", operation_id=op_id)
        assert popup["reasons"] and all(r["specialist_text"] for r in popup["reasons"])
        assert any(r["questions"] for r in popup["reasons"]), "scripted questions for the desk"
        warning = await customer.expect("risk.warning", operation_id=op_id)
        assert warning["text"]["zh"] and warning["text"]["en"]
        await customer.send_raw({"type": "risk.warning_shown", "operation_id": op_id})

        # The customer cannot confirm past a review, a hold or a block.
        confirm = await customer.party.post(
            f"/api/v1/operations/{op_id}/confirm", {"confirmed": True}
        )
        assert confirm.status == 409, confirm
        if operation["state"] != "blocked":
            blocked = await desk.party.post(
                f"/api/v1/operations/{op_id}/review",
                {"action": "block", "note": "protection plan call: telecom fraud; 96110 informed"},
            )
            assert blocked.status == 200, blocked
            assert blocked.body["state"] == "blocked"
            assert blocked.body["referral"][0]["number"] == "96110"
        listed = await desk.party.post(
            "/api/v1/risk/blocked-payees",
            {
                "account_no": "6217000099998888",
                "reason": "safe-account scam",
                "operation_id": op_id,
            },
        )
        assert listed.status == 201, listed

        assert await balances(server, "C1001") == before, "no money moved"
        assert not await db_rows(server, select(Transfer).where(Transfer.operation_id == op_id))
        shown = await db_rows(
            server,
            select(WarningShown.text, WarningShown.shown_at).where(
                WarningShown.operation_id == op_id
            ),
        )
        assert shown and shown[0][0]["zh"] == warning["text"]["zh"]
        view = await customer.party.get(f"/api/v1/operations/{op_id}")
        assert view.body["state"] == "blocked"
        assert "specialist_text" not in view.body["risk"]["reasons"][0]

        supervisor = await api.supervisor()
        verified = await supervisor.get("/api/v1/audit/verify")
        assert verified.body["ok"] is True, verified.body
        for _ in range(50):
            if any(
                row[1] is not None
                for row in await db_rows(
                    server,
                    select(WarningShown.text, WarningShown.shown_at).where(
                        WarningShown.operation_id == op_id
                    ),
                )
            ):
                break
            await desk.peer.wait_for_frames(1, timeout=1)  # type: ignore[union-attr]
        else:
            raise AssertionError("the app's acknowledgement of the warning was not recorded")
    finally:
        await desk.close()
        await customer.close()


async def test_pension_day_transfer_to_a_long_known_son_executes(
    api: Api, server: RunningServer
) -> None:
    son = (
        await db_rows(
            server,
            select(Payee.account_no, Payee.name, Payee.bank).where(
                Payee.customer_id == "C1002", Payee.relation == "family"
            ),
        )
    )[0]
    pin_morning(server)
    desk, customer, call_id = await active_call(api, "zhou.min", "C1002")
    try:
        before = await balances(server, "C1002")
        started = await desk.party.post(
            f"/api/v1/calls/{call_id}/operations",
            {
                "kind": "transfer",
                "params": {
                    "amount": "20000.00",
                    "currency": "CNY",
                    "payee_account": son[0],
                    "payee_name": son[1],
                    "payee_bank": son[2],
                },
                "customer_statement": "给儿子的生活费，每个月都转",
            },
        )
        assert started.status == 201, started
        op_id = started.body["operation_id"]
        assert started.body["risk"]["decision"] in ("allow", "warn"), started.body["risk"]
        assert started.body["state"] == "awaiting_confirmation"
        request = await customer.expect("operation.confirm_request", operation_id=op_id)
        assert "20,000.00" in request["summary"]["zh"]

        confirmed = await customer.party.post(
            f"/api/v1/operations/{op_id}/confirm", {"confirmed": True}
        )
        assert confirmed.status == 200, confirmed
        assert confirmed.body["state"] == "executed", confirmed.body
        updated = await desk.expect("operation.updated")
        assert updated["operation"]["operation_id"] == op_id

        after = await balances(server, "C1002")
        moved = {k: before[k] - after[k] for k in before if before[k] != after[k]}
        assert list(moved.values()) == [Decimal("20000.00")], moved
        postings = await db_rows(
            server,
            select(Posting.amount)
            .join(Transfer, Transfer.transfer_id == Posting.transfer_id)
            .where(Transfer.operation_id == op_id),
        )
        assert sum(Decimal(p[0]) for p in postings) == 0

        # Confirming twice executes once.
        again = await customer.party.post(
            f"/api/v1/operations/{op_id}/confirm", {"confirmed": True}
        )
        assert again.status == 409
        assert await balances(server, "C1002") == after

        supervisor = await api.supervisor()
        assert (await supervisor.get("/api/v1/audit/verify")).body["ok"] is True
    finally:
        await desk.close()
        await customer.close()
