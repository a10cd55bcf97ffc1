"""What a ledger handler is given, what it gives back, and the customer events it leaves."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import CustomerEvent


@dataclass(frozen=True)
class Request:
    operation_id: str
    customer_id: str
    kind: str
    params: Mapping[str, Any]
    now: datetime


@dataclass
class Outcome:
    """A handler's result, and how much the clearing account's balance changes."""

    result: dict[str, Any]
    clearing_delta: Decimal = field(default_factory=Decimal)


def record_customer_event(
    session: AsyncSession, req: Request, kind: str, data: dict[str, Any]
) -> None:
    """Note what the operation changed for the customer (the risk engine reads these)."""
    session.add(
        CustomerEvent(
            customer_id=req.customer_id,
            kind=kind,
            at=req.now,
            data={**data, "operation_id": req.operation_id},
        )
    )
