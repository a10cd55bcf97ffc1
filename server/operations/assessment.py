"""The inline risk check: what the engine is told about an operation, and its answer.

One table, one entry per kind, says what the engine reads of each operation kind.

Every operation is assessed, whatever its kind: most counter operations are
allowed, but a scam story in the customer's words, a mention of screen
sharing, or a takeover sequence on the account raises a review. An entry says
which params the engine reads for its kind; a new kind is one more entry.
Facts the params do not carry (a time deposit's principal and the interest an
early break gives up) come from the core-banking system first
(``CoreBanking.operation_facts``). :func:`assess` gathers the rest (the
customer's profile and lists, the call, earlier operations, the video's
integrity) and asks the engine; :func:`assessment_json` is how its answer is
stored on the operation.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any, Protocol
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

import risk
from server.db.banking import Operation
from server.db.models import Call
from server.ports import CoreBanking, Transaction
from signaling.integrity.liveness import Challenge, Verdict

from .state import Kind

log = structlog.get_logger(__name__)

#: params (with the core-banking facts merged in) -> risk.Operation fields
RiskFields = Callable[[Mapping[str, Any]], dict[str, Any]]


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _transfer(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "amount": _decimal(p.get("amount")),
        "currency": p.get("currency"),
        "payee_account": p.get("payee_account"),
        "payee_name": p.get("payee_name"),
        "payee_bank": p.get("payee_bank"),
        "payee_phone": p.get("payee_phone"),
    }


def _limit_change(p: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "channel": p.get("channel"),
        "new_limit": _decimal(p.get("new_limit")),
        "currency": p.get("currency"),
    }


def _time_deposit(p: Mapping[str, Any]) -> dict[str, Any]:
    term = p.get("term_months")
    return {
        "deposit_action": p.get("action"),
        "amount": _decimal(p.get("amount")),
        "currency": p.get("currency"),
        "term_months": term if isinstance(term, int) else None,
        "interest_forfeited": _decimal(p.get("interest_forfeited")),
    }


def _password_reset(p: Mapping[str, Any]) -> dict[str, Any]:
    return {"channel": p.get("channel")}


def _nothing(p: Mapping[str, Any]) -> dict[str, Any]:
    return {}


RISK_FIELDS: Mapping[Kind, RiskFields] = {
    Kind.TRANSFER: _transfer,
    Kind.LIMIT_CHANGE: _limit_change,
    Kind.TIME_DEPOSIT: _time_deposit,
    Kind.PASSWORD_RESET: _password_reset,
    Kind.CARD_ACTIVATION: _nothing,
    Kind.BALANCE_INQUIRY: _nothing,
    # The counter's kinds go in by kind: the engine's takeover rules read a
    # contact change from the call's earlier operations and the customer's
    # recent events, not from its params (the new number stays out of it).
    Kind.PASSBOOK_STATEMENT: _nothing,
    Kind.LOSS_REPORT: _nothing,
    Kind.REPLACEMENT: _nothing,
    Kind.CONTACT_CHANGE: _nothing,
    Kind.PENSION_CERTIFICATION: _nothing,
    Kind.CERTIFICATE: _nothing,
}


def risk_operation(kind: str, params: Mapping[str, Any]) -> risk.Operation:
    """The engine's view of an operation. A kind without an entry goes in bare,
    and the engine, which has no rules for it, fails safe (review)."""
    try:
        fields = RISK_FIELDS[Kind(kind)](params)
    except (KeyError, ValueError):
        fields = {}
    return risk.Operation(kind=kind, **fields)


class IntegritySource(Protocol):
    """The call's video integrity (server/integrity/service.py: IntegrityService)."""

    def risk_input(self, call_id: str) -> risk.VideoIntegrity | None: ...

    def liveness_challenge(
        self, call_id: str, kind: str, params: dict[str, Any]
    ) -> Challenge | None: ...

    def verdict_due(self, challenge: Challenge) -> float: ...

    def send_challenge(
        self,
        call_id: str,
        challenge: Challenge,
        *,
        why: str,
        operation_id: str | None = None,
        on_result: Callable[[Verdict], Awaitable[None]] | None = None,
    ) -> Challenge | None: ...


def video_integrity(source: IntegritySource | None, call_id: str) -> risk.VideoIntegrity | None:
    """What the engine is told of the customer's video: None (unknown) when nothing
    analyses it (direct media, analysis off or not started, the leg gone)."""
    if source is None:
        return None
    try:
        return source.risk_input(call_id)
    except Exception:  # the engine's fail-safe rules then treat it as unknown
        return None


