"""What each operation kind takes, validated at the wire, and its plain-words summary."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    StringConstraints,
    ValidationError,
)

from server.errors import ValidationFailed
from server.validation import describe

from .state import Kind

_MONEY_TEXT = re.compile(r"[0-9]{1,12}(?:\.[0-9]{1,2})?")


def _ascii_money(value: Any) -> Any:
    """Money as text must be plain ASCII digits with at most two decimals.

    ``Decimal`` itself reads any Unicode digit ("１０.00" is 10.00) and exponents
    ("1e3"); neither is how an amount is written at the counter, so both are refused.
    """
    if isinstance(value, str) and not _MONEY_TEXT.fullmatch(value):
        raise ValueError("must be a decimal string of ASCII digits with at most 2 decimals")
    if isinstance(value, float):
        raise ValueError("send money as a decimal string, not a JSON float")
    return value


Amount = Annotated[
    Decimal,
    BeforeValidator(_ascii_money),
    Field(gt=0, le=Decimal("100000000"), max_digits=12, decimal_places=2),
]
Currency = Annotated[str, StringConstraints(pattern=r"^[A-Z]{3}$")]
AccountNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,34}$")]
Text100 = Annotated[str, StringConstraints(min_length=1, max_length=100, strip_whitespace=True)]


class _Params(BaseModel):
    model_config = ConfigDict(extra="forbid")


class TransferParams(_Params):
    amount: Amount
    currency: Currency = "CNY"
    payee_account: AccountNo
    payee_name: Text100
    payee_bank: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    payee_phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{6,20}$")] | None = None


class LimitChangeParams(_Params):
    channel: Literal["counter", "mobile", "atm"]
    new_limit: Annotated[
        Decimal,
        BeforeValidator(_ascii_money),
        Field(ge=0, le=Decimal("10000000"), decimal_places=2),
    ]
    currency: Currency = "CNY"


class TimeDepositParams(_Params):
    action: Literal["open", "break"]
    amount: Amount | None = None
    currency: Currency = "CNY"
    term_months: Literal[3, 6, 12, 24, 36, 60] | None = None
    deposit_id: Annotated[str, StringConstraints(max_length=32)] | None = None


class PasswordResetParams(_Params):
    channel: Literal["mobile", "card"] = "mobile"


class CardActivationParams(_Params):
    card_id: Annotated[str, StringConstraints(max_length=32)] | None = None
    last4: Annotated[str, StringConstraints(pattern=r"^[0-9]{4}$")] | None = None


class BalanceInquiryParams(_Params):
    pass


PARAMS: dict[Kind, type[_Params]] = {
    Kind.TRANSFER: TransferParams,
    Kind.LIMIT_CHANGE: LimitChangeParams,
    Kind.TIME_DEPOSIT: TimeDepositParams,
    Kind.PASSWORD_RESET: PasswordResetParams,
    Kind.CARD_ACTIVATION: CardActivationParams,
    Kind.BALANCE_INQUIRY: BalanceInquiryParams,
}


def parse_params(kind: Kind, raw: dict[str, Any]) -> dict[str, Any]:
    """Validate ``raw`` for ``kind``; money comes back as decimal strings."""
    try:
        model = PARAMS[kind].model_validate(raw)
    except ValidationError as exc:
        raise ValidationFailed(f"params: {describe(exc)}") from exc
    if isinstance(model, TimeDepositParams):
        if model.action == "open" and (model.amount is None or model.term_months is None):
            raise ValidationFailed("params: opening a deposit needs amount and term_months")
        if model.action == "break" and model.deposit_id is None:
            raise ValidationFailed("params: breaking a deposit needs deposit_id")
    return model.model_dump(mode="json", exclude_none=True)


def _money(amount: Any, currency: str) -> str:
    return f"{Decimal(str(amount)):,.2f} {currency}"


def summary(kind: Kind, params: dict[str, Any]) -> dict[str, str]:
    """What the customer is asked to confirm, in plain words."""
    if kind is Kind.TRANSFER:
        money = _money(params["amount"], params["currency"])
        tail = params["payee_account"][-4:]
        name, bank = params["payee_name"], params["payee_bank"]
        return {
            "zh": f"转账 {money} 给 {name}（{bank}，尾号{tail}）。",
            "en": f"Transfer {money} to {name} at {bank} (account ending {tail}).",
        }
    if kind is Kind.LIMIT_CHANGE:
        money = _money(params["new_limit"], params["currency"])
        return {
            "zh": f"把{params['channel']}渠道的每日转账限额改为 {money}。",
            "en": f"Change your daily {params['channel']} transfer limit to {money}.",
        }
    if kind is Kind.TIME_DEPOSIT:
        if params["action"] == "open":
            money = _money(params["amount"], params["currency"])
            return {
                "zh": f"存一笔{params['term_months']}个月定期，金额 {money}。",
                "en": f"Open a {params['term_months']}-month time deposit of {money}.",
            }
        return {
            "zh": "提前支取定期存款（利息会减少）。",
            "en": "Break your time deposit early (you will get less interest).",
        }
    if kind is Kind.PASSWORD_RESET:
        return {"zh": "重置您的登录密码。", "en": "Reset your login password."}
    if kind is Kind.CARD_ACTIVATION:
        return {"zh": "激活您的新银行卡。", "en": "Activate your new bank card."}
    return {"zh": "查询账户余额。", "en": "Check your account balance."}
