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

Each job lives in a module of its own: :mod:`.postings` (the two legs and the
clearing account), :mod:`.transfers` (payments), :mod:`.products` (the balance
inquiry and time deposits), :mod:`.credentials` (password resets, card
activation, daily limits) and :mod:`.counter` (the counter's everyday kinds).
This module runs them: the lock, the idempotency record and the savepoint below.

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

from collections.abc import Awaitable, Callable, Mapping
from datetime import datetime, tzinfo
from typing import Any, Final, cast

from sqlalchemy import CursorResult, select, update
from sqlalchemy.ext.asyncio import AsyncSession

import risk
from server import audit
from server.db.banking import AuditEntry
from server.db.models import Customer
from server.ports import Transaction

from . import credentials, products, transfers
from .core import (
    CLEARING_ACCOUNT_ID,
    HOME_BANK,
    HOME_CURRENCY,
    LOCAL_TZ,
    ExecutionFailed,
)
from .counter import CounterDesk
from .deposits import deposit_break_facts
from .documents import DocumentStore
from .handling import Outcome as _Outcome
from .handling import Request as _Request
from .postings import move_clearing, source_account
from .products import DAYS_PER_YEAR, DEMAND_RATE
from .profiles import load_risk_inputs

#: Audit entry kind that carries each execution's result.
EXECUTED: Final = "ledger.executed"


def session_of(tx: Transaction) -> AsyncSession:
    """The operation's database session: this ledger lives in the branch's own
    database, and writes in the operation's transaction (see the module doc)."""
    if not isinstance(tx.handle, AsyncSession):
        raise TypeError(f"the SQL ledger works in a database session, not {type(tx.handle)}")
    return tx.handle


class SqlLedger:
    """:class:`~server.ports.CoreBanking` on the service's own database.

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
        tx: Transaction,
        operation_id: str,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> dict[str, Any]:
        """Execute one confirmed operation in the transaction of ``tx``'s session (the
        caller commits).

        See the module docstring for how this stays atomic and idempotent.
        Raises :class:`~server.banking.core.ExecutionFailed` for a refusal.
        """
        session = session_of(tx)
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
                await move_clearing(session, self.clearing_account, outcome.clearing_delta)
        return outcome.result

    async def preflight(
        self,
        tx: Transaction,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Refuse at the start what is already certain to be refused: a medium
        reported lost, a choice of medium or account that is missing or
        ambiguous (the refusal names the choices), a period in the future."""
        session = session_of(tx)
        if kind in ("transfer", "time_deposit") and params.get("action", "open") == "open":
            wanted = params.get("from_account")
            try:
                await source_account(
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
        self, tx: Transaction, customer_id: str, now: datetime
    ) -> tuple[risk.CustomerProfile, risk.RiskLists]:
        """The risk engine's view of the customer, read from this ledger."""
        return await load_risk_inputs(
            session_of(tx),
            customer_id,
            now,
            home_bank=self.home_bank,
            tz=self.tz,
            clearing_account=self.clearing_account,
        )

    async def operation_facts(
        self,
        tx: Transaction,
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
            session_of(tx),
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

    # ------------------------------------------------------------ the kinds' handlers
    # The ledger's own kinds, each a function in the module of its job (the
    # counter's kinds are in :class:`~server.banking.counter.CounterDesk`).

    async def _balance_inquiry(self, session: AsyncSession, req: _Request) -> _Outcome:
        return await products.balance_inquiry(session, req)

    async def _transfer(self, session: AsyncSession, req: _Request) -> _Outcome:
        return await transfers.transfer(
            session, req, clearing_account=self.clearing_account, tz=self.tz
        )

    async def _limit_change(self, session: AsyncSession, req: _Request) -> _Outcome:
        return await credentials.limit_change(session, req)

    async def _time_deposit(self, session: AsyncSession, req: _Request) -> _Outcome:
        return await products.time_deposit(
            session,
            req,
            home_bank=self.home_bank,
            tz=self.tz,
            clearing_account=self.clearing_account,
        )

    async def _password_reset(self, session: AsyncSession, req: _Request) -> _Outcome:
        return await credentials.password_reset(session, req, counter=self.counter)

    async def _card_activation(self, session: AsyncSession, req: _Request) -> _Outcome:
        return await credentials.card_activation(session, req)
