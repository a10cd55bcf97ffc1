"""Models of in-call banking: ledger, operations, risk lists, redirects, callbacks, audit.

Money is ``Numeric(18, 2)`` and :class:`decimal.Decimal` in Python, never float.
"""

from __future__ import annotations

from datetime import datetime
from decimal import Decimal
from typing import Any

from sqlalchemy import (
    JSON,
    Boolean,
    ForeignKey,
    Index,
    Integer,
    Numeric,
    String,
    Text,
    UniqueConstraint,
)
from sqlalchemy.orm import Mapped, mapped_column

from .models import Base

Money = Numeric(18, 2)


class Account(Base):
    """A customer's account, or an internal one (``customer_id`` None: clearing)."""

    __tablename__ = "accounts"

    account_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str | None] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    kind: Mapped[str] = mapped_column(String(16))  # current, savings, passbook, clearing
    currency: Mapped[str] = mapped_column(String(3))
    balance: Mapped[Decimal] = mapped_column(Money)
    opened_at: Mapped[datetime]


class Posting(Base):
    """One leg of a double-entry transfer; a transfer's postings sum to zero."""

    __tablename__ = "postings"

    posting_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    transfer_id: Mapped[str] = mapped_column(ForeignKey("transfers.transfer_id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    posted_at: Mapped[datetime]


class Transfer(Base):
    """A money movement; ``operation_id`` makes execution idempotent."""

    __tablename__ = "transfers"

    transfer_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    operation_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    from_account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    payee_account: Mapped[str] = mapped_column(String(34))
    payee_name: Mapped[str] = mapped_column(String(100))
    payee_bank: Mapped[str] = mapped_column(String(64))
    amount: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    direction: Mapped[str] = mapped_column(String(8))  # out, in
    executed_at: Mapped[datetime] = mapped_column(index=True)


class Payee(Base):
    __tablename__ = "payees"
    __table_args__ = (UniqueConstraint("customer_id", "account_no"),)

    payee_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    account_no: Mapped[str] = mapped_column(String(34))
    name: Mapped[str] = mapped_column(String(100))
    bank: Mapped[str] = mapped_column(String(64))
    relation: Mapped[str | None] = mapped_column(String(32))
    first_seen_at: Mapped[datetime]


class TransferLimit(Base):
    __tablename__ = "transfer_limits"

    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), primary_key=True)
    channel: Mapped[str] = mapped_column(String(16), primary_key=True)  # mobile, counter, atm
    daily_limit: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    updated_at: Mapped[datetime]


class TimeDeposit(Base):
    __tablename__ = "time_deposits"

    deposit_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"))
    principal: Mapped[Decimal] = mapped_column(Money)
    currency: Mapped[str] = mapped_column(String(3))
    term_months: Mapped[int] = mapped_column(Integer)
    annual_rate: Mapped[Decimal] = mapped_column(Numeric(6, 4))
    opened_at: Mapped[datetime]
    matures_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))  # open, broken, matured
    closed_at: Mapped[datetime | None]


class PasswordResetTicket(Base):
    __tablename__ = "password_reset_tickets"

    ticket_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    operation_id: Mapped[str | None] = mapped_column(String(32), unique=True)
    state: Mapped[str] = mapped_column(String(16))  # issued, used, expired
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Card(Base):
    __tablename__ = "cards"

    card_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    last4: Mapped[str] = mapped_column(String(4))
    state: Mapped[str] = mapped_column(String(16))  # issued, active, blocked
    activated_at: Mapped[datetime | None]


class CustomerEvent(Base):
    """Recent account events the risk engine weighs (password reset, limit change...)."""

    __tablename__ = "customer_events"

    event_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    at: Mapped[datetime]
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)


class Operation(Base):
    __tablename__ = "operations"

    operation_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    specialist_id: Mapped[str | None] = mapped_column(ForeignKey("specialists.specialist_id"))
    kind: Mapped[str] = mapped_column(String(32))
    params: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    customer_statement: Mapped[str | None] = mapped_column(Text)
    state: Mapped[str] = mapped_column(String(32), index=True)
    risk: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    shadow_risk: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    review: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    confirmation: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    result: Mapped[dict[str, Any] | None] = mapped_column(JSON)
    failure_reason: Mapped[str | None] = mapped_column(String(200))
    hold_until: Mapped[datetime | None]
    origin: Mapped[str] = mapped_column(String(16), default="specialist")  # or redirect
    created_at: Mapped[datetime]
    updated_at: Mapped[datetime]
    version: Mapped[int] = mapped_column(Integer, default=0)


class WarningShown(Base):
    """What the customer was warned of, in which words, and when: the evidence."""

    __tablename__ = "warnings_shown"

    warning_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    operation_id: Mapped[str] = mapped_column(ForeignKey("operations.operation_id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"))
    decision: Mapped[str] = mapped_column(String(16))
    reason_codes: Mapped[list[str]] = mapped_column(JSON, default=list)
    text: Mapped[dict[str, Any]] = mapped_column(JSON)
    sent_at: Mapped[datetime]
    # Set when the customer's app acknowledges it put the warning on screen.
    shown_at: Mapped[datetime | None]
    delivered: Mapped[bool] = mapped_column(Boolean, default=False)


class BlockedPayee(Base):
    __tablename__ = "blocked_payees"

    account_no: Mapped[str] = mapped_column(String(34), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime]


class BlockedPhone(Base):
    __tablename__ = "blocked_phones"

    phone: Mapped[str] = mapped_column(String(32), primary_key=True)
    reason: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime]


