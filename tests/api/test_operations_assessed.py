"""Every operation kind is consulted (SQLite and PostgreSQL): counter operations are
allowed on plain words, and raise a review with the scam named when the customer's
words tell a scam story or mention screen sharing."""

from __future__ import annotations

from typing import Any

from server.operations.assessment import RISK_FIELDS, risk_operation
from server.operations.state import RISK_CHECKED, Kind
from tests.api.harness import Api, RunningServer
from tests.api.test_operations import active_call, pin_morning


def test_every_kind_has_an_entry_in_the_assessment_table() -> None:
    assert set(RISK_FIELDS) == set(Kind) == set(RISK_CHECKED)
    op = risk_operation(
        "time_deposit",
        {
            "action": "break",
            "deposit_id": "TD1",
            "amount": "150000.00",
            "currency": "CNY",
            "term_months": 36,
            "interest_forfeited": "2400.00",
        },
    )
    assert (op.deposit_action, op.term_months, str(op.interest_forfeited)) == (
        "break",
        36,
        "2400.00",
    )
    assert risk_operation("teleport", {"x": 1}).kind == "teleport"  # the engine fails it safe


async def _start(desk: Any, call_id: str, kind: str, params: dict[str, Any], said: str) -> Any:
    reply = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {"kind": kind, "params": params, "customer_statement": said},
    )
    assert reply.status == 201, reply
    return reply.body


async def test_a_scam_story_stops_a_balance_inquiry_for_review(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, desk_ws, _, customer_ws, call_id = await active_call(api)
    op = await _start(
        desk, call_id, "balance_inquiry", {}, "检察院的人让我查一下余额，说要配合资金核查"
    )
    assert op["state"] == "awaiting_review" and op["risk"]["decision"] == "review", op["risk"]
    assert op["risk"]["typology"] in ("authority_impersonation", "safe_account")
    popup = await desk_ws.expect("risk.popup", operation_id=op["operation_id"])
    assert popup["reasons"][0]["code"] == "scam_named"
    warning = await customer_ws.expect("risk.warning", operation_id=op["operation_id"])
    assert "scam" in warning["text"]["en"] and "骗局" in warning["text"]["zh"]
    assert op["result"] is None  # nothing was shown before the review


async def test_plain_counter_operations_are_allowed(api: Api, server: RunningServer) -> None:
    pin_morning(server)
    desk, _, _, _, call_id = await active_call(api)
    balance = await _start(desk, call_id, "balance_inquiry", {}, "看看退休金到了没有")
    assert balance["state"] == "executed" and balance["risk"]["decision"] == "allow"
    card = await _start(desk, call_id, "card_activation", {}, "新卡寄到了，帮我激活")
    assert card["risk"]["decision"] == "allow" and card["state"] == "awaiting_confirmation"


async def test_screen_sharing_stops_a_password_reset(api: Api, server: RunningServer) -> None:
    pin_morning(server)
    desk, _, _, _, call_id = await active_call(api)
    op = await _start(
        desk, call_id, "password_reset", {"channel": "mobile"}, "客服在和我共享屏幕，让我重置密码"
    )
    assert op["state"] == "awaiting_review", op["risk"]
    codes = [r["code"] for r in op["risk"]["reasons"]]
    assert "remote_control_at_counter" in codes and op["risk"]["typology"] == "remote_control"


async def test_breaking_a_deposit_for_a_guaranteed_project_is_reviewed(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, _, _, _, call_id = await active_call(api)
    balance = await _start(desk, call_id, "balance_inquiry", {}, "查一下定期")
    deposits = balance["result"]["time_deposits"]
    assert deposits, balance["result"]
    deposit_id = deposits[0]["deposit_id"]
    op = await _start(
        desk,
        call_id,
        "time_deposit",
        {"action": "break", "deposit_id": deposit_id},
        "提前取出来投一个养老项目，保本保息",
    )
    assert op["state"] == "awaiting_review", op["risk"]
    assert op["risk"]["typology"] == "investment_scheme"
    # Nothing was broken: the deposit is still open.
    again = await _start(desk, call_id, "balance_inquiry", {}, "再查一下")
    states = {d["deposit_id"]: d["state"] for d in again["result"]["time_deposits"]}
    assert states[deposit_id] == "open"
