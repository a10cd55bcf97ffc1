"""What the risk engine is told about each operation kind: one table, one entry per kind.

Every operation is assessed, whatever its kind: most counter operations are
allowed, but a scam story in the customer's words, a mention of screen
sharing, or a takeover sequence on the account raises a review. An entry says
which params the engine reads for its kind; a new kind is one more entry.
Facts the params do not carry (a time deposit's principal and the interest an
early break gives up) come from the core-banking system first
(``CoreBanking.operation_facts``).
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from decimal import Decimal
from typing import Any, Protocol

import risk

from .state import Kind

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

    async def before_operation(
        self, call_id: str, kind: str, params: dict[str, Any], operation_id: str
    ) -> str | None: ...


def video_integrity(source: IntegritySource | None, call_id: str) -> risk.VideoIntegrity | None:
    """What the engine is told of the customer's video: None (unknown) when nothing
    analyses it (direct media, analysis off or not started, the leg gone)."""
    if source is None:
        return None
    try:
        return source.risk_input(call_id)
    except Exception:  # the engine's fail-safe rules then treat it as unknown
        return None
