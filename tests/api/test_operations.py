"""In-call operations through the API (SQLite and PostgreSQL): who may do what,
reviews that need answers, holds released by a specialist, the customer's refusal,
and a redirect's attempted transfer turning into a pending operation."""

from __future__ import annotations

import hashlib
import hmac
import json
import time
from datetime import datetime
from typing import Any
from zoneinfo import ZoneInfo

import pytest

from server.appkeys import OPERATIONS
from tests.api.harness import Api, Party, RunningServer, Socket

SCAM_TRANSFER = {
    "amount": "50000.00",
    "currency": "CNY",
    "payee_account": "6217000099998888",
    "payee_name": "李秀英",
    "payee_bank": "CCB",
}
STATEMENT = "说是微信百万保障计划，要转到自己的安全账户"
# To a payee never paid before, for furniture: at 10:00 local time the default
# ruleset reviews 15,000 and holds 30,000 for this customer (night hours would
# add points, so the operations clock is pinned to the morning).
NEW_PAYEE = {
    "currency": "CNY",
    "payee_account": "6217000011112222",
    "payee_name": "王强",
    "payee_bank": "CCB",
}
FURNITURE = "买家具"


def pin_morning(server: RunningServer) -> None:
    """Run the operations service's clock at 10:00 in Shanghai today."""
    shanghai = ZoneInfo("Asia/Shanghai")
    morning = datetime.now(shanghai).replace(hour=10, minute=0, second=0, microsecond=0)
    offset = morning.timestamp() - time.time()
    server.app[OPERATIONS].clock = lambda: time.time() + offset


@pytest.fixture
def server_settings() -> dict[str, Any]:
    return {"redirect_secret": "test-redirect-secret"}


async def active_call(
    api: Api,
    username: str = "chen.li",
    customer_id: str = "C1001",
    body: dict[str, Any] | None = None,
) -> tuple[Party, Socket, Party, Socket, str]:
    """A call answered by ``username``, made active by both parties reporting media."""
    desk, desk_ws = await api.available_specialist(username)
    customer = await api.customer(customer_id)
    customer_ws = await customer.connect()
    created = await customer.post("/api/v1/calls", body or {})
    assert created.status == 201, created
    call_id = created.body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    accepted = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200, accepted
    await desk_ws.expect("media.start", call_id=call_id)
    await customer_ws.expect("media.start", call_id=call_id)
    for ws in (desk_ws, customer_ws):
        await ws.send({"type": "media.state", "call_id": call_id, "state": "connected"})
    for _ in range(100):
        if (await customer.get(f"/api/v1/calls/{call_id}")).body["state"] == "active":
            break
        await desk_ws.send({"type": "ping"})
        await desk_ws.expect("pong")
    return desk, desk_ws, customer, customer_ws, call_id


async def test_only_the_specialist_holding_an_active_call_starts_operations(api: Api) -> None:
    desk, _, customer, _, call_id = await active_call(api)
    other_desk = await api.specialist("zhang.jun")
    body = {"kind": "balance_inquiry", "params": {}}
    assert (await other_desk.post(f"/api/v1/calls/{call_id}/operations", body)).status == 404
    assert (await customer.post(f"/api/v1/calls/{call_id}/operations", body)).status == 403
    done = await desk.post(f"/api/v1/calls/{call_id}/operations", body)
    assert done.status == 201 and done.body["state"] == "executed", done
    assert done.body["result"]

    # Another customer cannot see it; its own customer can.
    op_id = done.body["operation_id"]
    stranger = await api.customer("C1009")
    assert (await stranger.get(f"/api/v1/operations/{op_id}")).status == 404
    assert (await customer.get(f"/api/v1/operations/{op_id}")).status == 200

    # After the conversation ends, no more operations.
    await desk.post(f"/api/v1/calls/{call_id}/end")
    late = await desk.post(f"/api/v1/calls/{call_id}/operations", body)
    assert late.status == 409 and late.code == "call_not_active"


