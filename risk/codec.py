"""Decoding evaluation cases from JSON-like data (JSONL backtests, scenario files).

A case is one mapping::

    {
      "id": "case-17",                       optional
      "label": "scam" | "legit" | null,      optional
      "description": "...",                  optional
      "now": "2025-03-10T02:15:00Z",         required, timezone aware
      "operation": {"kind": "transfer", "amount": "50000.00", "currency": "CNY",
                    "payee_account": "...", "payee_name": "...", "payee_bank": "...",
                    "payee_phone": null, "channel": null, "new_limit": null},
      "profile": {"customer_id": "C1001", "name": "...", "age": 74, "tenure_days": 4000,
                  "balance": "82000.00", "home_bank": "ICBC",
                  "history": {"transactions": [{"at": "...", "amount": "...",
                                                "payee_account": "...", "local_hour": 10}],
                              "series": [{"start": "...", "every_days": 30, "count": 12,
                                          "amount": "2000", "payee_account": "...",
                                          "local_hour": 10}]},
                  "known_payees": [{"account": "...", "first_seen": "2019-05-01",
                                    "name": "...", "relation": "family"}],
                  "recent_events": [{"kind": "password_reset", "at": "..."}]},
      "session": {"call_id": "...", "redirect_kind": null, "stated_reason": "...",
                  "local_time": "2025-03-10T10:15:00", "contact_phones": [],
                  "video_integrity": {"status": "suspect", "signals": ["video_frozen"],
                                      "liveness": "failed"},
                  "earlier_operations": [{"kind": "limit_change", "at": "...",
                                          "outcome": "executed", "new_limit": "100000",
                                          "currency": "CNY"}]},
      "lists": {"blocked_accounts": [], "blocked_phones": [], "allow_list": [
                  {"customer_id": "C1001", "payee_account": "...",
                   "expires_at": "...", "reason": "..."}],
                "snoozes": [{"rule_code": "night_transfer", "expires_at": "...",
                             "reason": "...", "customer_id": null}]}
    }

A missing or null field is unknown, exactly as ``None`` in the dataclasses:
``"history": null`` is "history not loaded", ``"transactions": []`` is "no
transfers"; ``"video_integrity": null`` (or absent) is "no analysis".
``series`` expands to ``count`` transfers ``every_days`` apart.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from pydantic import AwareDatetime, TypeAdapter, ValidationError

from risk.habits import HabitProfile, Transaction
from risk.model import CallSession, CustomerProfile, Operation, RiskLists

_NOW: TypeAdapter[AwareDatetime] = TypeAdapter(AwareDatetime)
_OPERATION = TypeAdapter(Operation)
_PROFILE = TypeAdapter(CustomerProfile)
_SESSION = TypeAdapter(CallSession)
_LISTS = TypeAdapter(RiskLists)
_TRANSACTIONS = TypeAdapter(list[Transaction])

LABELS = ("scam", "legit")


class CaseError(ValueError):
    """A case that cannot be decoded; the message names the part and the problem."""


@dataclass(frozen=True)
class Case:
    """Everything one evaluation needs, plus its optional label."""

    now: datetime
    operation: Operation
    profile: CustomerProfile | None
    session: CallSession | None
    lists: RiskLists | None
    id: str | None = None
    label: str | None = None
    description: str | None = None


def _validate(adapter: TypeAdapter[Any], value: object, part: str) -> Any:
    try:
        return adapter.validate_python(value)
    except ValidationError as exc:
        first = exc.errors()[0]
        where = ".".join(str(p) for p in first["loc"])
        raise CaseError(f"{part}{'.' + where if where else ''}: {first['msg']}") from None


def _history(raw: object, now: datetime) -> HabitProfile | None:
    if raw is None:
        return None
    if not isinstance(raw, Mapping):
        raise CaseError("profile.history: must be a mapping or null")
    txns: list[Transaction] = _validate(
        _TRANSACTIONS, raw.get("transactions", []), "profile.history.transactions"
    )
    for i, series in enumerate(raw.get("series", [])):
        part = f"profile.history.series[{i}]"
        try:
            start = _NOW.validate_python(series["start"])
            every = timedelta(days=float(series["every_days"]))
            amount = Decimal(str(series["amount"]))
            count = int(series["count"])
        except (KeyError, TypeError, ValueError, ArithmeticError, ValidationError) as exc:
            raise CaseError(f"{part}: needs start, every_days, count and amount ({exc})") from None
        for n in range(count):
            txns.append(
                Transaction(
                    at=start + n * every,
                    amount=amount,
                    payee_account=series.get("payee_account"),
                    local_hour=series.get("local_hour"),
                )
            )
    return HabitProfile.from_transactions(txns, as_of=now)


def decode_case(raw: object) -> Case:
    """Decode one case mapping; raise :class:`CaseError` on bad input."""
    if not isinstance(raw, Mapping):
        raise CaseError("a case must be a JSON object")
    if "now" not in raw:
        raise CaseError("now: required")
    now: datetime = _validate(_NOW, raw["now"], "now")
    if not isinstance(raw.get("operation"), Mapping):
        raise CaseError("operation: required object")
    operation: Operation = _validate(_OPERATION, raw["operation"], "operation")

    profile: CustomerProfile | None = None
    if raw.get("profile") is not None:
        fields = dict(raw["profile"])
        history = fields.pop("history", None)
        profile = _validate(_PROFILE, fields, "profile")
        profile = replace(profile, habits=_history(history, now))
    session: CallSession | None = (
        None if raw.get("session") is None else _validate(_SESSION, raw["session"], "session")
    )
    lists: RiskLists | None = (
        None if raw.get("lists") is None else _validate(_LISTS, raw["lists"], "lists")
    )
    label = raw.get("label")
    if label is not None and label not in LABELS:
        raise CaseError(f"label: must be one of {LABELS} or null, got {label!r}")
    return Case(
        now=now,
        operation=operation,
        profile=profile,
        session=session,
        lists=lists,
        id=None if raw.get("id") is None else str(raw["id"]),
        label=label,
        description=raw.get("description"),
    )
