"""In-call operations: the risk check inline, review, the customer's yes, execution.

Nothing executes until the customer has confirmed on their own screen and every
review has been answered. Each step is one conditional update on the operation's
state (``WHERE state = ...``), so two clicks or two nodes cannot both act on it;
execution and the state change to ``executed`` commit together, so a failure
leaves no half-posted money.

Money moves only inside a live call: the executing ``UPDATE`` itself requires
the operation's call to be in conversation (:mod:`server.operations.locks`,
which also documents the one lock order), so a hang-up racing a confirmation
never executes; every way a call ends cancels its pending operations
(:meth:`OperationService.call_ended`, called first after the end commits).
"""

from __future__ import annotations

import time
import uuid
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

import structlog
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import risk
from server import audit
from server.auth.principal import Principal, Role
from server.banking.core import CoreBanking, ExecutionFailed
from server.calls import repository as repo
from server.calls.state import CallState
from server.db.banking import BlockedPayee, Operation, WarningShown
from server.db.models import Call
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.recordings.hooks import mark_operation_event, require_recording
from server.settings import Settings

from .assessment import IntegritySource, risk_operation, video_integrity
from .evidence import execution_params
from .locks import in_live_call, lock_in_order
from .params import parse_params, summary
from .state import (
    NEEDS_CONFIRMATION,
    PENDING,
    RISK_CHECKED,
    Kind,
    OperationState,
    check_confirmable,
    state_for_decision,
    state_for_review,
)
from .views import REFERRAL_STEPS, operation_view

if TYPE_CHECKING:
    from server.ports import Notifier

log = structlog.get_logger(__name__)


def _now_dt(now: float) -> datetime:
    return datetime.fromtimestamp(now, tz=UTC)