async def test_operations_need_an_active_call(api: Api) -> None:
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1001")
    call_id = (await customer.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    connecting = await desk.post(
        f"/api/v1/calls/{call_id}/operations", {"kind": "balance_inquiry", "params": {}}
    )
    assert connecting.status == 409 and connecting.code == "call_not_active"


async def test_review_needs_every_answer_and_the_customer_still_confirms(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, desk_ws, customer, customer_ws, call_id = await active_call(api)
    started = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {
            "kind": "transfer",
            "params": {**NEW_PAYEE, "amount": "15000.00"},
            "customer_statement": FURNITURE,
        },
    )
    assert started.status == 201, started
    op = started.body
    assert op["risk"]["decision"] == "review" and op["state"] == "awaiting_review", op["risk"]
    op_id = op["operation_id"]
    popup = await desk_ws.expect("risk.popup", operation_id=op_id)
    await customer_ws.expect("risk.warning", operation_id=op_id)
    questions = [q for r in popup["reasons"] for q in r["questions"]]
    assert questions

    # Proceeding without answers is refused; the operation is untouched.
    bare = await desk.post(f"/api/v1/operations/{op_id}/review", {"action": "proceed"})
    assert bare.status == 422 and bare.code == "answers_required"
    assert (await desk.get(f"/api/v1/operations/{op_id}")).body["state"] == "awaiting_review"

    # The customer cannot confirm before the review is answered.
    early = await customer.post(f"/api/v1/operations/{op_id}/confirm", {"confirmed": True})
    assert early.status == 409

    answers = {q: "客户说明了情况" for q in questions}
    proceeded = await desk.post(
        f"/api/v1/operations/{op_id}/review", {"action": "proceed", "answers": answers}
    )
    assert proceeded.status == 200 and proceeded.body["state"] == "awaiting_confirmation"
    assert proceeded.body["review"]["answers"] == answers
    await customer_ws.expect("operation.confirm_request", operation_id=op_id)

    # The willingness check: the customer says no, nothing executes.
    refused = await customer.post(f"/api/v1/operations/{op_id}/confirm", {"confirmed": False})
    assert refused.status == 200 and refused.body["state"] == "rejected"
    assert refused.body["result"] is None


async def test_hold_is_released_only_by_a_specialist_with_a_note(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, _, customer, customer_ws, call_id = await active_call(api)
    started = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {
            "kind": "transfer",
            "params": {**NEW_PAYEE, "amount": "30000.00"},
            "customer_statement": FURNITURE,
        },
    )
    assert started.status == 201, started
    assert started.body["state"] == "held", started.body["risk"]
    assert started.body["hold_until"]
    op_id = started.body["operation_id"]
    warning = await customer_ws.expect("risk.warning", operation_id=op_id)
    assert "24" in warning["text"]["zh"]

    # The call ends; the hold stays, and the customer cannot confirm it.
    await desk.post(f"/api/v1/calls/{call_id}/end")
    assert (await desk.get(f"/api/v1/operations/{op_id}")).body["state"] == "held"
    nope = await customer.post(f"/api/v1/operations/{op_id}/confirm", {"confirmed": True})
    assert nope.status == 409

    # Another specialist releases it later, with a note; a bare release is refused.
    other = await api.specialist("wang.fang")
    bare = await other.post(f"/api/v1/operations/{op_id}/review", {"action": "proceed"})
    assert bare.status == 422
    released = await other.post(
        f"/api/v1/operations/{op_id}/review",
        {"action": "proceed", "note": "daughter confirmed the account is hers"},
    )
    assert released.status == 200 and released.body["state"] == "awaiting_confirmation"


async def test_bad_operation_input_is_a_4xx(api: Api) -> None:
    desk, _, _, _, call_id = await active_call(api)
    path = f"/api/v1/calls/{call_id}/operations"
    for body in [
        {"kind": "teleport", "params": {}},
        {"kind": "transfer", "params": {"amount": "-5", "payee_account": "1", "payee_name": "x"}},
        {"kind": "transfer", "params": {**SCAM_TRANSFER, "amount": "1.234"}},
        {"kind": "transfer", "params": {**SCAM_TRANSFER, "payee_account": "abc"}},
        {"kind": "limit_change", "params": {"channel": "moon", "new_limit": "1"}},
        {"kind": "time_deposit", "params": {"action": "open"}},
        {"kind": "transfer", "params": SCAM_TRANSFER, "extra": 1},
        {"kind": "transfer", "params": "nope"},
    ]:
        reply = await desk.post(path, body)
        assert reply.status == 422, (body, reply)
    for path, body in [
        ("/api/v1/operations/nope/review", {"action": "proceed"}),
        ("/api/v1/operations/nope/review", {"action": "dance"}),
        ("/api/v1/operations/nope", None),
    ]:
        reply = await desk.request("POST" if body else "GET", path, body)
        assert 400 <= reply.status < 500, (path, reply)


async def test_a_specialist_can_also_hold_from_a_review(api: Api, server: RunningServer) -> None:
    pin_morning(server)
    desk, _, _, customer_ws, call_id = await active_call(api)
    started = await desk.post(
        f"/api/v1/calls/{call_id}/operations",
        {
            "kind": "transfer",
            "params": {**NEW_PAYEE, "amount": "15000.00"},
            "customer_statement": FURNITURE,
        },
    )
    op_id = started.body["operation_id"]
    held = await desk.post(
        f"/api/v1/operations/{op_id}/review", {"action": "hold", "note": "wants to ask her son"}
    )
    assert held.status == 200 and held.body["state"] == "held" and held.body["hold_until"]
    # The customer hears why it is paused: the review's warning, then the hold's.
    await customer_ws.expect("risk.warning", operation_id=op_id)
    second = await customer_ws.expect("risk.warning", operation_id=op_id)
    assert "24" in second["text"]["zh"]


async def test_redirected_transfer_becomes_a_pending_operation_when_active(api: Api) -> None:
    body = json.dumps(
        {
            "event_id": "evt-transfer-1",
            "customer_id": "C1001",
            "kind": "transfer_over_limit",
            "context": SCAM_TRANSFER,
        }
    ).encode()
    stamp = str(int(time.time()))
    signature = hmac.new(b"test-redirect-secret", stamp.encode() + b"." + body, hashlib.sha256)
    reply = await api.request(
        "POST",
        "/api/v1/redirects",
        headers={
            "Content-Type": "application/json",
            "X-CB-Timestamp": stamp,
            "X-CB-Signature": "sha256=" + signature.hexdigest(),
        },
        data=body,
    )
    assert reply.status == 201, reply
    _desk, desk_ws, _, _, call_id = await active_call(api, body={"ticket": reply.body["ticket"]})
    # It may have arrived while the call was being made active: the harness keeps
    # every message it read.
    seen = [m for m in desk_ws.received if m.get("type") == "operation.updated"]
    updated = seen[0] if seen else await desk_ws.expect("operation.updated", timeout=10)
    operation = updated["operation"]
    assert operation["call_id"] == call_id and operation["origin"] == "redirect"
    assert operation["kind"] == "transfer" and operation["params"]["amount"] == "50000.00"
    assert operation["risk"]["decision"] in ("review", "hold", "block")
