"""A sensitive operation waits for its liveness challenge, then is decided with its result.

``liveness_before`` (settings) names the operations that need a liveness check
first: by default a transfer or limit change of a large amount, every password
reset and every pension certification. When one is started while the customer's
video is analysed, a challenge is drawn for it and the operation is stored
``awaiting_liveness`` with the challenge bound to it (``risk.liveness``:
``{challenge_id, kind, status, reason, decide_by}``); only then is the challenge
sent to the customer. Until it has a result nothing can be answered, confirmed
or executed (``409 liveness_pending``), and the customer's screen shows the
challenge alone. An operation the engine blocks outright does not wait.

When the verdict comes (``status`` ``passed`` or ``failed``), the operation is
assessed again with it as the engine's ``VideoIntegrity.liveness`` and moves to
the state that decision gives; desk and customer are told as for a new
operation (``operation.updated``, ``risk.popup``, ``risk.warning``,
``operation.confirm_request``). A check that did not pass fails safe: at least
``review`` with ``liveness_failed`` among the reasons. The engine's rules say so
for transfers and limit changes (a large amount: ``hold``); for the other kinds
that ask for a check, whose rules have no liveness condition, the floor is
applied here, with the ruleset's own ``liveness_failed`` words.

A verdict can be lost: the node that verifies it stops, or its analysis fails.
Every node's housekeeping therefore looks for operations still waiting past
their ``decide_by`` (the verdict's time plus ``liveness_result_grace_s``) and
decides them as not passed (``status`` ``expired``), never as allowed.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import TYPE_CHECKING, Any

import structlog
from sqlalchemy import select

import risk
from server.db.banking import Operation
from server.db.models import Call
from server.errors import Conflict
from signaling.integrity.liveness import Challenge, Verdict

from .assessment import assess, assessment_json, shadow_json
from .audit_trail import audit_operation
from .locks import lock_in_order
from .notifications import announce, desk_update
from .state import NEEDS_CONFIRMATION, Kind, OperationState, state_for_decision

if TYPE_CHECKING:
    from .service import OperationService

log = structlog.get_logger(__name__)

NOT_PASSED_CODE = "liveness_failed"
_RANK = {"allow": 0, "warn": 1, "review": 2, "hold": 3, "block": 4}
# The words when a ruleset has no liveness_failed rule of its own (the default has).
_FALLBACK = risk.Reason(
    code=NOT_PASSED_CODE,
    specialist_text="The customer did not pass the liveness check this operation asked for.",
    customer_text={
        "zh": "刚才的本人确认没有完成，这不是您的错。我们会和您再确认一次，确认是您本人后再办理。",
        "en": "The check that it is really you did not complete just now; that is not your "
        "fault. We will check once more before we go on.",
    },
    questions=("Run the liveness check again with the customer, speaking them through each step.",),
)


def _dt(at: float) -> datetime:
    return datetime.fromtimestamp(at, tz=UTC)


def binding(challenge: Challenge, verdict_due: float, grace_s: float) -> dict[str, Any]:
    """What an operation records of the challenge it waits for."""
    return {
        "challenge_id": challenge.challenge_id,
        "kind": challenge.kind,
        "status": "pending",
        "reason": None,
        "decide_by": _dt(verdict_due + grace_s).isoformat(),
    }


def bound(op: Operation) -> dict[str, Any] | None:
    found = (op.risk or {}).get("liveness")
    return found if isinstance(found, dict) else None


def bound_result(op: Operation) -> str | None:
    """``passed``/``failed`` for an operation that waited for a challenge (an expired
    one did not pass), None for one that did not wait."""
    status = (bound(op) or {}).get("status")
    if status == "passed":
        return "passed"
    return "failed" if status in ("failed", "expired") else None


def not_passed_floor(risk_json: dict[str, Any], ruleset: risk.Ruleset) -> dict[str, Any]:
    """At least ``review``, with ``liveness_failed`` among the reasons (pure)."""
    out = dict(risk_json)
    codes = {r["code"] for r in out["reasons"]}
    if not any(code.startswith(NOT_PASSED_CODE) for code in codes):
        reason = next(
            (rule.reason for rule in ruleset.rules if rule.code == NOT_PASSED_CODE), _FALLBACK
        )
        out["reasons"] = [
            *out["reasons"],
            {
                "code": reason.code,
                "specialist_text": reason.specialist_text,
                "customer_text": dict(reason.customer_text),
                "questions": list(reason.questions),
            },
        ]
    if _RANK[out["decision"]] < _RANK["review"]:
        out["decision"] = "review"
        out["floor"] = "liveness_not_passed"
    return out


async def send(ops: OperationService, op: Operation, challenge: Challenge) -> None:
    """The desk sees the operation waiting; the customer gets its challenge."""
    await desk_update(ops.hub, op)
    operation_id = op.operation_id

    async def verdict(result: Verdict) -> None:
        status = "passed" if result.passed else "failed"
        await decide(ops, operation_id, challenge.challenge_id, status, result.reason)

    sent = None
    if ops.integrity is not None:
        sent = ops.integrity.send_challenge(
            op.call_id, challenge, why=op.kind, operation_id=operation_id, on_result=verdict
        )
    if sent is None:  # the video stopped being analysed since the challenge was drawn
        await decide(ops, operation_id, challenge.challenge_id, "failed", "no_video")


async def decide(
    ops: OperationService, operation_id: str, challenge_id: str, status: str, reason: str
) -> Operation | None:
    """Assess the waiting operation again with its challenge's result and move it on.

    Idempotent: an operation no longer waiting for this challenge is left alone (a
    verdict and the deadline's sweep may both arrive). None when nothing changed."""
    now = ops.clock()
    when = _dt(now)
    async with ops.sessions() as session:
        op = await session.get(Operation, operation_id)
        binding_now = bound(op) if op is not None else None
        if (
            op is None
            or op.state != OperationState.AWAITING_LIVENESS.value
            or binding_now is None
            or binding_now.get("challenge_id") != challenge_id
        ):
            return None
        call = await session.get(Call, op.call_id)
        # The lock order first (call, customer), before any audit append.
        if call is None or not await lock_in_order(session, op.call_id, op.customer_id):
            return None  # the conversation ended: call_ended closes the operation
        result = "passed" if status == "passed" else "failed"
        assessment = await assess(
            session, ops.core, ops.engine, ops.zone, ops.integrity, call, op, when, result
        )
        risk_json = assessment_json(assessment)
        if result != "passed":
            risk_json = not_passed_floor(risk_json, ops.engine.ruleset)
        risk_json["liveness"] = {**binding_now, "status": status, "reason": reason}
        state = state_for_decision(risk_json["decision"])
        values: dict[str, Any] = {
            "state": state.value,
            "risk": risk_json,
            "shadow_risk": shadow_json(assessment),
            "updated_at": when,
            "version": op.version + 1,
        }
        if state is OperationState.HELD:
            values["hold_until"] = when + timedelta(seconds=ops.settings.hold_cooling_off_s)
        try:
            await ops._transition(session, op, OperationState.AWAITING_LIVENESS, values)
        except Conflict:
            return None  # decided meanwhile (another node's sweep, the call's end)
        await audit_operation(
            session,
            "risk.decision",
            operation_id,
            now,
            data={
                "decision": risk_json["decision"],
                "score": risk_json["score"],
                "reason_codes": [r["code"] for r in risk_json["reasons"]],
                "ruleset_version": risk_json["ruleset_version"],
                "shadow": values["shadow_risk"],
                "liveness": {"challenge_id": challenge_id, "status": status, "reason": reason},
            },
        )
        if state is OperationState.BLOCKED:
            ops.record_block(session, op, now)
        await session.commit()
        await session.refresh(op)
    log.info(
        "operation.liveness_decided",
        operation_id=operation_id,
        status=status,
        decision=risk_json["decision"],
    )
    await announce(ops.hub, ops.sessions, op, now)
    if state is OperationState.AWAITING_CONFIRMATION and Kind(op.kind) not in NEEDS_CONFIRMATION:
        async with ops.sessions() as session:  # a read-only kind runs at once, as at creation
            op = await session.get(Operation, operation_id) or op
            await ops._execute(session, op, now)
    return op


async def expire_overdue(ops: OperationService, now: float) -> int:
    """Decide as not passed every operation still waiting past its ``decide_by``."""
    async with ops.sessions() as session:
        rows = (
            await session.execute(
                select(Operation.operation_id, Operation.risk).where(
                    Operation.state == OperationState.AWAITING_LIVENESS.value
                )
            )
        ).all()
    expired = 0
    for operation_id, risk_json in rows:
        waiting = (risk_json or {}).get("liveness") or {}
        try:
            due = datetime.fromisoformat(str(waiting["decide_by"])).timestamp()
        except (KeyError, ValueError):
            due = 0.0  # a binding without a readable deadline waits no longer
        if due <= now:
            decided = await decide(
                ops, operation_id, str(waiting.get("challenge_id")), "expired", "no_result"
            )
            expired += decided is not None
    return expired