async def assess(
    session: AsyncSession,
    core: CoreBanking,
    engine: risk.RiskEngine,
    zone: ZoneInfo,
    integrity: IntegritySource | None,
    call: Call,
    op: Operation,
    when: datetime,
    liveness: str | None = None,
) -> risk.Assessment:
    """Evaluate inline. Anything that cannot be loaded goes in as unknown, and
    the engine's own fail-safe turns unknowns into review or hold, never allow.

    ``liveness`` (``passed``/``failed``) is the result of the challenge the operation
    waited for; it replaces the call's latest in what the engine is told."""
    try:
        # Under a savepoint: a database error while reading rolls back only
        # the read, and the transaction stays usable for the fail-safe path
        # (on PostgreSQL an error otherwise aborts the whole transaction).
        # SQLite has no aborted transactions, and a savepoint there before
        # the first write would commit a transaction of its own.
        if session.get_bind().dialect.name == "sqlite":
            profile, lists = await core.risk_inputs(Transaction(session), call.customer_id, when)
        else:
            async with session.begin_nested():
                profile, lists = await core.risk_inputs(
                    Transaction(session), call.customer_id, when
                )
    except Exception:
        log.exception("risk.inputs_unavailable", operation_id=op.operation_id)
        profile = risk.CustomerProfile(customer_id=call.customer_id)
        lists = risk.RiskLists()
    # The operation itself is not one of its own earlier operations (it is stored
    # already when it is assessed again with its liveness result).
    earlier = await earlier_operations(session, call.customer_id, when, excluding=op.operation_id)
    video = video_integrity(integrity, call.call_id)
    if liveness is not None:
        video = (
            replace(video, liveness=liveness)
            if video is not None
            else risk.VideoIntegrity(status="unknown", liveness=liveness)
        )
    redirect = (call.context or {}).get("redirect") or {}
    session_info = risk.CallSession(
        call_id=call.call_id,
        redirect_kind=redirect.get("kind") if isinstance(redirect, dict) else None,
        earlier_operations=earlier,
        stated_reason=op.customer_statement,
        local_time=when.astimezone(zone),
        video_integrity=video,
    )
    try:
        facts = await core.operation_facts(
            Transaction(session), call.customer_id, op.kind, op.params, when
        )
    except Exception:
        log.exception("risk.operation_facts_unavailable", operation_id=op.operation_id)
        facts = {}
    operation = risk_operation(op.kind, {**op.params, **facts})
    return engine.evaluate(operation, profile, session_info, lists, now=when)


async def earlier_operations(
    session: AsyncSession, customer_id: str, when: datetime, excluding: str | None = None
) -> tuple[risk.PriorOperation, ...]:
    """This customer's operations of the last 24 hours, in this call or another
    (but not ``excluding``, the one being assessed)."""
    rows = (
        (
            await session.execute(
                select(Operation)
                .where(
                    Operation.customer_id == customer_id,
                    Operation.created_at >= when - timedelta(hours=24),
                    Operation.operation_id != (excluding or ""),
                )
                .order_by(Operation.created_at)
            )
        )
        .scalars()
        .all()
    )
    return tuple(
        risk.PriorOperation(
            kind=row.kind,
            at=row.created_at,
            outcome=row.state,
            amount=_decimal(row.params.get("amount")),
            currency=row.params.get("currency"),
            payee_account=row.params.get("payee_account"),
            new_limit=_decimal(row.params.get("new_limit")),
        )
        for row in rows
    )


def assessment_json(assessment: risk.Assessment) -> dict[str, Any]:
    """The engine's answer as stored on the operation (``Operation.risk``)."""
    return {
        "decision": assessment.decision.value,
        "score": assessment.score,
        "reasons": [
            {
                "code": r.code,
                "specialist_text": r.specialist_text,
                "customer_text": dict(r.customer_text),
                "questions": list(r.questions),
            }
            for r in assessment.reasons
        ],
        "mitigations": [r.code for r in assessment.mitigations],
        "unknown_features": list(assessment.unknown_features),
        "ruleset_version": assessment.ruleset_version,
        "typology": assessment.typology,
    }


def shadow_json(assessment: risk.Assessment) -> dict[str, Any] | None:
    """The shadow ruleset's answer, when one runs beside the live one."""
    if assessment.shadow is None:
        return None
    return {
        "decision": assessment.shadow.decision.value,
        "score": assessment.shadow.score,
        "reason_codes": list(assessment.shadow.reason_codes),
        "ruleset_version": assessment.shadow.ruleset_version,
    }
