"""What the desk and the customer are told about an operation, and the words used.

The desk gets ``operation.updated`` on every change and ``risk.popup`` when the
engine wants a specialist's judgement; the customer gets ``risk.warning`` in
plain words (recorded as sent, and as shown once the app says so) and
``operation.confirm_request`` when only their own yes is missing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from server.auth.principal import Role
from server.db.banking import Operation, WarningShown
from server.ports import Notifier

from .audit_trail import audit_operation
from .params import summary
from .state import Kind, OperationState
from .views import REFERRAL_STEPS, operation_view


async def announce(
    hub: Notifier, sessions: async_sessionmaker[AsyncSession], op: Operation, now: float
) -> None:
    """Tell the desk and the customer what the new (or changed) operation needs."""
    await desk_update(hub, op)
    state = OperationState(op.state)
    decision = op.risk["decision"] if op.risk else None
    if decision in ("review", "block", "hold") and op.risk is not None and op.specialist_id:
        popup: dict[str, Any] = {
            "type": "risk.popup",
            "operation_id": op.operation_id,
            "decision": decision,
            "reasons": op.risk["reasons"],
            "score": op.risk["score"],
        }
        if decision == "block":
            popup["referral"] = REFERRAL_STEPS
        await hub.send(Role.SPECIALIST, op.specialist_id, popup)
    if decision in ("warn", "review", "hold", "block"):
        await warn_customer(hub, sessions, op, now)
    if state is OperationState.AWAITING_CONFIRMATION:
        await request_confirmation(hub, op)


async def desk_update(hub: Notifier, op: Operation) -> None:
    if op.specialist_id:
        await hub.send(
            Role.SPECIALIST,
            op.specialist_id,
            {"type": "operation.updated", "operation": operation_view(op, Role.SPECIALIST)},
        )


async def warn_customer(
    hub: Notifier, sessions: async_sessionmaker[AsyncSession], op: Operation, now: float
) -> None:
    assert op.risk is not None
    text = warning_text(op.risk, op.state, op.hold_until)
    async with sessions() as session:
        session.add(
            WarningShown(
                operation_id=op.operation_id,
                customer_id=op.customer_id,
                decision=op.risk["decision"],
                reason_codes=[r["code"] for r in op.risk["reasons"]],
                text=text,
                sent_at=datetime.fromtimestamp(now, tz=UTC),
                delivered=False,
            )
        )
        await audit_operation(
            session,
            "risk.warning_sent",
            op.operation_id,
            now,
            data={"decision": op.risk["decision"], "text": text},
        )
        await session.commit()
    await hub.send(
        Role.CUSTOMER,
        op.customer_id,
        {
            "type": "risk.warning",
            "operation_id": op.operation_id,
            "decision": op.risk["decision"],
            "text": text,
        },
    )


async def request_confirmation(hub: Notifier, op: Operation) -> None:
    await hub.send(
        Role.CUSTOMER,
        op.customer_id,
        {
            "type": "operation.confirm_request",
            "operation_id": op.operation_id,
            "kind": op.kind,
            "summary": summary(Kind(op.kind), op.params),
        },
    )


def warning_text(
    risk_json: dict[str, Any], state: str, hold_until: datetime | None
) -> dict[str, str]:
    """The customer's warning: every distinct plain-words reason, then what happens next."""
    zh: list[str] = []
    en: list[str] = []
    for reason in risk_json["reasons"]:
        text = reason.get("customer_text") or {}
        if text.get("zh") and text["zh"] not in zh:
            zh.append(text["zh"])
        if text.get("en") and text["en"] not in en:
            en.append(text["en"])
    if state == OperationState.HELD.value:
        until = hold_until.isoformat() if hold_until else ""
        zh.append(
            "为了保护您的资金，这笔业务先暂停24小时。您可以联系家人商量，或再次接通云网点由专员为您解除。"
        )
        en.append(
            "To protect your money this is paused for 24 hours "
            f"(until {until}). Talk it over with family; a specialist can release it with you."
        )
    elif state == OperationState.BLOCKED.value:
        zh.append("这笔业务已被拦截，钱没有转出。如有人让您转账，请拨打96110反诈专线。")
        en.append(
            "This has been stopped and no money has left. If someone told you to move money, "
            "call the anti-fraud line 96110."
        )
    return {"zh": "".join(zh), "en": " ".join(en)}
