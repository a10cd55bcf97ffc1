"""Helpers for the counter's operation kinds in API and end-to-end tests.

:func:`through_review` answers the engine's scripted questions when an
operation is reviewed, so a test asserts what the kind does whether the
ruleset allows it outright or asks the specialist first.
"""

from __future__ import annotations

from typing import Any

from tests.api.harness import Party


async def start(desk: Party, call_id: str, kind: str, params: dict[str, Any]) -> Any:
    return await desk.post(f"/api/v1/calls/{call_id}/operations", {"kind": kind, "params": params})


async def through_review(desk: Party, op: dict[str, Any]) -> dict[str, Any]:
    """The operation past any review: every scripted question answered, proceed."""
    if op["state"] != "awaiting_review":
        return op
    answers = {
        f"{reason['code']}.{n}": "客户本人在视频中当面办理，无人指使"
        for reason in op["risk"]["reasons"]
        for n, _ in enumerate(reason.get("questions") or [], start=1)
    }
    reply = await desk.post(
        f"/api/v1/operations/{op['operation_id']}/review",
        {"action": "proceed", "answers": answers},
    )
    assert reply.status == 200, reply
    body: dict[str, Any] = reply.body
    return body


async def run(
    desk: Party,
    customer: Party,
    customer_ws: Any,  # a harness Socket or an e2e MediaClient: both have expect()
    call_id: str,
    kind: str,
    params: dict[str, Any],
) -> dict[str, Any]:
    """Start ``kind``, pass any review, check the confirmation request, confirm; the
    executed operation (or the failed one, for a refusal at execution)."""
    started = await start(desk, call_id, kind, params)
    assert started.status == 201, started
    op = await through_review(desk, started.body)
    if op["state"] == "executed":  # read-only kinds allowed outright run at once
        return op
    assert op["state"] == "awaiting_confirmation", op
    request = await customer_ws.expect(
        "operation.confirm_request", operation_id=op["operation_id"], timeout=10
    )
    assert request["summary"]["zh"] and request["summary"]["en"], request
    confirmed = await customer.post(
        f"/api/v1/operations/{op['operation_id']}/confirm", {"confirmed": True}
    )
    assert confirmed.status == 200, confirmed
    body: dict[str, Any] = confirmed.body
    return body
