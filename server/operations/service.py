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
from typing import TYPE_CHECKING, Any
from zoneinfo import ZoneInfo

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

import risk
from server.auth.principal import Principal, Role
from server.banking.core import ExecutionFailed
from server.calls import repository as repo
from server.calls.state import CallState
from server.db.banking import Operation, WarningShown
from server.db.models import Call
from server.errors import Conflict, Forbidden, NotFound, ValidationFailed
from server.outbox.events import OperationDecided
from server.outbox.relay import OutboxWriter
from server.ports import CoreBanking, Transaction
from server.recordings.hooks import require_recording
from server.settings import Settings
from signaling.integrity.liveness import Challenge

from . import liveness
from .access import block_payee, visible_operation
from .assessment import (
    IntegritySource,
    assess,
    assessment_json,
    shadow_json,
    video_integrity,
)
from .audit_trail import audit_operation
from .evidence import execution_params
from .locks import in_live_call, lock_in_order
from .notifications import announce, desk_update, request_confirmation, warn_customer
from .params import parse_params
from .state import (
    NEEDS_CONFIRMATION,
    PENDING,
    RISK_CHECKED,
    Kind,
    OperationState,
    check_answers,
    check_confirmable,
    state_for_decision,
    state_for_review,
)
from .views import operation_view

