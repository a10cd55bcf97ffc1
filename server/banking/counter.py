"""The counter's everyday business on the embedded ledger.

``passbook_statement``, ``loss_report``, ``replacement``, ``contact_change``,
``pension_certification`` and ``certificate``: each handler runs inside the
ledger's execution (customer lock, savepoint, ``ledger.executed`` audit entry,
idempotency per operation id; see :mod:`server.banking.ledger`), so its effect
and its record commit together or not at all. :meth:`CounterDesk.preflight`
runs the same choice of medium or account when the operation starts, so a
blocked medium or an ambiguous choice is refused then, with the choices named,
rather than after the customer has confirmed.
"""

from __future__ import annotations

import uuid
from collections.abc import Mapping
from datetime import date, datetime, time, timedelta, tzinfo
from typing import Any

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession

from server.db.banking import Account, Card, CustomerEvent, LossReport, Passbook
from server.db.models import Customer

from .certificates import CertificateDesk
from .core import ExecutionFailed, iso, money_str, new_id
from .documents import DocumentStore
from .entries import account_entries
from .handling import Outcome, Request
from .media import Medium, account_usable, choose_medium, customer_media, open_loss_report
from .statement import passbook_lines


class CounterDesk:
    """Handlers for the counter's kinds; ``documents`` keeps the PDFs produced."""

    def __init__(
        self, *, tz: tzinfo, clearing_account: str, documents: DocumentStore | None
    ) -> None:
        self.tz = tz
        self.clearing_account = clearing_account
        self.certificates = CertificateDesk(
            tz=tz, clearing_account=clearing_account, documents=documents
        )

    def handlers(self) -> dict[str, Any]:
        return {
            "passbook_statement": self.passbook_statement,
            "loss_report": self.loss_report,
            "replacement": self.replacement,
            "contact_change": self.contact_change,
            "pension_certification": self.pension_certification,
            "certificate": self.certificates.certificate,
        }

    # -------------------------------------------------------------- preflight

    async def preflight(
        self,
        session: AsyncSession,
        customer_id: str,
        kind: str,
        params: Mapping[str, Any],
        now: datetime,
    ) -> None:
        """Refuse now what execution would refuse for the medium or account chosen."""
        if kind == "passbook_statement":
            await self._statement_passbook(session, customer_id, params.get("account"))
        elif kind == "loss_report":
            await self._loss_target(session, customer_id, params)
        elif kind == "replacement":
            await self._replacement_target(session, customer_id, params)
        elif kind == "password_reset":
            await self.reset_target(session, customer_id, params)
        elif kind == "certificate":
            await self.certificates.preflight(session, customer_id, params, now)

    # ---------------------------------------------------------------- passbook

    async def _statement_passbook(
        self, session: AsyncSession, customer_id: str, ref: Any
    ) -> Medium:
        media = await customer_media(session, customer_id, "passbook")
        if isinstance(ref, str):
            named = [m for m in media if ref in (m.account_id, m.medium_id)]
            if not named:
                raise ExecutionFailed("medium_not_found", f"the customer has no passbook {ref!r}")
            media = named
        book = choose_medium(media, "passbook", None)
        await account_usable(session, book.account_id)
        return book

    async def passbook_statement(self, session: AsyncSession, req: Request) -> Outcome:
        book = await self._statement_passbook(session, req.customer_id, req.params.get("account"))
        count = int(req.params.get("entries", 10))
        account = await session.get(Account, book.account_id, populate_existing=True)
        assert account is not None  # the passbook's foreign key
        entries = await account_entries(
            session,
            account,
            None,
            req.now,
            limit=count,
            tz=self.tz,
            clearing_account=self.clearing_account,
        )
        lines = passbook_lines(entries)
        return Outcome(
            {
                "account_id": account.account_id,
                "passbook_id": book.medium_id,
                "currency": account.currency,
                "balance": money_str(account.balance),
                "entries": [e.as_dict() for e in entries],
                "printed": lines,
                "as_of": iso(req.now),
            }
        )

    # ------------------------------------------------------------- loss report

    async def _loss_target(
        self, session: AsyncSession, customer_id: str, params: Mapping[str, Any]
    ) -> tuple[Medium, LossReport | None]:
        medium, stage = str(params.get("medium")), params.get("stage")
        media = await customer_media(session, customer_id, medium)
        ref = params.get("account")
        if stage == "formal":
            # A formal report follows a temporary one, or is made at once.
            reported = [m for m in media if m.lost]
            for m in reported:
                report = await open_loss_report(session, m.account_id)
                if (
                    report is not None
                    and report.medium_id == m.medium_id
                    and (ref is None or m.named_by(ref))
                ):
                    if report.stage == "formal":
                        raise ExecutionFailed(
                            "already_reported", f"the {m.label()} is already reported lost (formal)"
                        )
                    return m, report
        wanted = ref if isinstance(ref, str) else None
        named = [m for m in media if wanted is None or m.named_by(wanted)]
        if named and all(m.lost for m in named):
            raise ExecutionFailed(
                "already_reported", f"the {named[0].label()} is already reported lost"
            )
        target = choose_medium(media, medium, wanted)
        return target, None

    async def loss_report(self, session: AsyncSession, req: Request) -> Outcome:
        target, report = await self._loss_target(session, req.customer_id, req.params)
        stage = str(req.params.get("stage"))
        if report is None:
            report = LossReport(
                report_id=new_id("LR"),
                customer_id=req.customer_id,
                medium=target.medium,
                medium_id=target.medium_id,
                account_id=target.account_id,
                stage=stage,
                state="open",
                reported_at=req.now,
                formal_at=req.now if stage == "formal" else None,
                replaced_at=None,
                replacement_id=None,
                operation_id=req.operation_id,
            )
            session.add(report)
            await self._set_medium_state(session, target, "lost")
        else:
            report.stage, report.formal_at = "formal", req.now
        self._event(session, req, "loss_report", {"medium": target.medium, "stage": stage})
        await session.flush()
        return Outcome(
            {
                "report_id": report.report_id,
                "medium": target.medium,
                "medium_id": target.medium_id,
                "account_ending": target.account_id[-4:],
                "stage": report.stage,
                "blocked": True,
                "reported_at": iso(report.reported_at),
            }
        )

    async def _set_medium_state(self, session: AsyncSession, target: Medium, state: str) -> None:
        row: Card | Passbook | None
        if target.medium == "card":
            row = await session.get(Card, target.medium_id, populate_existing=True)
        else:
            row = await session.get(Passbook, target.medium_id, populate_existing=True)
        assert row is not None
        row.state = state

    # -------------------------------------------------------------- replacement

    async def _replacement_target(
        self, session: AsyncSession, customer_id: str, params: Mapping[str, Any]
    ) -> tuple[Medium, LossReport]:
        medium = str(params.get("medium"))
        media = await customer_media(session, customer_id, medium)
        ref = params.get("account")
        open_reports = []
        for m in media:
            if not m.lost:
                continue
            report = await open_loss_report(session, m.account_id)
            if report is not None and report.medium_id == m.medium_id:
                open_reports.append((m, report))
        if isinstance(ref, str):
            open_reports = [(m, r) for m, r in open_reports if m.named_by(ref)]
        what = "bank card" if medium == "card" else "passbook"
        if not open_reports:
            raise ExecutionFailed("not_reported", f"no {what} of the customer is reported lost")
        if len(open_reports) > 1:
            choices = ", ".join(f"{m.medium_id} (ending {m.last4})" for m, _ in open_reports)
            raise ExecutionFailed(
                "medium_ambiguous", f"several {what}s are reported lost; name one: {choices}"
            )
        target, report = open_reports[0]
        if report.stage != "formal":
            raise ExecutionFailed(
                "loss_report_not_formal",
                f"the {target.label()} is reported lost for now only; "
                "make the loss report formal first, then replace it",
            )
        return target, report

    async def replacement(self, session: AsyncSession, req: Request) -> Outcome:
        target, report = await self._replacement_target(session, req.customer_id, req.params)
        if target.medium == "card":
            digits = str(int(uuid.uuid4().hex[:8], 16) % 10_000).rjust(4, "0")
            new_medium_id = f"CD{req.customer_id}{uuid.uuid4().hex[:6]}"
            session.add(
                Card(
                    card_id=new_medium_id,
                    customer_id=req.customer_id,
                    last4=digits,
                    state="issued",
                    activated_at=None,
                )
            )
            new_state, new_last4 = "issued", digits
        else:
            new_medium_id = new_id("PB")
            session.add(
                Passbook(
                    passbook_id=new_medium_id,
                    account_id=target.account_id,
                    customer_id=req.customer_id,
                    state="active",
                    issued_at=req.now,
                    replaces=target.medium_id,
                )
            )
            new_state, new_last4 = "active", target.account_id[-4:]
        report.state, report.replaced_at, report.replacement_id = "replaced", req.now, new_medium_id
        self._event(session, req, "replacement", {"medium": target.medium})
        await session.flush()
        return Outcome(
            {
                "medium": target.medium,
                "old_medium_id": target.medium_id,
                "old_state": "lost",
                "new_medium_id": new_medium_id,
                "new_state": new_state,
                "last4": new_last4,
                "report_id": report.report_id,
                "replaced_at": iso(req.now),
            }
        )

    # ---------------------------------------------------------- password reset

    async def reset_target(
        self, session: AsyncSession, customer_id: str, params: Mapping[str, Any]
    ) -> Medium | None:
        """The card or passbook whose password is reset (None: the app's password).

        A reported medium is refused until its replacement; the replacement's
        password can then be reset."""
        channel = params.get("channel", "mobile")
        if channel not in ("card", "passbook"):
            return None
        media = await customer_media(session, customer_id, str(channel))
        ref = params.get("account")
        target = choose_medium(media, str(channel), ref if isinstance(ref, str) else None)
        if target.lost:
            report = await open_loss_report(session, target.account_id)
            detail = f"the {target.label()} is reported lost; reset the password of its replacement"
            if report is not None:
                detail = (
                    f"the {target.label()} is reported lost ({report.stage}); its password "
                    "can be reset once it is replaced"
                )
            raise ExecutionFailed("medium_reported_lost", detail)
        return target

    # ---------------------------------------------------------- contact change

    async def contact_change(self, session: AsyncSession, req: Request) -> Outcome:
        phone = req.params.get("phone")
        if not isinstance(phone, str) or len(phone) != 11 or not phone.isdigit():
            raise ExecutionFailed("invalid_params", "phone must be an 11-digit mobile number")
        customer = await session.get(Customer, req.customer_id, populate_existing=True)
        if customer is None:  # pragma: no cover - the lock step found the row
            raise ExecutionFailed("unknown_customer", "no such customer")
        if customer.phone == phone:
            raise ExecutionFailed("phone_unchanged", "that is already the customer's number")
        old_tail = (customer.phone or "")[-4:] or None
        customer.phone = phone
        # The event is what the risk engine reads as RecentEvent("contact_change");
        # only the numbers' last digits are kept beside it.
        self._event(
            session,
            req,
            "contact_change",
            {"channel": "sms", "old_ending": old_tail, "new_ending": phone[-4:]},
        )
        await session.flush()
        return Outcome(
            {"phone_ending": phone[-4:], "previous_ending": old_tail, "changed_at": iso(req.now)}
        )

    # --------------------------------------------------- pension certification

    async def pension_certification(self, session: AsyncSession, req: Request) -> Outcome:
        context = req.params.get("context") or {}
        evidence = context.get("evidence") if isinstance(context, Mapping) else None
        if not isinstance(evidence, Mapping) or not evidence.get("attested_by"):
            raise ExecutionFailed("evidence_missing", "a certification needs its evidence")
        year = req.now.astimezone(self.tz).year
        start = datetime.combine(date(year, 1, 1), time(), self.tz)
        earlier = await session.scalar(
            select(CustomerEvent.at)
            .where(
                CustomerEvent.customer_id == req.customer_id,
                CustomerEvent.kind == "pension_certified",
                CustomerEvent.at >= start,
            )
            .limit(1)
        )
        if earlier is not None:
            day = earlier.astimezone(self.tz).date().isoformat()
            raise ExecutionFailed("already_certified", f"already certified this year, on {day}")
        valid_until = (req.now.astimezone(self.tz) + timedelta(days=365)).date().isoformat()
        result = {
            "certified": True,
            "year": year,
            "valid_until": valid_until,
            "method": evidence.get("method"),
            "evidence": dict(evidence),
            "certified_at": iso(req.now),
        }
        self._event(session, req, "pension_certified", {"method": evidence.get("method")})
        await session.flush()
        return Outcome(result)

    # ---------------------------------------------------------------- helpers

    def _event(self, session: AsyncSession, req: Request, kind: str, data: dict[str, Any]) -> None:
        session.add(
            CustomerEvent(
                customer_id=req.customer_id,
                kind=kind,
                at=req.now,
                data={**data, "operation_id": req.operation_id},
            )
        )
