"""The core-banking boundary: what executing an in-call operation means.

The call and operation layer never touches balances itself. It asks a
:class:`server.ports.CoreBanking` implementation to execute a confirmed operation
and stores the returned result on the operation. The embedded default is
:class:`server.banking.ledger.SqlLedger`, a double-entry ledger in the service's
own database; a bank's real core system would sit behind the same Protocol (its
methods take the operation's unit of work as an opaque
:class:`server.ports.Transaction`, not a database session).

Contract of ``CoreBanking.execute``:

- **Atomic.** It works within the caller's unit of work (for the SQL ledger, the
  operation's session and transaction). Everything it writes (transfer,
  postings, balances, payee, events, audit entry) lands in that transaction or
  not at all; the caller commits.
- **Idempotent per operation id.** Executing the same operation again returns
  the result of the first execution and moves no money; two concurrent
  executions of one operation post once.
- **Refusals leave the ledger untouched.** A business refusal raises
  :class:`ExecutionFailed` with a stable ``reason_code``; any other exception
  also propagates. Either way the ledger's writes have been undone and the
  caller's transaction is still usable, so the caller can record the operation as
  ``failed`` with the reason in the same transaction.

Operation kinds and their ``params`` (money is a decimal *string*, never a float):

``balance_inquiry``  ``{}``
``transfer``         ``{"amount", "currency", "payee_account", "payee_name",
                     "payee_bank", "payee_phone"?, "from_account"?}``
``limit_change``     ``{"channel": "mobile"|"counter"|"atm", "new_limit", "currency"}``
``time_deposit``     ``{"action": "open", "amount", "currency", "term_months",
                     "from_account"?}`` or ``{"action": "break", "deposit_id"}``
``password_reset``   ``{"channel"?: "mobile"|"card"}`` (default ``mobile``)
``card_activation``  ``{"card_id"?, "last4"?}`` (neither: the customer's one card
                     waiting for activation)

The counter's everyday kinds (:mod:`server.banking.counter`):

``passbook_statement``     ``{"entries"?, "account"?}``: the passbook's last entries
``loss_report``            ``{"medium": "card"|"passbook", "stage": "temporary"|"formal",
                           "account"?}``
``replacement``            ``{"medium", "account"?}``: after a formal loss report
``contact_change``         ``{"phone"}``: the mobile number for SMS codes
``pension_certification``  ``{}`` plus the evidence the operation layer adds
``certificate``            ``{"type": "deposit"|"statement", "from"?, "to"?, "account"?}``
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import UTC, datetime, timedelta, timezone
from decimal import ROUND_HALF_UP, Decimal, InvalidOperation
from typing import Any, Final

from server.errors import Conflict

#: The ledger's currency. Accounts, limits and habit statistics are in CNY.
HOME_CURRENCY: Final = "CNY"

#: The bank's own code, compared with a payee's bank by the risk engine.
HOME_BANK: Final = "ICBC"

#: Customers' local time. China keeps one zone with no daylight saving, so a
#: fixed offset is exact and needs no time zone database.
LOCAL_TZ: Final = timezone(timedelta(hours=8), "Asia/Shanghai")

#: The internal clearing account every transfer's second leg posts to.
CLEARING_ACCOUNT_ID: Final = "CLR-CNY-0001"

#: Customer accounts money may be paid from (and that count as the balance at
#: hand), in order of preference.
SOURCE_KINDS: Final = ("current", "passbook", "savings")

#: Channels that carry a daily transfer limit.
CHANNELS: Final = frozenset({"mobile", "counter", "atm"})

#: The channel the cloud branch's transfers count against. A video call with a
#: specialist is counter service (the specialist acts as the teller and the
#: customer is identified in person), so the counter limit applies, not the
#: mobile app's.
BRANCH_CHANNEL: Final = "counter"

#: The bank's default daily limits, for a customer with no limit of their own.
DEFAULT_DAILY_LIMITS: Final[Mapping[str, Decimal]] = {
    "counter": Decimal("50000.00"),
    "mobile": Decimal("20000.00"),
    "atm": Decimal("20000.00"),
}

CENT: Final = Decimal("0.01")
#: Largest amount or limit the ledger accepts (Numeric(18, 2) holds far more).
MAX_AMOUNT: Final = Decimal("100000000.00")


class ExecutionFailed(Conflict):
    """The core refused to execute the operation; nothing was changed.

    ``reason_code`` is stable and machine-readable (it becomes the operation's
    failure reason); ``detail`` is a sentence for the specialist. Codes:

    ``invalid_params``, ``unknown_customer``, ``unknown_account``,
    ``currency_mismatch``, ``insufficient_funds``, ``over_daily_limit``,
    ``payee_blocked``, ``deposit_not_found``, ``deposit_not_open``,
    ``card_not_found``, ``card_ambiguous``, ``card_already_active``,
    ``card_blocked``, ``unsupported_kind``, ``operation_id_reused``; for the
    counter's kinds ``medium_not_found``, ``medium_ambiguous``,
    ``medium_reported_lost``, ``already_reported``, ``not_reported``,
    ``loss_report_not_formal``, ``phone_unchanged``, ``already_certified``,
    ``evidence_missing``, ``account_ambiguous``, ``document_unavailable``.
    """

    title = "Operation failed"

    def __init__(self, reason_code: str, detail: str) -> None:
        super().__init__(detail, code=reason_code)
        self.reason_code = reason_code

    @property
    def reason(self) -> str:
        """The reason code (the name the operation layer reads)."""
        return self.reason_code


# ---------------------------------------------------------------------- money


def cents(value: Decimal) -> Decimal:
    """``value`` rounded half-up to whole cents."""
    return value.quantize(CENT, rounding=ROUND_HALF_UP)


def money_str(value: Decimal) -> str:
    """The wire form of an amount: a decimal string with two places."""
    return str(cents(value))


def parse_money(value: object, field: str, *, allow_zero: bool = False) -> Decimal:
    """A positive amount in whole cents from a decimal string (or an int).

    Floats are refused: they cannot represent most cent amounts exactly. More
    than two decimal places is refused rather than rounded, because rounding a
    customer's money silently is never right.
    """
    if isinstance(value, bool) or not isinstance(value, str | int | Decimal):
        raise ExecutionFailed("invalid_params", f"{field} must be a decimal string")
    try:
        amount = Decimal(value.strip() if isinstance(value, str) else value)
    except (InvalidOperation, ValueError):
        raise ExecutionFailed("invalid_params", f"{field} is not a decimal number") from None
    if not amount.is_finite():
        raise ExecutionFailed("invalid_params", f"{field} is not a finite number")
    if cents(amount) != amount:
        raise ExecutionFailed("invalid_params", f"{field} has more than two decimal places")
    if amount < 0 or (amount == 0 and not allow_zero):
        raise ExecutionFailed("invalid_params", f"{field} must be greater than zero")
    if amount > MAX_AMOUNT:
        raise ExecutionFailed("invalid_params", f"{field} is larger than the ledger accepts")
    return cents(amount)


def parse_currency(value: object) -> str:
    """A currency code; the ledger keeps CNY only, so anything else is refused."""
    if not isinstance(value, str) or len(value.strip()) != 3:
        raise ExecutionFailed("invalid_params", "currency must be a three-letter code")
    code = value.strip().upper()
    if code != HOME_CURRENCY:
        raise ExecutionFailed("currency_mismatch", f"accounts are kept in {HOME_CURRENCY}")
    return code


def parse_text(params: Mapping[str, Any], field: str, max_len: int) -> str:
    """A required, non-blank string parameter of at most ``max_len`` characters."""
    value = params.get(field)
    if not isinstance(value, str) or not value.strip():
        raise ExecutionFailed("invalid_params", f"{field} is required")
    text = value.strip()
    if len(text) > max_len:
        raise ExecutionFailed("invalid_params", f"{field} is longer than {max_len} characters")
    return text


def optional_text(params: Mapping[str, Any], field: str, max_len: int) -> str | None:
    """Like :func:`parse_text`, but absent or null is allowed."""
    if params.get(field) is None:
        return None
    return parse_text(params, field, max_len)


def local_day_start(now: datetime) -> datetime:
    """Midnight of the customer's local day containing ``now`` (aware)."""
    local = now.astimezone(LOCAL_TZ)
    return local.replace(hour=0, minute=0, second=0, microsecond=0)


def iso(at: datetime) -> str:
    """RFC 3339 in UTC, as the API writes times."""
    return at.astimezone(UTC).isoformat().replace("+00:00", "Z")


def new_id(prefix: str) -> str:
    """A fresh identifier with a readable prefix (fits the 32-character columns)."""
    return f"{prefix}{uuid.uuid4().hex[:24]}"