class AllowListEntry(Base):
    __tablename__ = "allow_list"

    entry_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    payee_account: Mapped[str] = mapped_column(String(34))
    reason: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class RuleSnooze(Base):
    __tablename__ = "rule_snoozes"

    snooze_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    rule_code: Mapped[str] = mapped_column(String(64))
    customer_id: Mapped[str | None] = mapped_column(String(32))
    reason: Mapped[str] = mapped_column(String(500))
    added_by: Mapped[str] = mapped_column(String(32))
    added_at: Mapped[datetime]
    expires_at: Mapped[datetime]


class Redirect(Base):
    """A scenario redirect from the mobile banking backend, and its single-use ticket."""

    __tablename__ = "redirects"

    event_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    kind: Mapped[str] = mapped_column(String(32))
    context: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    ticket: Mapped[str] = mapped_column(String(64), unique=True)
    created_at: Mapped[datetime]
    expires_at: Mapped[datetime]
    used_at: Mapped[datetime | None]
    used_by_call: Mapped[str | None] = mapped_column(String(32))


class Callback(Base):
    """A customer's choice to be called back instead of waiting."""

    __tablename__ = "callbacks"
    __table_args__ = (Index("ix_callbacks_state", "state"),)

    callback_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    call_id: Mapped[str] = mapped_column(ForeignKey("calls.call_id"), unique=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    priority: Mapped[str] = mapped_column(String(16))
    original_enqueued_at: Mapped[datetime]
    state: Mapped[str] = mapped_column(String(16))
    requested_at: Mapped[datetime]
    next_attempt_at: Mapped[datetime | None]
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    completed_at: Mapped[datetime | None]
    outcome: Mapped[str | None] = mapped_column(String(32))
    new_call_id: Mapped[str | None] = mapped_column(String(32))


class CallbackAttempt(Base):
    __tablename__ = "callback_attempts"

    attempt_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=True)
    callback_id: Mapped[str] = mapped_column(ForeignKey("callbacks.callback_id"), index=True)
    at: Mapped[datetime]
    local_time: Mapped[str] = mapped_column(String(32))
    outcome: Mapped[str] = mapped_column(String(32))
    detail: Mapped[str | None] = mapped_column(String(200))


class AuditEntry(Base):
    """Append-only, hash-chained record of everything that matters."""

    __tablename__ = "audit_log"

    seq: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)
    at: Mapped[datetime]
    kind: Mapped[str] = mapped_column(String(48), index=True)
    actor_role: Mapped[str | None] = mapped_column(String(16))
    actor_id: Mapped[str | None] = mapped_column(String(32))
    subject_type: Mapped[str | None] = mapped_column(String(32))
    subject_id: Mapped[str | None] = mapped_column(String(64), index=True)
    data: Mapped[dict[str, Any]] = mapped_column(JSON, default=dict)
    content_hash: Mapped[str] = mapped_column(String(64))
    prev_hash: Mapped[str] = mapped_column(String(64))
    entry_hash: Mapped[str] = mapped_column(String(64))


class AuditHead(Base):
    """One row: the chain's head. Updating it first serialises appends on every database."""

    __tablename__ = "audit_head"

    head_id: Mapped[int] = mapped_column(Integer, primary_key=True)
    last_seq: Mapped[int] = mapped_column(Integer)
    last_hash: Mapped[str] = mapped_column(String(64))


# -- the counter's everyday business (server/banking/counter.py) -------------------------


class Passbook(Base):
    """A printed passbook for a passbook account; a replacement is a new row.

    ``state``: ``active``; ``lost`` once reported (it stays blocked for good,
    whatever becomes of the account); ``active`` again only for a new book.
    """

    __tablename__ = "passbooks"

    passbook_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    state: Mapped[str] = mapped_column(String(16))  # active, lost
    issued_at: Mapped[datetime]
    replaces: Mapped[str | None] = mapped_column(String(32))


class LossReport(Base):
    """A loss report (挂失) of a card or passbook; while ``open``, its account is blocked.

    ``stage`` goes ``temporary`` -> ``formal``; a replacement closes the report
    (``state`` ``replaced``) and names the new medium.
    """

    __tablename__ = "loss_reports"

    report_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    medium: Mapped[str] = mapped_column(String(16))  # card, passbook
    medium_id: Mapped[str] = mapped_column(String(32), index=True)
    account_id: Mapped[str] = mapped_column(ForeignKey("accounts.account_id"), index=True)
    stage: Mapped[str] = mapped_column(String(16))  # temporary, formal
    state: Mapped[str] = mapped_column(String(16))  # open, replaced
    reported_at: Mapped[datetime]
    formal_at: Mapped[datetime | None]
    replaced_at: Mapped[datetime | None]
    replacement_id: Mapped[str | None] = mapped_column(String(32))
    operation_id: Mapped[str] = mapped_column(String(32))


class Document(Base):
    """A PDF produced for a customer (a certificate or statement), kept in the store."""

    __tablename__ = "documents"

    document_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    customer_id: Mapped[str] = mapped_column(ForeignKey("customers.customer_id"), index=True)
    call_id: Mapped[str | None] = mapped_column(String(64), index=True)
    operation_id: Mapped[str] = mapped_column(String(32), unique=True)
    kind: Mapped[str] = mapped_column(String(32))  # deposit_certificate, statement
    filename: Mapped[str] = mapped_column(String(100))
    storage_key: Mapped[str] = mapped_column(String(200))
    sha256: Mapped[str] = mapped_column(String(64))
    size: Mapped[int] = mapped_column(Integer)
    created_at: Mapped[datetime]
