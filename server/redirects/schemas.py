"""The redirect on the wire: what the mobile banking backend sends, and our answer.

The ``context`` is a closed, bounded object per ``kind`` (unknown fields are
refused): it ends up in front of a specialist and, for ``transfer_over_limit``,
becomes a transfer the risk engine weighs, so nothing loose gets through.
Money is a decimal string and comes back normalised to two places, so the same
event sent twice with ``"5000"`` and ``"5000.00"`` is recognised as the same.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from typing import Annotated, Any, Literal

from pydantic import (
    AwareDatetime,
    BaseModel,
    ConfigDict,
    Field,
    RootModel,
    StrictInt,
    StringConstraints,
    field_serializer,
    field_validator,
)

EVENT_ID = r"^[A-Za-z0-9][A-Za-z0-9._:\-]{0,63}$"
CUSTOMER_ID = r"^[A-Za-z0-9_\-]{1,32}$"
# The largest amount a redirected transfer may carry; the same ceiling as a
# transfer operation's, so every redirected transfer is a valid operation.
MAX_AMOUNT = Decimal("100000000")

Kind = Literal["password_locked", "transfer_over_limit"]
Money = Annotated[str, StringConstraints(pattern=r"^[0-9]{1,12}(\.[0-9]{1,2})?$")]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
AccountNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,34}$")]
Name = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=100)]
Bank = Annotated[str, StringConstraints(strip_whitespace=True, min_length=1, max_length=64)]
Channel = Literal["mobile", "online", "atm", "counter"]


def _money(value: str, *, positive: bool) -> str:
    try:
        amount = Decimal(value)
    except InvalidOperation as exc:  # the pattern makes this unreachable; kept as a guard
        raise ValueError("not a decimal amount") from exc
    if positive and amount <= 0:
        raise ValueError("must be more than zero")
    if amount > MAX_AMOUNT:
        raise ValueError(f"must be at most {MAX_AMOUNT}")
    return f"{amount:.2f}"


class _Closed(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class _Timed(_Closed):
    @field_serializer("*", when_used="json")
    def _utc(self, value: Any) -> Any:
        # Times are stored and shown as RFC 3339 UTC, whatever offset they came with.
        if isinstance(value, datetime):
            return value.astimezone(UTC).isoformat().replace("+00:00", "Z")
        return value


class PasswordLockedContext(_Timed):
    """What the bank knows of a lock-out; everything is optional."""

    failed_attempts: StrictInt | None = Field(default=None, ge=1, le=1000)
    locked_at: AwareDatetime | None = None
    channel: Channel | None = None


class TransferContext(_Timed):
    """The transfer the customer tried and the bank stopped for being over the limit."""

    amount: Money
    currency: Currency
    payee_account: AccountNo
    payee_name: Name
    payee_bank: Bank
    daily_limit: Money | None = None
    attempted_at: AwareDatetime | None = None
    channel: Channel | None = None

    @field_validator("amount")
    @classmethod
    def _amount(cls, value: str) -> str:
        return _money(value, positive=True)

    @field_validator("daily_limit")
    @classmethod
    def _limit(cls, value: str | None) -> str | None:
        return None if value is None else _money(value, positive=False)


class _Redirect(_Closed):
    event_id: str = Field(pattern=EVENT_ID, description="the sender's id; idempotency key")
    customer_id: str = Field(pattern=CUSTOMER_ID)


class PasswordLocked(_Redirect):
    kind: Literal["password_locked"]
    context: PasswordLockedContext


class TransferOverLimit(_Redirect):
    kind: Literal["transfer_over_limit"]
    context: TransferContext


RedirectEvent = PasswordLocked | TransferOverLimit


class RedirectRequest(RootModel[Annotated[RedirectEvent, Field(discriminator="kind")]]):
    """``POST /api/v1/redirects``: one scenario redirect, signed by the sender."""


class RedirectResponse(BaseModel):
    ticket: str
    deep_link: str
    expires_at: str = Field(description="RFC 3339 UTC")


def context_json(event: RedirectEvent) -> dict[str, Any]:
    """The validated context as stored: JSON types, no unset optional fields."""
    data: dict[str, Any] = event.context.model_dump(mode="json", exclude_none=True)
    return data
