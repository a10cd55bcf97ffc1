"""Operation states and the pure rules that move between them."""

from __future__ import annotations

import enum
from typing import Any

from server.errors import Conflict, IllegalTransition, ValidationFailed


class OperationState(enum.StrEnum):
    # A sensitive operation waits for the liveness challenge it sent the customer
    # (server/operations/liveness.py); nothing can be answered or confirmed yet.
    AWAITING_LIVENESS = "awaiting_liveness"
    AWAITING_REVIEW = "awaiting_review"
    AWAITING_CONFIRMATION = "awaiting_confirmation"
    HELD = "held"
    BLOCKED = "blocked"
    EXECUTED = "executed"
    REJECTED = "rejected"
    FAILED = "failed"


class Kind(enum.StrEnum):
    BALANCE_INQUIRY = "balance_inquiry"
    TIME_DEPOSIT = "time_deposit"
    PASSWORD_RESET = "password_reset"
    TRANSFER = "transfer"
    LIMIT_CHANGE = "limit_change"
    CARD_ACTIVATION = "card_activation"
    # The counter's everyday business (server/banking/counter.py).
    PASSBOOK_STATEMENT = "passbook_statement"
    LOSS_REPORT = "loss_report"
    REPLACEMENT = "replacement"
    CONTACT_CHANGE = "contact_change"
    PENSION_CERTIFICATION = "pension_certification"
    CERTIFICATE = "certificate"


# The risk engine decides on every kind inline, before anything else happens
# (what it reads per kind: server/operations/assessment.py).
RISK_CHECKED = frozenset(Kind)
# Everything that changes money, credentials, media or records waits for the
# customer's own yes; reading what the customer already owns (a balance, the
# passbook's last entries) is done at once, as at the counter.
READ_ONLY = frozenset({Kind.BALANCE_INQUIRY, Kind.PASSBOOK_STATEMENT})
NEEDS_CONFIRMATION = frozenset(Kind) - READ_ONLY
PENDING = frozenset(
    {
        OperationState.AWAITING_LIVENESS,
        OperationState.AWAITING_REVIEW,
        OperationState.AWAITING_CONFIRMATION,
    }
)
FINAL = frozenset(
    {
        OperationState.BLOCKED,
        OperationState.EXECUTED,
        OperationState.REJECTED,
        OperationState.FAILED,
    }
)


def state_for_decision(decision: str) -> OperationState:
    """Where a risk decision puts a new operation."""
    return {
        "allow": OperationState.AWAITING_CONFIRMATION,
        "warn": OperationState.AWAITING_CONFIRMATION,
        "review": OperationState.AWAITING_REVIEW,
        "hold": OperationState.HELD,
        "block": OperationState.BLOCKED,
    }[decision]


def _check_not_waiting(current: OperationState, action: str) -> None:
    if current is OperationState.AWAITING_LIVENESS:
        raise Conflict(
            f"operation is awaiting_liveness; cannot {action} before its liveness check "
            "has a result",
            code="liveness_pending",
        )


def state_for_review(current: OperationState, action: str) -> OperationState:
    """A specialist's answer to a review (or to a hold: release or cancel)."""
    _check_not_waiting(current, f"{action} it")
    if current is OperationState.AWAITING_REVIEW:
        return {
            "proceed": OperationState.AWAITING_CONFIRMATION,
            "hold": OperationState.HELD,
            "block": OperationState.BLOCKED,
        }[action]
    if current is OperationState.HELD:
        if action == "proceed":
            return OperationState.AWAITING_CONFIRMATION
        if action == "block":
            return OperationState.BLOCKED
    raise IllegalTransition("operation", current.value, f"{action} it")


def check_confirmable(current: OperationState) -> None:
    _check_not_waiting(current, "confirm it")
    if current is not OperationState.AWAITING_CONFIRMATION:
        raise IllegalTransition("operation", current.value, "confirm it")


def check_answers(risk_json: dict[str, Any] | None, answers: dict[str, str] | None) -> None:
    """Proceeding past a review needs an answer to every scripted question.

    An answer is keyed by the question's text or by ``"<reason code>.<n>"`` (n from 1).
    """
    given = answers or {}
    missing: list[str] = []
    for reason in (risk_json or {}).get("reasons", []):
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
