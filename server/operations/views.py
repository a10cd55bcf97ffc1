"""How operations look on the wire, per role."""

from __future__ import annotations

from typing import Any

from server.auth.principal import Role
from server.calls.views import iso
from server.db.banking import Operation

# What a desk shows when the engine blocks: the customer is referred, not just refused.
REFERRAL_STEPS = [
    {
        "number": "96110",
        "zh": "请客户拨打 96110 全国反诈专线，或由您帮助转接。",
        "en": "Refer the customer to the national anti-fraud line 96110, or transfer them.",
    },
    {
        "number": "110",
        "zh": "如客户已转出资金或正受到威胁，请立即报警 110。",
        "en": "If money has already left or the customer is being threatened, call 110 now.",
    },
]


def risk_view(risk: dict[str, Any] | None, viewer: Role) -> dict[str, Any] | None:
    if risk is None:
        return None
    if viewer is Role.CUSTOMER:
        # The customer sees the decision and the plain-words warnings, not the
        # desk's reasoning or its interview questions.
        return {
            "decision": risk["decision"],
            "reasons": [
                {"code": r["code"], "customer_text": r["customer_text"]} for r in risk["reasons"]
            ],
        }
    return risk


def operation_view(op: Operation, viewer: Role) -> dict[str, Any]:
    view: dict[str, Any] = {
        "operation_id": op.operation_id,
        "call_id": op.call_id,
        "kind": op.kind,
        "state": op.state,
        "params": op.params,
        "risk": risk_view(op.risk, viewer),
        "result": op.result,
        "failure_reason": op.failure_reason,
        "hold_until": iso(op.hold_until),
        "created_at": iso(op.created_at),
        "updated_at": iso(op.updated_at),
        "origin": op.origin,
    }
    if viewer is not Role.CUSTOMER:
        view["customer_statement"] = op.customer_statement
        view["review"] = op.review
        view["confirmation"] = op.confirmation
        if op.state == "blocked":
            view["referral"] = REFERRAL_STEPS
    return view
