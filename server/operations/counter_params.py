"""Parameters and plain-words summaries of the counter's everyday kinds.

Fixed so that apps and desks can integrate:
``passbook_statement {"entries"?}``, ``loss_report {"medium", "stage"}``,
``replacement {"medium"}``, ``contact_change {"phone"}``,
``pension_certification {}``, ``certificate {"type", "from"?, "to"?}``.
Where the customer holds more than one medium or account of a kind, an
optional ``account`` names it (an account number; for a card, also its card id
or last four digits); without it the customer's only one is used, or the
request is refused naming the choices (checked against the ledger when the
operation starts).
"""

from __future__ import annotations

import re
from datetime import date
from typing import Annotated, Any, Literal

from pydantic import ConfigDict, Field, StringConstraints, field_validator, model_validator

from server.banking.certificates import MAX_STATEMENT_DAYS

from .params_base import Params
from .state import Kind

#: An account number, card id, or a card's last four digits.
MediumRef = Annotated[str, StringConstraints(pattern=r"^[0-9A-Za-z]{4,34}$")]
AccountNo = Annotated[str, StringConstraints(pattern=r"^[0-9]{6,34}$")]
_MOBILE = re.compile(r"^(?:\+?86)?(1[3-9][0-9]{9})$")


class PassbookStatementParams(Params):
    entries: int = Field(default=10, ge=1, le=60)
    account: AccountNo | None = None


class LossReportParams(Params):
    medium: Literal["card", "passbook"]
    stage: Literal["temporary", "formal"]
    account: MediumRef | None = None


class ReplacementParams(Params):
    medium: Literal["card", "passbook"]
    account: MediumRef | None = None


class ContactChangeParams(Params):
    phone: Annotated[str, StringConstraints(min_length=11, max_length=20)]

    @field_validator("phone")
    @classmethod
    def _mainland_mobile(cls, value: str) -> str:
        match = _MOBILE.fullmatch(value.replace(" ", "").replace("-", ""))
        if match is None:
            raise ValueError("must be a mainland mobile number (11 digits starting with 1)")
        return match.group(1)


class PensionCertificationParams(Params):
    pass


class CertificateParams(Params):
    model_config = ConfigDict(extra="forbid", populate_by_name=True)

    type: Literal["deposit", "statement"]
    from_: date | None = Field(default=None, alias="from")
    to: date | None = None
    account: AccountNo | None = None

    @field_validator("from_", "to", mode="before")
    @classmethod
    def _rfc3339_date(cls, value: Any) -> Any:
        # Dates only ("2026-11-30"), as RFC 3339's full-date; not numbers, not times.
        if value is not None and (
            not isinstance(value, str) or not re.fullmatch(r"[0-9]{4}-[0-9]{2}-[0-9]{2}", value)
        ):
            raise ValueError("must be an RFC 3339 date (YYYY-MM-DD)")
        return value

    @model_validator(mode="after")
    def _period(self) -> CertificateParams:
        if self.type == "deposit" and self.from_ is not None:
            raise ValueError("a deposit certificate is as of one day: give 'to' only")
        if self.from_ is not None and self.to is not None:
            if self.from_ > self.to:
                raise ValueError("'from' is after 'to'")
            if (self.to - self.from_).days > MAX_STATEMENT_DAYS:
                raise ValueError(f"a statement covers at most {MAX_STATEMENT_DAYS} days")
        return self


COUNTER_PARAMS: dict[Kind, type[Params]] = {
    Kind.PASSBOOK_STATEMENT: PassbookStatementParams,
    Kind.LOSS_REPORT: LossReportParams,
    Kind.REPLACEMENT: ReplacementParams,
    Kind.CONTACT_CHANGE: ContactChangeParams,
    Kind.PENSION_CERTIFICATION: PensionCertificationParams,
    Kind.CERTIFICATE: CertificateParams,
}

_MEDIUM = {"card": ("银行卡", "bank card"), "passbook": ("存折", "passbook")}


def _which(params: dict[str, Any]) -> tuple[str, str]:
    ref = params.get("account")
    if not ref:
        return "", ""
    return f"（尾号{ref[-4:]}）", f" (ending {ref[-4:]})"


def counter_summary(kind: Kind, params: dict[str, Any]) -> dict[str, str] | None:
    """What the customer confirms for the counter's kinds (None: not one of them)."""
    zh_which, en_which = _which(params)
    if kind is Kind.PASSBOOK_STATEMENT:
        n = params.get("entries", 10)
        return {
            "zh": f"查看存折{zh_which}余额和最近{n}笔明细。",
            "en": f"Show your passbook{en_which} balance and its last {n} entries.",
        }
    if kind in (Kind.LOSS_REPORT, Kind.REPLACEMENT):
        zh_medium, en_medium = _MEDIUM[params["medium"]]
        if kind is Kind.REPLACEMENT:
            return {
                "zh": f"补办您挂失的{zh_medium}{zh_which}：发给您新的{zh_medium}，"
                f"旧{zh_medium}作废，永久不能再用。",
                "en": f"Replace your lost {en_medium}{en_which}: you get a new {en_medium}; "
                f"the old one stays cancelled for good.",
            }
        if params["stage"] == "temporary":
            return {
                "zh": f"临时挂失您的{zh_medium}{zh_which}：马上冻结，挂失期间这个{zh_medium}"
                "账户不能取钱、转账、存定期或重置密码。",
                "en": f"Report your {en_medium}{en_which} lost, for now: it is blocked at once, "
                "and nothing can be paid from its account until it is replaced.",
            }
        return {
            "zh": f"正式挂失您的{zh_medium}{zh_which}（书面挂失），之后可以补办新的{zh_medium}。",
            "en": f"Make the loss report of your {en_medium}{en_which} formal, "
            f"so that a new {en_medium} can be issued.",
        }
    if kind is Kind.CONTACT_CHANGE:
        tail = params["phone"][-4:]
        return {
            "zh": f"把接收短信验证码的手机号改为尾号{tail}的新号码。",
            "en": f"Change the mobile number that gets your SMS codes to the one ending {tail}.",
        }
    if kind is Kind.PENSION_CERTIFICATION:
        return {
            "zh": "现在通过视频为您办理今年的养老金资格认证（确认本人健在），全程录像留证。",
            "en": "Certify, by this video call, that you are entitled to your pension this "
            "year; the call's recording is kept as the evidence.",
        }
    if kind is Kind.CERTIFICATE:
        start, end = params.get("from"), params.get("to")
        if params["type"] == "deposit":
            day = end or "今天"
            return {
                "zh": f"开具存款证明（截至{day}），生成PDF文件给您。",
                "en": f"Issue a deposit certificate (as of {end or 'today'}) as a PDF for you.",
            }
        period_zh = f"{start or '三个月前'}至{end or '今天'}"
        period_en = f"{start or 'three months ago'} to {end or 'today'}"
        return {
            "zh": f"开具账户对账单（{period_zh}），生成PDF文件给您。",
            "en": f"Issue an account statement ({period_en}) as a PDF for you.",
        }
    return None