class OperationService:
    def __init__(
        self,
        settings: Settings,
        sessions: async_sessionmaker[AsyncSession],
        hub: Notifier,
        engine: risk.RiskEngine,
        core: CoreBanking,
        clock: Callable[[], float] = time.time,
        integrity: IntegritySource | None = None,
    ) -> None:
        self.settings = settings
        self.sessions = sessions
        self.hub = hub
        self.engine = engine
        self.core = core
        self.clock = clock
        self.zone = ZoneInfo(settings.branch_timezone)
        # The call's video integrity (server/integrity); None: not analysed, unknown.
        self.integrity = integrity

    # -- reading -------------------------------------------------------------------
    async def get(self, principal: Principal, operation_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            op = await self._visible(session, principal, operation_id)
            return operation_view(op, principal.role)

    async def _visible(self, session: AsyncSession, principal: Principal, op_id: str) -> Operation:
        # Ids come from URL paths; one with a NUL cannot exist, and PostgreSQL
        # rejects NUL in a query parameter with an error rather than "no row".
        plausible = len(op_id) <= 64 and "\x00" not in op_id
        op = await session.get(Operation, op_id) if plausible else None
        if op is None:
            raise NotFound(f"no operation {op_id!r} for you", code="operation_not_found")
        if principal.role is Role.SUPERVISOR:
            return op
        if principal.role is Role.CUSTOMER and op.customer_id == principal.subject:
            return op
        if principal.role is Role.SPECIALIST:
            call = await session.get(Call, op.call_id)
            if call is not None and call.specialist_id == principal.subject:
                return op
            if op.state == OperationState.HELD.value:
                return op  # held operations are released by any specialist
        raise NotFound(f"no operation {op_id!r} for you", code="operation_not_found")

    # -- starting ----------------------------------------------------------------------
    async def start(
        self,
        principal: Principal,
        call_id: str,
        kind_name: str,
        raw_params: dict[str, Any],
        statement: str | None,
        origin: str = "specialist",
    ) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        try:
            kind = Kind(kind_name)
        except ValueError as exc:
            raise ValidationFailed(f"kind: unknown operation kind {kind_name[:40]!r}") from exc
        params = parse_params(kind, raw_params)
        now = self.clock()
        async with self.sessions() as session:
            call = await repo.get_call(session, call_id) if len(call_id) <= 64 else None
            if call is None or call.specialist_id != principal.subject:
                raise NotFound(f"no call {call_id!r} held by you", code="call_not_found")
            if call.state != CallState.ACTIVE.value:
                raise Conflict(
                    f"call is {call.state}; operations need an active call", code="call_not_active"
                )
            await require_recording(session, self.settings, call_id, kind.value)
            # A medium reported lost, or a choice of account to make: refused now.
            await self.core.preflight(session, call.customer_id, kind.value, params, _now_dt(now))
            op = await self._create(session, call, principal, kind, params, statement, origin, now)
            await session.commit()
            await session.refresh(op)
        await self._announce(op, now)
        if self.integrity is not None:
            await self.integrity.before_operation(call_id, op.kind, op.params, op.operation_id)
        return operation_view(op, Role.SPECIALIST)

    async def start_from_redirect(self, call: Call, transfer: dict[str, Any]) -> str | None:
        """The redirect's attempted transfer becomes a pending operation of the call."""
        if call.specialist_id is None:
            return None
        principal = Principal(Role.SPECIALIST, call.specialist_id)
        view = await self.start(
            principal,
            call.call_id,
            Kind.TRANSFER.value,
            transfer,
            transfer.get("stated_reason"),
            origin="redirect",
        )
        operation_id: str = view["operation_id"]
        return operation_id

    async def _create(
        self,
        session: AsyncSession,
        call: Call,
        principal: Principal,
        kind: Kind,
        params: dict[str, Any],
        statement: str | None,
        origin: str,
        now: float,
    ) -> Operation:
        when = _now_dt(now)
        # The lock order first (call, customer), before any audit append.
        if not await lock_in_order(session, call.call_id, call.customer_id):
            raise Conflict("the call has ended; nothing was started", code="call_not_active")
        op = Operation(
            operation_id=uuid.uuid4().hex,
            call_id=call.call_id,
            customer_id=call.customer_id,
            specialist_id=principal.subject,
            kind=kind.value,
            params=params,
            customer_statement=statement,
            state=OperationState.AWAITING_CONFIRMATION.value,
            origin=origin,
            created_at=when,
            updated_at=when,
            version=0,
        )
        if kind in RISK_CHECKED:
            assessment = await self._assess(session, call, op, when)
            op.risk = assessment_json(assessment)
            if assessment.shadow is not None:
                op.shadow_risk = {
                    "decision": assessment.shadow.decision.value,
                    "score": assessment.shadow.score,
                    "reason_codes": list(assessment.shadow.reason_codes),
                    "ruleset_version": assessment.shadow.ruleset_version,
                }
            state = state_for_decision(assessment.decision.value)
            op.state = state.value
            if state is OperationState.HELD:
                op.hold_until = when + timedelta(seconds=self.settings.hold_cooling_off_s)
        elif kind not in NEEDS_CONFIRMATION:
            op.state = OperationState.AWAITING_CONFIRMATION.value
        session.add(op)
        await session.flush()
        await _audit_operation(
            session,
            "operation.created",
            op.operation_id,
            now,
            by=principal,
            data={"call_id": call.call_id, "kind": op.kind, "params": params, "origin": origin},
        )
        if op.risk is not None:
            await _audit_operation(
                session,
                "risk.decision",
                op.operation_id,
                now,
                data={
                    "decision": op.risk["decision"],
                    "score": op.risk["score"],
                    "reason_codes": [r["code"] for r in op.risk["reasons"]],
                    "ruleset_version": op.risk["ruleset_version"],
                    "shadow": op.shadow_risk,
                },
            )
        if (
            kind not in NEEDS_CONFIRMATION
            and op.state == OperationState.AWAITING_CONFIRMATION.value
        ):
            await self._execute(session, op, now)
        return op

    async def _assess(
        self, session: AsyncSession, call: Call, op: Operation, when: datetime
    ) -> risk.Assessment:
        """Evaluate inline. Anything that cannot be loaded goes in as unknown, and
        the engine's own fail-safe turns unknowns into review or hold, never allow."""
        try:
            # Under a savepoint: a database error while reading rolls back only
            # the read, and the transaction stays usable for the fail-safe path
            # (on PostgreSQL an error otherwise aborts the whole transaction).
            # SQLite has no aborted transactions, and a savepoint there before
            # the first write would commit a transaction of its own.
            if session.get_bind().dialect.name == "sqlite":
                profile, lists = await self.core.risk_inputs(session, call.customer_id, when)
            else:
                async with session.begin_nested():
                    profile, lists = await self.core.risk_inputs(session, call.customer_id, when)
        except Exception:
            log.exception("risk.inputs_unavailable", operation_id=op.operation_id)
            profile = risk.CustomerProfile(customer_id=call.customer_id)
            lists = risk.RiskLists()
        earlier = await self._earlier_operations(session, call.customer_id, when)
        redirect = (call.context or {}).get("redirect") or {}
        session_info = risk.CallSession(
            call_id=call.call_id,
            redirect_kind=redirect.get("kind") if isinstance(redirect, dict) else None,
            earlier_operations=earlier,
            stated_reason=op.customer_statement,
            local_time=when.astimezone(self.zone),
            video_integrity=video_integrity(self.integrity, call.call_id),
        )
        try:
            facts = await self.core.operation_facts(
                session, call.customer_id, op.kind, op.params, when
            )
        except Exception:
            log.exception("risk.operation_facts_unavailable", operation_id=op.operation_id)
            facts = {}
        operation = risk_operation(op.kind, {**op.params, **facts})
        return self.engine.evaluate(operation, profile, session_info, lists, now=when)

    async def _earlier_operations(
        self, session: AsyncSession, customer_id: str, when: datetime
    ) -> tuple[risk.PriorOperation, ...]:
        """This customer's operations of the last 24 hours, in this call or another."""
        rows = (
            (
                await session.execute(
                    select(Operation)
                    .where(
                        Operation.customer_id == customer_id,
                        Operation.created_at >= when - timedelta(hours=24),
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

    async def _announce(self, op: Operation, now: float) -> None:
        """Tell the desk and the customer what the new (or changed) operation needs."""
        await self._desk_update(op)
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
            await self.hub.send(Role.SPECIALIST, op.specialist_id, popup)
        if decision in ("warn", "review", "hold", "block"):
            await self._warn_customer(op, now)
        if state is OperationState.AWAITING_CONFIRMATION:
            await self._request_confirmation(op)

    async def _desk_update(self, op: Operation) -> None:
        if op.specialist_id:
            await self.hub.send(
                Role.SPECIALIST,
                op.specialist_id,
                {"type": "operation.updated", "operation": operation_view(op, Role.SPECIALIST)},
            )

    async def _warn_customer(self, op: Operation, now: float) -> None:
        assert op.risk is not None
        text = warning_text(op.risk, op.state, op.hold_until)
        async with self.sessions() as session:
            session.add(
                WarningShown(
                    operation_id=op.operation_id,
                    customer_id=op.customer_id,
                    decision=op.risk["decision"],
                    reason_codes=[r["code"] for r in op.risk["reasons"]],
                    text=text,
                    sent_at=_now_dt(now),
                    delivered=False,
                )
            )
            await _audit_operation(
                session,
                "risk.warning_sent",
                op.operation_id,
                now,
                data={"decision": op.risk["decision"], "text": text},
            )
            await session.commit()
        await self.hub.send(
            Role.CUSTOMER,
            op.customer_id,
            {
                "type": "risk.warning",
                "operation_id": op.operation_id,
                "decision": op.risk["decision"],
                "text": text,
            },
        )

    async def _request_confirmation(self, op: Operation) -> None:
        await self.hub.send(
            Role.CUSTOMER,
            op.customer_id,
            {
                "type": "operation.confirm_request",
                "operation_id": op.operation_id,
                "kind": op.kind,
                "summary": summary(Kind(op.kind), op.params),
            },
        )

    async def warning_shown(self, principal: Principal, operation_id: str) -> None:
        """The customer's app says the warning is on screen: record when."""
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            await self._visible(session, principal, operation_id)
            result = await session.execute(
                update(WarningShown)
                .where(
                    WarningShown.operation_id == operation_id,
                    WarningShown.shown_at.is_(None),
                )
                .values(shown_at=_now_dt(now), delivered=True)
            )
            if getattr(result, "rowcount", 0):
                await _audit_operation(
                    session, "risk.warning_shown", operation_id, now, by=principal
                )
            await session.commit()

    # -- review ------------------------------------------------------------------------------
    async def review(
        self,
        principal: Principal,
        operation_id: str,
        action: str,
        answers: dict[str, str] | None,
        note: str | None,
    ) -> dict[str, Any]:
        principal.require(Role.SPECIALIST)
        now = self.clock()
        async with self.sessions() as session:
            op = await self._visible(session, principal, operation_id)
            current = OperationState(op.state)
            target = state_for_review(current, action)
            if current is OperationState.AWAITING_REVIEW:
                call = await session.get(Call, op.call_id)
                if call is None or call.specialist_id != principal.subject:
                    raise Forbidden("only the specialist on the call answers its review")
            if action == "proceed" and current is OperationState.AWAITING_REVIEW:
                _check_answers(op, answers)
            if action == "proceed" and current is OperationState.HELD and not note:
                raise ValidationFailed("note: releasing a hold needs a note saying why")
            review = {
                "action": action,
                "answers": answers or {},
                "note": note,
                "by": principal.subject,
                "at": _now_dt(now).isoformat(),
                "from_state": current.value,
            }
            values: dict[str, Any] = {
                "state": target.value,
                "review": review,
                "updated_at": _now_dt(now),
                "version": op.version + 1,
            }
            if target is OperationState.HELD:
                values["hold_until"] = _now_dt(now) + timedelta(
                    seconds=self.settings.hold_cooling_off_s
                )
            await self._transition(session, op, current, values)
            await _audit_operation(
                session, "operation.reviewed", operation_id, now, by=principal, data=review
            )
            await session.commit()
            await session.refresh(op)
        await self._desk_update(op)
        if target is OperationState.AWAITING_CONFIRMATION:
            await self._request_confirmation(op)
        elif target in (OperationState.HELD, OperationState.BLOCKED) and op.risk is not None:
            await self._warn_customer(op, now)
        return operation_view(op, Role.SPECIALIST)

    async def _transition(
        self,
        session: AsyncSession,
        op: Operation,
        expected: OperationState,
        values: dict[str, Any],
        *,
        live_call: bool = False,
    ) -> None:
        conditions = [
            Operation.operation_id == op.operation_id,
            Operation.state == expected.value,
            Operation.version == op.version,
        ]
        if live_call:
            conditions.append(in_live_call())
        result = await session.execute(
            update(Operation)
            .where(*conditions)
            .values(**values)
            .execution_options(synchronize_session=False)
        )
        if not getattr(result, "rowcount", 0):
            if live_call:
                raise Conflict(
                    "the call is no longer in conversation; nothing was executed",
                    code="call_not_active",
                )
            raise Conflict("the operation changed meanwhile; reload it", code="operation_changed")

    # -- the customer's confirmation --------------------------------------------------------
    async def confirm(
        self, principal: Principal, operation_id: str, confirmed: bool
    ) -> dict[str, Any]:
        principal.require(Role.CUSTOMER)
        now = self.clock()
        async with self.sessions() as session:
            op = await self._visible(session, principal, operation_id)
            check_confirmable(OperationState(op.state))
            confirmation = {"confirmed": confirmed, "at": _now_dt(now).isoformat()}
            if not confirmed:
                await self._transition(
                    session,
                    op,
                    OperationState.AWAITING_CONFIRMATION,
                    {
                        "state": OperationState.REJECTED.value,
                        "confirmation": confirmation,
                        "updated_at": _now_dt(now),
                        "version": op.version + 1,
                    },
                )
                await _audit_operation(
                    session, "operation.refused_by_customer", operation_id, now, by=principal
                )
                await session.commit()
            else:
                op.confirmation = confirmation
                await self._execute(session, op, now)
            await session.refresh(op)
        await self._desk_update(op)
        return operation_view(op, Role.CUSTOMER)

    async def _execute(self, session: AsyncSession, op: Operation, now: float) -> None:
        """Claim, execute and record in one transaction; a refusal rolls all of it back."""
        operation_id, version = op.operation_id, op.version
        confirmation = op.confirmation
        try:
            # Lock order (call, customer) before the claim; the claim itself
            # requires the call to be in conversation, so it holds under races.
            await lock_in_order(session, op.call_id, op.customer_id)
            await self._transition(
                session,
                op,
                OperationState.AWAITING_CONFIRMATION,
                {
                    "state": OperationState.EXECUTED.value,
                    "confirmation": confirmation,
                    "updated_at": _now_dt(now),
                    "version": version + 1,
                },
                live_call=True,
            )
            integrity = video_integrity(self.integrity, op.call_id)
            liveness = integrity.liveness if integrity is not None else None
            params = await execution_params(session, op, now, liveness)
            result = await self.core.execute(
                session, operation_id, op.customer_id, op.kind, params, _now_dt(now)
            )
            await session.execute(
                update(Operation)
                .where(Operation.operation_id == operation_id)
                .values(result=result)
            )
            await _audit_operation(
                session, "operation.executed", operation_id, now, data={"result": result}
            )
            await session.commit()
        except ExecutionFailed as exc:
            await session.rollback()
            reason = exc.reason
            await session.execute(
                update(Operation)
                .where(
                    Operation.operation_id == operation_id,
                    Operation.state == OperationState.AWAITING_CONFIRMATION.value,
                )
                .values(
                    state=OperationState.FAILED.value,
                    confirmation=confirmation,
                    failure_reason=reason[:200],
                    updated_at=_now_dt(now),
                    version=version + 1,
                )
            )
            await _audit_operation(
                session, "operation.failed", operation_id, now, data={"reason": reason}
            )
            await session.commit()

    # -- when the conversation ends --------------------------------------------------------
    async def call_ended(self, call: Call) -> None:
        """Pending operations die with the conversation; holds stay for a specialist."""
        now = self.clock()
        async with self.sessions() as session:
            pending = (
                (
                    await session.execute(
                        select(Operation).where(
                            Operation.call_id == call.call_id,
                            Operation.state.in_([s.value for s in PENDING]),
                        )
                    )
                )
                .scalars()
                .all()
            )
            for op in pending:
                await session.execute(
                    update(Operation)
                    .where(Operation.operation_id == op.operation_id, Operation.state == op.state)
                    .values(
                        state=OperationState.REJECTED.value,
                        failure_reason="call_ended",
                        updated_at=_now_dt(now),
                        version=op.version + 1,
                    )
                )
                await _audit_operation(
                    session,
                    "operation.abandoned",
                    op.operation_id,
                    now,
                    data={"reason": "call_ended", "from_state": op.state},
                )
            await session.commit()

    # -- lists -------------------------------------------------------------------------------
    async def block_payee(
        self, principal: Principal, account_no: str, reason: str, operation_id: str | None
    ) -> dict[str, Any]:
        principal.require(Role.SPECIALIST, Role.SUPERVISOR)
        now = self.clock()
        async with self.sessions() as session:
            if operation_id is not None:
                await self._visible(session, principal, operation_id)
            existing = await session.get(BlockedPayee, account_no)
            if existing is None:
                session.add(
                    BlockedPayee(
                        account_no=account_no,
                        reason=reason,
                        added_by=principal.subject,
                        added_at=_now_dt(now),
                    )
                )
                await audit.record(
                    session,
                    "risk.payee_blocked",
                    at=now,
                    actor_role=principal.role.value,
                    actor_id=principal.subject,
                    subject_type="payee",
                    subject_id=account_no,
                    data={"reason": reason, "operation_id": operation_id},
                )
                await session.commit()
        return {"account_no": account_no, "blocked": True, "reason": reason}


async def _audit_operation(
    session: AsyncSession,
    kind: str,
    operation_id: str,
    now: float,
    by: Principal | None = None,
    data: dict[str, Any] | None = None,
) -> None:
    """One audit entry about an operation, in the caller's transaction."""
    await audit.record(
        session,
        kind,
        at=now,
        actor_role=by.role.value if by else None,
        actor_id=by.subject if by else None,
        subject_type="operation",
        subject_id=operation_id,
        data=data,
    )
    await mark_operation_event(session, kind, operation_id, now, data)  # recording index


def assessment_json(assessment: risk.Assessment) -> dict[str, Any]:
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


def _decimal(value: Any) -> Decimal | None:
    return None if value is None else Decimal(str(value))


def _check_answers(op: Operation, answers: dict[str, str] | None) -> None:
    """Proceeding past a review needs an answer to every scripted question.

    An answer is keyed by the question's text or by ``"<reason code>.<n>"`` (n from 1).
    """
    given = answers or {}
    missing: list[str] = []
    for reason in (op.risk or {}).get("reasons", []):
        for index, question in enumerate(reason.get("questions", []), start=1):
            answer = given.get(f"{reason['code']}.{index}") or given.get(question) or ""
            if not str(answer).strip() and question not in missing:
                missing.append(question)
    if missing:
        raise ValidationFailed(
            "answers: every scripted question needs an answer before proceeding; missing: "
            + "; ".join(missing[:5]),
            code="answers_required",
        )
