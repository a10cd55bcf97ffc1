"""The embedded core: a double-entry ledger in the service's own database.

Every money movement is a :class:`~server.db.banking.Transfer` with two
:class:`~server.db.banking.Posting` legs, one on the customer's account and one on
the internal clearing account, that sum to zero. A posting's amount is the change
in its account's balance, so an outgoing payment is ``-amount`` on the
customer's account and ``+amount`` on clearing. Opening and breaking a time
deposit move money through the same clearing account; those transfers name the
clearing account as their counterparty, which is how the habit profile and the
daily limit tell them apart from payments.

The transfers table is also the customer's transaction history: the risk
engine's habit profile is built from it (:mod:`server.banking.profiles`), so an
executed transfer is part of the very next profile without any other
bookkeeping.

How one execution stays atomic, idempotent and race-free on both databases:

1. **Customer lock first.** On PostgreSQL, ``SELECT ... FOR NO KEY UPDATE`` on
   the customer row: every execution for one customer waits for the one before
   it to commit, and (under READ COMMITTED, the default) then reads what it
   committed. On SQLite row locks do not exist and ``FOR UPDATE`` is ignored;
   SQLite serialises writers instead, but the driver opens the transaction
   lazily at the first write, so reads before it would be unprotected. The lock
   step is therefore a no-op ``UPDATE`` of the customer row: it takes the
   database write lock (waiting up to the busy timeout) before anything is read.
2. **Idempotency.** The result of each execution is kept in its
   ``ledger.executed`` audit entry (subject: the operation). Under the lock, a
   second execution of the same operation finds it and returns the same
   result. Money movements are also claimed by the unique
   ``transfers.operation_id``, so even executions that somehow bypassed the
   lock cannot both post.
3. **Savepoint.** All writes happen inside ``SAVEPOINT``; a refusal or any
   error rolls back to it, so nothing half-done survives and the caller's
   transaction stays usable (to record the operation as failed). The
   savepoint is opened after the lock step, when SQLite's transaction has
   begun (a ``SAVEPOINT`` outside a transaction would start and, on release,
   commit one of its own).
4. **Hot rows last.** The clearing account is shared by every customer. Its
   balance changes by an atomic ``UPDATE ... SET balance = balance + x`` as
   the very last step, after the audit append, so the row is locked for the
   shortest time. Lock order is: customer row, the customer's own rows, audit
   head, clearing account. Callers that append to the audit log in the same
   transaction before calling :meth:`SqlLedger.execute` hold the audit head
   first; that is safe as long as they do not also wait for another
   execution of the same customer.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Mapping, Sequence
from datetime import date, datetime, timedelta, tzinfo
from decimal import Decimal
from typing import Any, Final, cast

from sqlalchemy import CursorResult, func, select, update
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.ext.asyncio import AsyncSession

import risk
from risk.normalise import normalise_account
from server import audit
from server.db.banking import (
    Account,
    AuditEntry,
    BlockedPayee,
    Card,
    CustomerEvent,
    PasswordResetTicket,
    Payee,
    Posting,
    TimeDeposit,
    Transfer,
    TransferLimit,
)
from server.db.models import Customer

from .core import (
    BRANCH_CHANNEL,
    CHANNELS,
    CLEARING_ACCOUNT_ID,
    DEFAULT_DAILY_LIMITS,
    HOME_BANK,
    HOME_CURRENCY,
    LOCAL_TZ,
    SOURCE_KINDS,
    ExecutionFailed,
    cents,
    iso,
    money_str,
    new_id,
    optional_text,
    parse_currency,
    parse_money,
    parse_text,
)
from .counter import CounterDesk
from .deposits import deposit_break_facts
from .documents import DocumentStore
from .handling import Outcome as _Outcome
from .handling import Request as _Request
from .media import account_usable
from .profiles import load_risk_inputs

#: Audit entry kind that carries each execution's result.
EXECUTED: Final = "ledger.executed"

#: Time deposit terms (months) and their annual rates.
DEPOSIT_RATES: Final[Mapping[int, Decimal]] = {
    3: Decimal("0.0105"),
    6: Decimal("0.0125"),
    12: Decimal("0.0135"),
    24: Decimal("0.0145"),
    36: Decimal("0.0175"),
    60: Decimal("0.0180"),
}
#: A deposit broken before maturity earns the demand rate for the days it was held.
DEMAND_RATE: Final = Decimal("0.0015")
#: Interest counts a year as 360 days, as deposit interest in China does.
DAYS_PER_YEAR: Final = 360
MIN_DEPOSIT: Final = Decimal("50.00")

#: How long a password-reset ticket can be redeemed in the app.
TICKET_TTL: Final = timedelta(minutes=30)
RESET_CHANNELS: Final = frozenset({"mobile", "card", "passbook"})


def add_months(at: datetime, months: int, tz: tzinfo = LOCAL_TZ) -> datetime:
    """The same local day ``months`` later (clamped to the end of a shorter month)."""
    local = at.astimezone(tz)
    index = local.month - 1 + months
    year, month = local.year + index // 12, index % 12 + 1
    next_month = date(year + (month == 12), month % 12 + 1, 1)
    last_day = (next_month - timedelta(days=1)).day
    return local.replace(year=year, month=month, day=min(local.day, last_day))


class SqlLedger:
    """:class:`~server.banking.core.CoreBanking` on the service's own database.

    ``home_bank`` is the bank's code as payee banks are written; ``tz`` is the
    customers' local time zone (the daily limit counts the local day).
    """

    def __init__(
        self,
        *,
        home_bank: str = HOME_BANK,
        tz: tzinfo = LOCAL_TZ,
        clearing_account: str = CLEARING_ACCOUNT_ID,
        documents: DocumentStore | None = None,
    ) -> None:
        self.home_bank = home_bank
        self.tz = tz
        self.clearing_account = clearing_account
        # The counter's everyday kinds (passbooks, loss reports, certificates...).
        self.counter = CounterDesk(tz=tz, clearing_account=clearing_account, documents=documents)
        self._handlers: dict[str, Callable[[AsyncSession, _Request], Awaitable[_Outcome]]] = {
            "balance_inquiry": self._balance_inquiry,
            "transfer": self._transfer,
            "limit_change": self._limit_change,
            "time_deposit": self._time_deposit,
            "password_reset": self._password_reset,
            "card_activation": self._card_activation,
            **self.counter.handlers(),
        }

    @property
    def kinds(self) -> frozenset[str]:
        """The operation kinds this ledger executes (any other is ``unsupported_kind``)."""
        return frozenset(self._handlers)

    # ----------------------------------------------------------------- protocol

    async def execute(
        self,
        session: AsyncSession,
        operation_id: str,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """Execute one confirmed operation in ``session``'s transaction (the caller commits).

        See the module docstring for how this stays atomic and idempotent.
        Raises :class:`~server.banking.core.ExecutionFailed` for a refusal.
        """
        if now.tzinfo is None:
            raise ValueError("now must be timezone aware")
        handler = self._handlers.get(kind)
        if handler is None:
            raise ExecutionFailed("unsupported_kind", f"the ledger cannot execute {kind!r}")
        if not operation_id or len(operation_id) > 32:
            raise ExecutionFailed("invalid_params", "operation id must be 1 to 32 characters")
        await self._lock_customer(session, customer_id)
        prior = await self._prior_execution(session, operation_id)
        if prior is not None:
            if prior.get("customer_id") != customer_id or prior.get("kind") != kind:
                raise ExecutionFailed(
                    "operation_id_reused", "this operation id was executed for something else"
                )
            stored: dict[str, Any] = prior["result"]
            return stored
        request = _Request(operation_id, customer_id, kind, params, now)
        async with session.begin_nested():
            outcome = await handler(session, request)
            await audit.record(
                session,
                EXECUTED,
                at=now.timestamp(),
                actor_role="system",
                actor_id="ledger",
                subject_type="operation",
                subject_id=operation_id,
                data={"customer_id": customer_id, "kind": kind, "result": outcome.result},
            )
            if outcome.clearing_delta:
                await self._move_clearing(session, outcome.clearing_delta)
        return outcome.result

    async def preflight(
        self,
        session: AsyncSession,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Refuse at the start what is already certain to be refused: a medium
        reported lost, a choice of medium or account that is missing or
        ambiguous (the refusal names the choices), a period in the future."""
        if kind in ("transfer", "time_deposit") and params.get("action", "open") == "open":
            wanted = params.get("from_account")
            try:
                await self._source_account(
                    session,
                    customer_id,
                    str(params.get("currency", HOME_CURRENCY)),
                    wanted if isinstance(wanted, str) else None,
                )
            except ExecutionFailed as exc:
                # Other refusals (no CNY account...) stay with the execution, as before.
                if exc.reason_code == "medium_reported_lost" or wanted is not None:
                    raise
            return
        await self.counter.preflight(session, customer_id, kind, params, now)

    async def risk_inputs(
        self, session: AsyncSession, customer_id: str, now: datetime
    ) -> tuple[risk.CustomerProfile, risk.RiskLists]:
        """The risk engine's view of the customer, read from this ledger."""
        return await load_risk_inputs(
            session,
            customer_id,
            now,
            home_bank=self.home_bank,
            tz=self.tz,
            clearing_account=self.clearing_account,
        )

    async def operation_facts(
        self,
        session: AsyncSession,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """A time deposit about to be broken: its principal, term and lost interest."""
        deposit_id = params.get("deposit_id")
        if kind != "time_deposit" or params.get("action") != "break" or not deposit_id:
            return {}
        return await deposit_break_facts(
            session,
            customer_id,
            str(deposit_id),
            now,
            demand_rate=DEMAND_RATE,
            days_per_year=DAYS_PER_YEAR,
            tz=self.tz,
        )

    # ---------------------------------------------------------------- machinery

    async def _lock_customer(self, session: AsyncSession, customer_id: str) -> None:
        """Serialise executions for one customer (see the module docstring, step 1)."""
        if session.get_bind().dialect.name == "sqlite":
            result = cast(
                CursorResult[Any],
                await session.execute(
                    update(Customer)
                    .where(Customer.customer_id == customer_id)
                    .values(display_name=Customer.display_name)
                    .execution_options(synchronize_session=False)
                ),
            )
            found = result.rowcount == 1
        else:
            locked = await session.execute(
                select(Customer.customer_id)
                .where(Customer.customer_id == customer_id)
                .with_for_update(key_share=True)
            )
            found = locked.scalar_one_or_none() is not None
        if not found:
            raise ExecutionFailed("unknown_customer", "no such customer")

    async def _prior_execution(
        self, session: AsyncSession, operation_id: str
    ) -> dict[str, Any] | None:
        data = (
            await session.execute(
                select(AuditEntry.data)
                .where(
                    AuditEntry.subject_id == operation_id,
                    AuditEntry.subject_type == "operation",
                    AuditEntry.kind == EXECUTED,
                )
                .order_by(AuditEntry.seq)
                .limit(1)
            )
        ).scalar_one_or_none()
        return None if data is None else dict(data)

    async def _ensure_clearing(self, session: AsyncSession, now: datetime) -> None:
        """Create the clearing account if this database has none yet (race-free)."""
        exists = await session.scalar(
            select(Account.account_id).where(Account.account_id == self.clearing_account)
        )
        if exists is not None:
            return
        dialect = session.get_bind().dialect.name
        insert = postgresql.insert if dialect == "postgresql" else sqlite.insert
        await session.execute(
            insert(Account)
            .values(
                account_id=self.clearing_account,
                customer_id=None,
                kind="clearing",
                currency=HOME_CURRENCY,
                balance=Decimal("0.00"),
                opened_at=now,
            )
            .on_conflict_do_nothing()
        )

    async def _post(
        self, session: AsyncSession, transfer: Transfer, account: Account, delta: Decimal
    ) -> Decimal:
        """Record ``transfer`` with its two legs and change the customer's balance.

        ``delta`` is the change on the customer's account; clearing gets the
        opposite (applied to its balance later, see :meth:`_move_clearing`).
        Flushing the transfer first claims its ``operation_id``. Returns the
        customer account's new balance.
        """
        await self._ensure_clearing(session, transfer.executed_at)
        session.add(transfer)
        await session.flush()
        legs = [(account.account_id, cents(delta)), (self.clearing_account, cents(-delta))]
        if sum((amount for _, amount in legs), Decimal("0")) != 0:  # pragma: no cover
            raise AssertionError("postings of a transfer must sum to zero")
        session.add_all(
            Posting(
                transfer_id=transfer.transfer_id,
                account_id=account_id,
                amount=amount,
                currency=transfer.currency,
                posted_at=transfer.executed_at,
            )
            for account_id, amount in legs
        )
        # Safe to compute in Python: the customer lock is held, so no one else
        # changes this customer's accounts until we commit.
        account.balance = cents(account.balance + delta)
        await session.flush()
        return account.balance

    async def _move_clearing(self, session: AsyncSession, delta: Decimal) -> None:
        """Apply the clearing legs: one atomic increment of the shared row.

        ``round(..., 2)`` keeps SQLite's floating-point storage at whole cents;
        on PostgreSQL the column is exact and the rounding changes nothing.
        """
        await session.execute(
            update(Account)
            .where(Account.account_id == self.clearing_account)
            .values(balance=func.round(Account.balance + cents(delta), 2))
        )

    async def _accounts(self, session: AsyncSession, customer_id: str) -> Sequence[Account]:
        rows = await session.execute(
            select(Account)
            .where(Account.customer_id == customer_id)
            .order_by(Account.opened_at, Account.account_id)
            .execution_options(populate_existing=True)
        )
        return rows.scalars().all()

    async def _source_account(
        self, session: AsyncSession, customer_id: str, currency: str, wanted: str | None
    ) -> Account:
        """The account to pay from: the one asked for, else the current account
        (a passbook-only customer's passbook). An account whose card or passbook
        is reported lost is refused (``medium_reported_lost``)."""
        account = await self._pick_source(session, customer_id, currency, wanted)
        await account_usable(session, account.account_id)
        return account

    async def _pick_source(
        self, session: AsyncSession, customer_id: str, currency: str, wanted: str | None
    ) -> Account:
        accounts = await self._accounts(session, customer_id)
        if wanted is not None:
            key = normalise_account(wanted)
            for account in accounts:
                if normalise_account(account.account_id) == key:
                    if account.kind not in SOURCE_KINDS:
                        break
                    if account.currency != currency:
                        raise ExecutionFailed(
                            "currency_mismatch", f"that account is kept in {account.currency}"
                        )
                    return account
            raise ExecutionFailed("unknown_account", "the customer has no such account")
        for kind in SOURCE_KINDS:
            for account in accounts:
                if account.kind == kind and account.currency == currency:
                    return account
        raise ExecutionFailed("unknown_account", f"the customer has no {currency} account")

    async def _daily_limit(self, session: AsyncSession, customer_id: str, channel: str) -> Decimal:
        row = await session.get(TransferLimit, (customer_id, channel), populate_existing=True)
        if row is None:
            return DEFAULT_DAILY_LIMITS[channel]
        if row.currency != HOME_CURRENCY:
            raise ExecutionFailed("currency_mismatch", f"the {channel} limit is not in CNY")
        return cents(row.daily_limit)

    async def _spent_today(
        self, session: AsyncSession, customer_id: str, currency: str, now: datetime
    ) -> Decimal:
        """Outgoing payments in the customer's local day containing ``now``.

        Transfers carry no channel, so every payment of the day counts against
        the branch's limit: the conservative reading. Movements into the
        customer's own time deposits are not payments and do not count.
        """
        local = now.astimezone(self.tz)
        start = local.replace(hour=0, minute=0, second=0, microsecond=0)
        amounts = await session.execute(
            select(Transfer.amount).where(
                Transfer.customer_id == customer_id,
                Transfer.direction == "out",
                Transfer.currency == currency,
                Transfer.payee_account != self.clearing_account,
                Transfer.executed_at >= start,
                Transfer.executed_at < start + timedelta(days=1),
            )
        )
        return cents(sum((cents(a) for a in amounts.scalars()), Decimal("0")))

    async def _is_blocked(self, session: AsyncSession, raw: str, normalised: str) -> bool:
        hit = await session.scalar(
            select(BlockedPayee.account_no)
            .where(BlockedPayee.account_no.in_({raw, normalised}))
            .limit(1)
        )
        return hit is not None

    async def _remember_payee(
        self,
        session: AsyncSession,
        customer_id: str,
        account_no: str,
        name: str,
        bank: str,
        now: datetime,
    ) -> bool:
        """Add the payee to the customer's payee book on the first transfer; True if new."""
        existing = await session.scalar(
            select(Payee.payee_id).where(
                Payee.customer_id == customer_id, Payee.account_no == account_no
            )
        )
        if existing is not None:
            return False
        session.add(
            Payee(
                customer_id=customer_id,
                account_no=account_no,
                name=name,
                bank=bank,
                relation=None,
                first_seen_at=now,
            )
        )
        await session.flush()
        return True

    def _event(self, session: AsyncSession, req: _Request, kind: str, data: dict[str, Any]) -> None:
        session.add(
            CustomerEvent(
                customer_id=req.customer_id,
                kind=kind,
                at=req.now,
                data={**data, "operation_id": req.operation_id},
            )
        )

    # ----------------------------------------------------------------- handlers

    async def _balance_inquiry(self, session: AsyncSession, req: _Request) -> _Outcome:
        accounts = [
            a for a in await self._accounts(session, req.customer_id) if a.kind in SOURCE_KINDS
        ]
        if not accounts:
            raise ExecutionFailed("unknown_account", "the customer has no accounts")
        deposits = (
            await session.execute(
                select(TimeDeposit)
                .where(TimeDeposit.customer_id == req.customer_id, TimeDeposit.state == "open")
                .order_by(TimeDeposit.matures_at, TimeDeposit.deposit_id)
                .execution_options(populate_existing=True)
            )
        ).scalars()
        totals: dict[str, Decimal] = {}
        for account in accounts:
            totals[account.currency] = totals.get(account.currency, Decimal("0")) + account.balance
        return _Outcome(
            {
                "accounts": [
                    {
                        "account_id": a.account_id,
                        "kind": a.kind,
                        "currency": a.currency,
                        "balance": money_str(a.balance),
                    }
                    for a in accounts
                ],
                "time_deposits": [_deposit_view(d) for d in deposits],
                "totals": {currency: money_str(total) for currency, total in totals.items()},
                "as_of": iso(req.now),
            }
        )

    async def _transfer(self, session: AsyncSession, req: _Request) -> _Outcome:
        p = req.params
        amount = parse_money(p.get("amount"), "amount")
        currency = parse_currency(p.get("currency", HOME_CURRENCY))
        raw_payee = parse_text(p, "payee_account", 64)
        payee_account = normalise_account(raw_payee)
        if not 6 <= len(payee_account) <= 34:
            raise ExecutionFailed("invalid_params", "payee_account must be 6 to 34 characters")
        payee_name = parse_text(p, "payee_name", 100)
        payee_bank = parse_text(p, "payee_bank", 64)
        account = await self._source_account(
            session, req.customer_id, currency, optional_text(p, "from_account", 34)
        )
        own = {normalise_account(account.account_id), normalise_account(self.clearing_account)}
        if payee_account in own:
            raise ExecutionFailed("invalid_params", "the payee is the account paid from")
        if await self._is_blocked(session, raw_payee, payee_account):
            raise ExecutionFailed("payee_blocked", "the payee account is on the block list")
        if account.balance < amount:
            raise ExecutionFailed(
                "insufficient_funds",
                f"available {money_str(account.balance)} {currency} "
                f"is less than {money_str(amount)} {currency}",
            )
        limit = await self._daily_limit(session, req.customer_id, BRANCH_CHANNEL)
        spent = await self._spent_today(session, req.customer_id, currency, req.now)
        if spent + amount > limit:
            raise ExecutionFailed(
                "over_daily_limit",
                f"today's transfers would total {money_str(spent + amount)} {currency}, "
                f"over the {BRANCH_CHANNEL} limit of {money_str(limit)} {currency}",
            )
        transfer = Transfer(
            transfer_id=new_id("TR"),
            operation_id=req.operation_id,
            customer_id=req.customer_id,
            from_account_id=account.account_id,
            payee_account=payee_account,
            payee_name=payee_name,
            payee_bank=payee_bank,
            amount=amount,
            currency=currency,
            direction="out",
            executed_at=req.now,
        )
        balance_after = await self._post(session, transfer, account, -amount)
        new_payee = await self._remember_payee(
            session, req.customer_id, payee_account, payee_name, payee_bank, req.now
        )
        return _Outcome(
            {
                "transfer_id": transfer.transfer_id,
                "amount": money_str(amount),
                "currency": currency,
                "balance_after": money_str(balance_after),
                "executed_at": iso(req.now),
                "new_payee": new_payee,
            },
            clearing_delta=amount,
        )

    async def _limit_change(self, session: AsyncSession, req: _Request) -> _Outcome:
        p = req.params
        channel = p.get("channel")
        if not isinstance(channel, str) or channel not in CHANNELS:
            raise ExecutionFailed("invalid_params", f"channel must be one of {sorted(CHANNELS)}")
        new_limit = parse_money(p.get("new_limit"), "new_limit", allow_zero=True)
        currency = parse_currency(p.get("currency", HOME_CURRENCY))
        row = await session.get(TransferLimit, (req.customer_id, channel), populate_existing=True)
        old_limit = DEFAULT_DAILY_LIMITS[channel] if row is None else cents(row.daily_limit)
        if row is None:
            session.add(
                TransferLimit(
                    customer_id=req.customer_id,
                    channel=channel,
                    daily_limit=new_limit,
                    currency=currency,
                    updated_at=req.now,
                )
            )
        else:
            row.daily_limit, row.currency, row.updated_at = new_limit, currency, req.now
        direction = (
            "raise" if new_limit > old_limit else "lower" if new_limit < old_limit else "same"
        )
        result = {
            "channel": channel,
            "old_limit": money_str(old_limit),
            "new_limit": money_str(new_limit),
            "currency": currency,
        }
        self._event(session, req, "limit_change", {**result, "direction": direction})
        await session.flush()
        return _Outcome(result)

    async def _time_deposit(self, session: AsyncSession, req: _Request) -> _Outcome:
        action = req.params.get("action")
        if action == "open":
            return await self._open_deposit(session, req)
        if action == "break":
            return await self._break_deposit(session, req)
        raise ExecutionFailed("invalid_params", "action must be 'open' or 'break'")

    async def _open_deposit(self, session: AsyncSession, req: _Request) -> _Outcome:
        p = req.params
        amount = parse_money(p.get("amount"), "amount")
        if amount < MIN_DEPOSIT:
            raise ExecutionFailed(
                "invalid_params", f"a time deposit starts at {money_str(MIN_DEPOSIT)}"
            )
        currency = parse_currency(p.get("currency", HOME_CURRENCY))
        term = p.get("term_months")
        if isinstance(term, bool) or not isinstance(term, int) or term not in DEPOSIT_RATES:
            raise ExecutionFailed(
                "invalid_params", f"term_months must be one of {sorted(DEPOSIT_RATES)}"
            )
        account = await self._source_account(
            session, req.customer_id, currency, optional_text(p, "from_account", 34)
        )
        if account.balance < amount:
            raise ExecutionFailed(
                "insufficient_funds",
                f"available {money_str(account.balance)} {currency} "
                f"is less than {money_str(amount)} {currency}",
            )
        deposit = TimeDeposit(
            deposit_id=new_id("TD"),
            customer_id=req.customer_id,
            account_id=account.account_id,
            principal=amount,
            currency=currency,
            term_months=term,
            annual_rate=DEPOSIT_RATES[term],
            opened_at=req.now,
            matures_at=add_months(req.now, term, self.tz),
            state="open",
            closed_at=None,
        )
        session.add(deposit)
        transfer = self._internal_transfer(req, account, deposit, amount, "out", "定期存款开户")
        balance_after = await self._post(session, transfer, account, -amount)
        return _Outcome(
            {"action": "open", **_deposit_view(deposit), "balance_after": money_str(balance_after)},
            clearing_delta=amount,
        )

    async def _break_deposit(self, session: AsyncSession, req: _Request) -> _Outcome:
        deposit_id = parse_text(req.params, "deposit_id", 32)
        deposit = await session.get(TimeDeposit, deposit_id, populate_existing=True)
        if deposit is None or deposit.customer_id != req.customer_id:
            raise ExecutionFailed("deposit_not_found", "the customer has no such time deposit")
        if deposit.state != "open":
            raise ExecutionFailed("deposit_not_open", f"the deposit is already {deposit.state}")
        account = await session.get(Account, deposit.account_id, populate_existing=True)
        if account is None:  # pragma: no cover - the foreign key forbids it
            raise ExecutionFailed("unknown_account", "the deposit's account is gone")
        principal = cents(deposit.principal)
        matured = req.now >= deposit.matures_at
        if matured:
            interest = cents(principal * deposit.annual_rate * deposit.term_months / 12)
        else:
            held = req.now.astimezone(self.tz).date() - deposit.opened_at.astimezone(self.tz).date()
            interest = cents(principal * DEMAND_RATE * held.days / DAYS_PER_YEAR)
        payout = principal + interest
        deposit.state = "matured" if matured else "broken"
        deposit.closed_at = req.now
        transfer = self._internal_transfer(req, account, deposit, payout, "in", "定期存款支取")
        balance_after = await self._post(session, transfer, account, payout)
        if not matured:
            self._event(
                session,
                req,
                "time_deposit_break",
                {"deposit_id": deposit.deposit_id, "principal": money_str(principal)},
            )
            await session.flush()
        return _Outcome(
            {
                "action": "break",
                **_deposit_view(deposit),
                "interest": money_str(interest),
                "payout": money_str(payout),
                "closed_at": iso(req.now),
                "balance_after": money_str(balance_after),
            },
            clearing_delta=-payout,
        )

    def _internal_transfer(
        self,
        req: _Request,
        account: Account,
        deposit: TimeDeposit,
        amount: Decimal,
        direction: str,
        label: str,
    ) -> Transfer:
        """A movement between the customer's account and their time deposit."""
        return Transfer(
            transfer_id=new_id("TR"),
            operation_id=req.operation_id,
            customer_id=req.customer_id,
            from_account_id=account.account_id,
            payee_account=self.clearing_account,
            payee_name=f"{label} {deposit.deposit_id}",
            payee_bank=self.home_bank,
            amount=amount,
            currency=deposit.currency,
            direction=direction,
            executed_at=req.now,
        )

    async def _password_reset(self, session: AsyncSession, req: _Request) -> _Outcome:
        channel = req.params.get("channel", "mobile")
        if channel not in RESET_CHANNELS:
            raise ExecutionFailed(
                "invalid_params", f"channel must be one of {sorted(RESET_CHANNELS)}"
            )
        # A card's or passbook's password: not while it is reported lost.
        medium = await self.counter.reset_target(session, req.customer_id, req.params)
        # A new ticket supersedes any earlier one that was never used.
        await session.execute(
            update(PasswordResetTicket)
            .where(
                PasswordResetTicket.customer_id == req.customer_id,
                PasswordResetTicket.state == "issued",
            )
            .values(state="expired")
        )
        ticket = PasswordResetTicket(
            ticket_id=new_id("PR"),
            customer_id=req.customer_id,
            operation_id=req.operation_id,
            state="issued",
            created_at=req.now,
            expires_at=req.now + TICKET_TTL,
        )
        session.add(ticket)
        self._event(
            session, req, "password_reset", {"channel": channel, "ticket_id": ticket.ticket_id}
        )
        await session.flush()
        return _Outcome(
            {
                "ticket_id": ticket.ticket_id,
                "channel": channel,
                **({"medium_id": medium.medium_id} if medium is not None else {}),
                "state": "issued",
                "expires_at": iso(ticket.expires_at),
            }
        )

    async def _card_activation(self, session: AsyncSession, req: _Request) -> _Outcome:
        card_id = optional_text(req.params, "card_id", 32)
        last4 = optional_text(req.params, "last4", 4)
        cards = (
            (
                await session.execute(
                    select(Card)
                    .where(Card.customer_id == req.customer_id)
                    .order_by(Card.card_id)
                    .execution_options(populate_existing=True)
                )
            )
            .scalars()
            .all()
        )
        if card_id is not None:
            matches = [c for c in cards if c.card_id == card_id]
        elif last4 is not None:
            same = [c for c in cards if c.last4 == last4]
            matches = [c for c in same if c.state == "issued"] or same
        else:
            matches = [c for c in cards if c.state == "issued"]
        if not matches:
            raise ExecutionFailed("card_not_found", "no card waiting for activation matches")
        if len(matches) > 1:
            raise ExecutionFailed(
                "card_ambiguous", "several cards match; name the card by its last four digits"
            )
        card = matches[0]
        if card.state == "active":
            raise ExecutionFailed("card_already_active", "the card is already active")
        if card.state == "lost":
            raise ExecutionFailed(
                "medium_reported_lost", "the card is reported lost; activate its replacement"
            )
        if card.state != "issued":
            raise ExecutionFailed("card_blocked", f"the card is {card.state}")
        card.state, card.activated_at = "active", req.now
        await session.flush()
        return _Outcome(
            {
                "card_id": card.card_id,
                "last4": card.last4,
                "state": card.state,
                "activated_at": iso(req.now),
            }
        )


def _deposit_view(deposit: TimeDeposit) -> dict[str, Any]:
    return {
        "deposit_id": deposit.deposit_id,
        "principal": money_str(deposit.principal),
        "currency": deposit.currency,
        "term_months": deposit.term_months,
        "annual_rate": str(deposit.annual_rate.quantize(Decimal("0.0001"))),
        "opened_at": iso(deposit.opened_at),
        "matures_at": iso(deposit.matures_at),
        "state": deposit.state,
    }