if TYPE_CHECKING:
    from server.ports import Notifier


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
        events: OutboxWriter | None = None,
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
        # Where an operation's decision is written, in its transaction (a record:
        # server/outbox/events.py); None: not written.
        self.events = events

    # -- reading -------------------------------------------------------------------
    async def get(self, principal: Principal, operation_id: str) -> dict[str, Any]:
        async with self.sessions() as session:
            op = await visible_operation(session, principal, operation_id)
            return operation_view(op, principal.role)

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
            await self.core.preflight(
                Transaction(session), call.customer_id, kind.value, params, _now_dt(now)
            )
            # A sensitive operation waits for a liveness check (server/operations/liveness.py).
            challenge = (
                self.integrity.liveness_challenge(call_id, kind.value, params)
                if self.integrity is not None
                else None
            )
            op = await self._create(
                session, call, principal, kind, params, statement, origin, now, challenge
            )
            await session.commit()
            await session.refresh(op)
        if challenge is not None and op.state == OperationState.AWAITING_LIVENESS.value:
            await liveness.send(self, op, challenge)
        else:
            await announce(self.hub, self.sessions, op, now)
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
        challenge: Challenge | None = None,
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
            assessment = await assess(
                session, self.core, self.engine, self.zone, self.integrity, call, op, when
            )
            op.risk = assessment_json(assessment)
            op.shadow_risk = shadow_json(assessment)
            state = state_for_decision(assessment.decision.value)
            op.state = state.value
            if state is OperationState.HELD:
                op.hold_until = when + timedelta(seconds=self.settings.hold_cooling_off_s)
            if challenge is not None and state is not OperationState.BLOCKED:
                assert self.integrity is not None  # it drew the challenge
                op.state = OperationState.AWAITING_LIVENESS.value
                op.hold_until = None
                due = self.integrity.verdict_due(challenge)
                grace = self.settings.liveness_result_grace_s
                op.risk = {**op.risk, "liveness": liveness.binding(challenge, due, grace)}
        elif kind not in NEEDS_CONFIRMATION:
            op.state = OperationState.AWAITING_CONFIRMATION.value
        session.add(op)
        await session.flush()
        await audit_operation(
            session,
            "operation.created",
            op.operation_id,
            now,
            by=principal,
            data={"call_id": call.call_id, "kind": op.kind, "params": params, "origin": origin},
        )
        if op.risk is not None:
            decided: dict[str, Any] = {
                "decision": op.risk["decision"],
                "score": op.risk["score"],
                "reason_codes": [r["code"] for r in op.risk["reasons"]],
                "ruleset_version": op.risk["ruleset_version"],
                "shadow": op.shadow_risk,
            }
            if op.state == OperationState.AWAITING_LIVENESS.value:
                decided["waits_for_liveness"] = op.risk["liveness"]["challenge_id"]
            await audit_operation(session, "risk.decision", op.operation_id, now, data=decided)
            if op.state == OperationState.BLOCKED.value:
                self.record_block(session, op, now)
        if (
            kind not in NEEDS_CONFIRMATION
            and op.state == OperationState.AWAITING_CONFIRMATION.value
        ):
            await self._execute(session, op, now)
        return op

    async def warning_shown(self, principal: Principal, operation_id: str) -> None:
        """The customer's app says the warning is on screen: record when (its
        socket route lets only a customer's socket say so)."""
        now = self.clock()
        async with self.sessions() as session:
            await visible_operation(session, principal, operation_id)
            result = await session.execute(
                update(WarningShown)
                .where(
                    WarningShown.operation_id == operation_id,
                    WarningShown.shown_at.is_(None),
                )
                .values(shown_at=_now_dt(now), delivered=True)
            )
            if getattr(result, "rowcount", 0):
                await audit_operation(
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
            op = await visible_operation(session, principal, operation_id)
            current = OperationState(op.state)
            target = state_for_review(current, action)
            if current is OperationState.AWAITING_REVIEW:
                call = await session.get(Call, op.call_id)
                if call is None or call.specialist_id != principal.subject:
                    raise Forbidden("only the specialist on the call answers its review")
            if action == "proceed" and current is OperationState.AWAITING_REVIEW:
                check_answers(op.risk, answers)
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
            await audit_operation(
                session, "operation.reviewed", operation_id, now, by=principal, data=review
            )
            if target is OperationState.BLOCKED:
                self.record_block(session, op, now)
            await session.commit()
            await session.refresh(op)
        await desk_update(self.hub, op)
        if target is OperationState.AWAITING_CONFIRMATION:
            await request_confirmation(self.hub, op)
        elif target in (OperationState.HELD, OperationState.BLOCKED) and op.risk is not None:
            await warn_customer(self.hub, self.sessions, op, now)
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
            op = await visible_operation(session, principal, operation_id)
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
                await audit_operation(
                    session, "operation.refused_by_customer", operation_id, now, by=principal
                )
                self.record_decision(
                    session, OperationDecided(op.call_id, now, operation_id, "rejected")
                )
                await session.commit()
            else:
                op.confirmation = confirmation
                await self._execute(session, op, now)
            await session.refresh(op)
        await desk_update(self.hub, op)
        return operation_view(op, Role.CUSTOMER)

    async def _execute(self, session: AsyncSession, op: Operation, now: float) -> None:
        """Claim, execute and record in one transaction; a refusal rolls all of it back."""
        operation_id, version, call_id = op.operation_id, op.version, op.call_id
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
            # The check this operation waited for, else the call's latest.
            checked = liveness.bound_result(op)
            if checked is None:
                integrity = video_integrity(self.integrity, op.call_id)
                checked = integrity.liveness if integrity is not None else None
            params = await execution_params(session, op, now, checked)
            result = await self.core.execute(
                Transaction(session), operation_id, op.customer_id, op.kind, params, _now_dt(now)
            )
            await session.execute(
                update(Operation)
                .where(Operation.operation_id == operation_id)
                .values(result=result)
            )
            await audit_operation(
                session, "operation.executed", operation_id, now, data={"result": result}
            )
            self.record_decision(session, OperationDecided(call_id, now, operation_id, "executed"))
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
            await audit_operation(
                session, "operation.failed", operation_id, now, data={"reason": reason}
            )
            self.record_decision(session, OperationDecided(call_id, now, operation_id, "failed"))
            await session.commit()

    def record_decision(self, session: AsyncSession, event: OperationDecided) -> None:
        """Write the operation's final decision in ``session``'s transaction."""
        if self.events is not None:  # ids, not the row: also written after a rollback
            self.events.append(session, event)

    def record_block(self, session: AsyncSession, op: Operation, now: float) -> None:
        """A block is a final decision too, whoever made it: the engine at submission,
        a failed liveness check, or a specialist's review."""
        self.record_decision(session, OperationDecided(op.call_id, now, op.operation_id, "blocked"))

    async def expire_overdue_liveness(self, now: float) -> None:
        """Housekeeping: operations whose liveness verdict never came are decided as
        not passed (server/operations/liveness.py)."""
        await liveness.expire_overdue(self, now)

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
                await audit_operation(
                    session,
                    "operation.abandoned",
                    op.operation_id,
                    now,
                    data={"reason": "call_ended", "from_state": op.state},
                )
                self.record_decision(
                    session, OperationDecided(op.call_id, now, op.operation_id, "abandoned")
                )
            await session.commit()

    # -- lists -------------------------------------------------------------------------------
    async def block_payee(
        self, principal: Principal, account_no: str, reason: str, operation_id: str | None
    ) -> dict[str, Any]:
        return await block_payee(
            self.sessions, principal, account_no, reason, operation_id, self.clock()
        )
