"""What a ledger handler is given and what it gives back."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from typing import Any


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
