"""Certificates on the embedded ledger: a deposit certificate or an account
statement for a period, produced as a PDF.

The PDF is drawn off the event loop (:mod:`server.banking.statement`), stored
in the document store, and recorded as a ``documents`` row and a
``document.stored`` audit entry carrying its SHA-256, in the execution's own
transaction (the ledger's ``ledger.executed`` entry repeats the hash in its
result). A file written by an execution that then rolls back is never
referenced by any row; a repeated execution returns the first one's document.
"""

from __future__ import annotations

import hashlib
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from decimal import Decimal
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server import audit
from server.db.banking import Account, Document, TimeDeposit
from server.db.models import Customer

from .core import SOURCE_KINDS, ExecutionFailed, money_str, new_id
from .documents import DocumentStore
from .entries import account_entries, balance_at
from .handling import Outcome, Request
from .statement import CertificateContent, render_pdf

#: A statement covers three months unless the customer asks for another period.
DEFAULT_STATEMENT_DAYS = 90
#: The longest period a statement covers (the request's own check sees only
#: periods with both ends given; this one also sees those ending today).
MAX_STATEMENT_DAYS = 366
#: The most entries a statement prints.
MAX_STATEMENT_ENTRIES = 500


class CertificateDesk:
    def __init__(
        self, *, tz: tzinfo, clearing_account: str, documents: DocumentStore | None
    ) -> None:
        self.tz = tz
        self.clearing_account = clearing_account
        self.documents = documents

    async def preflight(
        self, session: AsyncSession, customer_id: str, params: Mapping[str, Any], now: datetime
    ) -> None:
        self._period(params, now)
        if params.get("type") == "statement":
            await self._statement_account(session, customer_id, params.get("account"))

    def _period(self, params: Mapping[str, Any], now: datetime) -> tuple[date, date]:
        today = now.astimezone(self.tz).date()
        end = date.fromisoformat(params["to"]) if params.get("to") else today
        if end > today:
            raise ExecutionFailed("invalid_params", "to: the date is in the future")
        start = (
            date.fromisoformat(params["from"])
            if params.get("from")
            else end - timedelta(days=DEFAULT_STATEMENT_DAYS)
        )
        if (end - start).days > MAX_STATEMENT_DAYS:
            raise ExecutionFailed(
                "invalid_params", f"a statement covers at most {MAX_STATEMENT_DAYS} days"
            )
        return start, end

    async def _accounts(self, session: AsyncSession, customer_id: str, ref: Any) -> list[Account]:
        """The customer's accounts, oldest first; only the one ``ref`` names, if it names one."""
        accounts = list(
            (
                await session.execute(
                    select(Account)
                    .where(Account.customer_id == customer_id, Account.kind.in_(SOURCE_KINDS))
                    .order_by(Account.opened_at, Account.account_id)
                    .execution_options(populate_existing=True)
                )
            ).scalars()
        )
        if isinstance(ref, str):
            accounts = [a for a in accounts if a.account_id == ref]
            if not accounts:
                raise ExecutionFailed("unknown_account", "the customer has no such account")
        return accounts

    async def _statement_account(
        self, session: AsyncSession, customer_id: str, ref: Any
    ) -> Account:
        accounts = await self._accounts(session, customer_id, ref)
        if not accounts:
            raise ExecutionFailed("unknown_account", "the customer has no accounts")
        if len(accounts) > 1:
            choices = ", ".join(f"{a.kind} {a.account_id}" for a in accounts)
            raise ExecutionFailed(
                "account_ambiguous",
                f"the customer has several accounts; name one in account: {choices}",
            )
        return accounts[0]

    async def certificate(self, session: AsyncSession, req: Request) -> Outcome:
        if self.documents is None:
            raise ExecutionFailed("document_unavailable", "no document store is configured")
        start, end = self._period(req.params, req.now)
        until = datetime.combine(end + timedelta(days=1), time(), self.tz)
        customer = await session.get(Customer, req.customer_id)
        assert customer is not None
        kind = str(req.params.get("type"))
        if kind == "deposit":
            content = await self._deposit_content(session, req, customer, end, until)
        else:
            account = await self._statement_account(
                session, req.customer_id, req.params.get("account")
            )
            since = datetime.combine(start, time(), self.tz)
            entries = await account_entries(
                session,
                account,
                since,
                until,
                limit=MAX_STATEMENT_ENTRIES,
                tz=self.tz,
                clearing_account=self.clearing_account,
            )
            content = CertificateContent(
                kind="statement",
                customer_name=customer.display_name,
                issued_at=req.now.astimezone(self.tz),
                period=(start, end),
                accounts=((account.account_id, account.kind, account.balance),),
                deposits=(),
                entries=tuple(entries),
                reference=req.operation_id,
            )
        pdf = await render_pdf(content)
        digest = hashlib.sha256(pdf).hexdigest()
        document_id = new_id("DC")
        key = f"{req.customer_id}/{document_id}.pdf"
        filename = f"{'deposit-certificate' if kind == 'deposit' else 'statement'}-{end}.pdf"
        try:
            await self.documents.put(key, pdf)
        except OSError as exc:
            raise ExecutionFailed(
                "document_unavailable", "the document could not be stored"
            ) from exc
        context = req.params.get("context") or {}
        session.add(
            Document(
                document_id=document_id,
                customer_id=req.customer_id,
                call_id=context.get("call_id") if isinstance(context, Mapping) else None,
                operation_id=req.operation_id,
                kind="deposit_certificate" if kind == "deposit" else "statement",
                filename=filename,
                storage_key=key,
                sha256=digest,
                size=len(pdf),
                created_at=req.now,
            )
        )
        await audit.record(
            session,
            "document.stored",
            at=req.now.timestamp(),
            actor_role="system",
            actor_id="ledger",
            subject_type="document",
            subject_id=document_id,
            data={"operation_id": req.operation_id, "sha256": digest, "size": len(pdf)},
        )
        await session.flush()
        return Outcome(
            {
                "document_id": document_id,
                "type": kind,
                "from": start.isoformat() if kind == "statement" else None,
                "to": end.isoformat(),
                "filename": filename,
                "sha256": digest,
                "size": len(pdf),
                "url": f"/api/v1/documents/{document_id}/pdf",
                "entries": len(content.entries),
                "total": money_str(content.total()),
            }
        )

    async def _deposit_content(
        self, session: AsyncSession, req: Request, customer: Customer, end: date, until: datetime
    ) -> CertificateContent:
        ref = req.params.get("account")
        accounts = await self._accounts(session, req.customer_id, ref)
        balances = []
        for account in accounts:
            balances.append(
                (account.account_id, account.kind, await balance_at(session, account, until))
            )
        deposits = (
            (
                await session.execute(
                    select(TimeDeposit)
                    .where(
                        TimeDeposit.customer_id == req.customer_id,
                        TimeDeposit.opened_at < until,
                        (TimeDeposit.closed_at.is_(None)) | (TimeDeposit.closed_at >= until),
                    )
                    .order_by(TimeDeposit.opened_at, TimeDeposit.deposit_id)
                )
            )
            .scalars()
            .all()
        )
        if isinstance(ref, str):
            deposits = [d for d in deposits if d.account_id == ref]
        return CertificateContent(
            kind="deposit",
            customer_name=customer.display_name,
            issued_at=req.now.astimezone(self.tz),
            period=(end, end),
            accounts=tuple(balances),
            deposits=tuple(
                (
                    d.deposit_id,
                    d.term_months,
                    Decimal(str(d.principal)),
                    d.matures_at.astimezone(self.tz).date(),
                )
                for d in deposits
            ),
            entries=(),
            reference=req.operation_id,
        )
