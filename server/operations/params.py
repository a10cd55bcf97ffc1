"""What each operation kind takes, validated at the wire, and its plain-words summary."""

from __future__ import annotations

import re
from decimal import Decimal
from typing import Annotated, Any, Literal

from pydantic import (
    BeforeValidator,
    Field,
    StringConstraints,
    ValidationError,
)

from server.banking.amount_words import chinese_amount, english_amount
from server.errors import ValidationFailed
from server.validation import describe

from .counter_params import COUNTER_PARAMS, counter_summary
from .params_base import Params as _Params
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


class TransferParams(_Params):
    amount: Amount
    currency: Currency = "CNY"
    payee_account: AccountNo
    payee_name: Text100
    payee_bank: Annotated[str, StringConstraints(min_length=1, max_length=64)]
    payee_phone: Annotated[str, StringConstraints(pattern=r"^\+?[0-9]{6,20}$")] | None = None
    # The account paid from (a passbook account, say); without it, the current account.
    from_account: AccountNo | None = None


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
    # The account that funds the deposit (a passbook account, say).
    from_account: AccountNo | None = None


class PasswordResetParams(_Params):
    channel: Literal["mobile", "card", "passbook"] = "mobile"
    # The card or passbook whose password is reset, where the customer has several.
    account: Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{4,34}$")] | None = None


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
    **COUNTER_PARAMS,
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
    return model.model_dump(mode="json", exclude_none=True, by_alias=True)


def _money(amount: Any, currency: str) -> str:
    return f"{Decimal(str(amount)):,.2f} {currency}"


def _money_zh(amount: Any, currency: str) -> str:
    """Figures, then capital numerals for yuan (as on a counter slip)."""
    words = f"（{chinese_amount(amount)}）" if currency == "CNY" else ""
    return _money(amount, currency) + words


def _money_en(amount: Any, currency: str) -> str:
    words = f" ({english_amount(amount)})" if currency == "CNY" else ""
    return _money(amount, currency) + words


def _source(params: dict[str, Any]) -> tuple[str, str]:
    account = params.get("from_account")
    if not account:
        return "", ""
    return f"，从尾号{account[-4:]}的账户支付", f", paid from the account ending {account[-4:]}"


def summary(kind: Kind, params: dict[str, Any]) -> dict[str, str]:
    """What the customer is asked to confirm, in plain words."""
    counter = counter_summary(kind, params)
    if counter is not None:
        return counter
    if kind is Kind.TRANSFER:
        zh_money = _money_zh(params["amount"], params["currency"])
        en_money = _money_en(params["amount"], params["currency"])
        tail = params["payee_account"][-4:]
        name, bank = params["payee_name"], params["payee_bank"]
        zh_from, en_from = _source(params)
        return {
            "zh": f"转账 {zh_money} 给 {name}（{bank}，尾号{tail}）{zh_from}。",
            "en": f"Transfer {en_money} to {name} at {bank} (account ending {tail}){en_from}.",
        }
    if kind is Kind.LIMIT_CHANGE:
        zh_money = _money_zh(params["new_limit"], params["currency"])
        en_money = _money_en(params["new_limit"], params["currency"])
        return {
            "zh": f"把{params['channel']}渠道的每日转账限额改为 {zh_money}。",
            "en": f"Change your daily {params['channel']} transfer limit to {en_money}.",
        }
    if kind is Kind.TIME_DEPOSIT:
        if params["action"] == "open":
            zh_money = _money_zh(params["amount"], params["currency"])
            en_money = _money_en(params["amount"], params["currency"])
            zh_from, en_from = _source(params)
            return {
                "zh": f"存一笔{params['term_months']}个月定期，金额 {zh_money}{zh_from}。",
                "en": f"Open a {params['term_months']}-month time deposit of {en_money}{en_from}.",
            }
        return {
            "zh": "提前支取定期存款（利息会减少）。",
            "en": "Break your time deposit early (you will get less interest).",
        }
    if kind is Kind.PASSWORD_RESET:
        channel = params.get("channel", "mobile")
        if channel == "passbook":
            return {"zh": "重置您的存折密码。", "en": "Reset your passbook's password."}
        if channel == "card":
            return {"zh": "重置您的银行卡密码。", "en": "Reset your bank card's password."}
        return {"zh": "重置您的登录密码。", "en": "Reset your login password."}
    if kind is Kind.CARD_ACTIVATION:
        return {"zh": "激活您的新银行卡。", "en": "Activate your new bank card."}
    return {"zh": "查询账户余额。", "en": "Check your account balance."}
