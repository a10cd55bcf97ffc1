"""SqlLedger on a seeded database: money moves exactly once, or not at all."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from sqlalchemy import select

from server import audit
from server.banking import CLEARING_ACCOUNT_ID, ExecutionFailed, SqlLedger
from server.banking.credentials import TICKET_TTL
from server.db.banking import (
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
from server.ports import Transaction

from .helpers import (
    STRANGER,
    Sessions,
    balance,
    check_books,
    counts,
    current_account,
    family_payee,
    op_id,
    transfer_params,
    transfers_for,
)


def _now() -> datetime:
    return datetime.now(UTC)


async def _execute(
    sessions: Sessions,
    ledger: SqlLedger,
    operation_id: str,
    customer_id: str,
    kind: str,
    params: dict[str, Any],
    now: datetime | None = None,
) -> dict[str, Any]:
    async with sessions() as s:
        result = await ledger.execute(
            Transaction(s), operation_id, customer_id, kind, params, now or _now()
        )
        await s.commit()
    return result


async def _refused(
    sessions: Sessions,
    ledger: SqlLedger,
    customer_id: str,
    kind: str,
    params: dict[str, Any],
    now: datetime | None = None,
) -> ExecutionFailed:
    """Execute expecting a refusal; the caller's transaction must stay usable."""
    async with sessions() as s:
        with pytest.raises(ExecutionFailed) as caught:
            await ledger.execute(Transaction(s), op_id(), customer_id, kind, params, now or _now())
        await s.commit()  # what the operation layer does to record the failure
    return caught.value


# --------------------------------------------------------------------- transfers


async def test_transfer_moves_exactly_the_amount(sessions: Sessions, ledger: SqlLedger) -> None:
    account = await current_account(sessions, "C1001")
    daughter = await family_payee(sessions, "C1001")
    before, clearing_before = await balance(sessions, account), await balance(sessions)
    operation = op_id()

    result = await _execute(
        sessions,
        ledger,
        operation,
        "C1001",
        "transfer",
        transfer_params("1234.56", daughter.account_no, daughter.name, daughter.bank),
    )

    assert await balance(sessions, account) == before - Decimal("1234.56")
    assert await balance(sessions) == clearing_before + Decimal("1234.56")
    assert result["amount"] == "1234.56" and result["currency"] == "CNY"
    assert result["balance_after"] == str(before - Decimal("1234.56"))
    assert result["new_payee"] is False
    [transfer] = await transfers_for(sessions, operation)
    assert transfer.transfer_id == result["transfer_id"] and transfer.direction == "out"
    async with sessions() as s:
        legs = (
            (await s.execute(select(Posting).where(Posting.transfer_id == transfer.transfer_id)))
            .scalars()
            .all()
        )
    assert {(p.account_id, p.amount) for p in legs} == {
        (account, Decimal("-1234.56")),
        (CLEARING_ACCOUNT_ID, Decimal("1234.56")),
    }
    await check_books(sessions)


async def test_first_transfer_to_a_payee_adds_it_to_the_payee_book(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    now = _now()
    result = await _execute(
        sessions,
        ledger,
        op_id(),
        "C1003",
        "transfer",
        transfer_params("800.00", "6230 5800-0012 3456 789"),
        now,
    )
    assert result["new_payee"] is True
    async with sessions() as s:
        payee = await s.scalar(
            select(Payee).where(Payee.customer_id == "C1003", Payee.account_no == STRANGER)
        )
    assert payee is not None and payee.relation is None
    assert payee.first_seen_at == now
    again = await _execute(
        sessions, ledger, op_id(), "C1003", "transfer", transfer_params("100.00"), now
    )
    assert again["new_payee"] is False


async def test_executing_again_returns_the_first_result(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    account = await current_account(sessions, "C1002")
    before = await balance(sessions, account)
    operation = op_id()
    params = transfer_params("5000.00")

    first = await _execute(sessions, ledger, operation, "C1002", "transfer", params)
    second = await _execute(sessions, ledger, operation, "C1002", "transfer", params)

    assert second == first
    assert len(await transfers_for(sessions, operation)) == 1
    assert await balance(sessions, account) == before - Decimal("5000.00")
    # The same id for something else is refused, not replayed.
    async with sessions() as s:
        with pytest.raises(ExecutionFailed) as caught:
            await ledger.execute(Transaction(s), operation, "C1002", "balance_inquiry", {}, _now())
    assert caught.value.reason_code == "operation_id_reused"


async def test_concurrent_executions_of_one_operation_post_once(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    account = await current_account(sessions, "C1004")
    before = await balance(sessions, account)
    operation = op_id()

    async def run() -> dict[str, Any]:
        return await _execute(
            sessions, ledger, operation, "C1004", "transfer", transfer_params("700.00")
        )

    first, second = await asyncio.gather(run(), run())

    assert first == second
    assert len(await transfers_for(sessions, operation)) == 1
    assert await balance(sessions, account) == before - Decimal("700.00")
    await check_books(sessions)


async def test_concurrent_transfers_cannot_overdraw(sessions: Sessions, ledger: SqlLedger) -> None:
    account = await current_account(sessions, "C1013")
    before = await balance(sessions, account)
    amount = (before * Decimal("0.6")).quantize(Decimal("1"))

    async def run() -> dict[str, Any] | ExecutionFailed:
        try:
            return await _execute(
                sessions, ledger, op_id(), "C1013", "transfer", transfer_params(str(amount))
            )
        except ExecutionFailed as exc:
            return exc

    outcomes = await asyncio.gather(run(), run())

    refused = [o for o in outcomes if isinstance(o, ExecutionFailed)]
    assert [r.reason_code for r in refused] == ["insufficient_funds"]
    assert await balance(sessions, account) == before - amount


async def test_insufficient_funds_leaves_balances_untouched(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    account = await current_account(sessions, "C1013")
    before, clearing = await balance(sessions, account), await balance(sessions)
    ledger_size = await counts(sessions)

    refusal = await _refused(
        sessions, ledger, "C1013", "transfer", transfer_params(str(before + Decimal("0.01")))
    )

    assert refusal.reason_code == "insufficient_funds" and refusal.reason == "insufficient_funds"
    assert await balance(sessions, account) == before
    assert await balance(sessions) == clearing
    assert await counts(sessions) == ledger_size


async def test_over_the_daily_counter_limit_is_refused(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    # C1016's family lowered her counter limit to 20,000.
    now = _now()
    account = await current_account(sessions, "C1016")
    await _execute(sessions, ledger, op_id(), "C1016", "transfer", transfer_params("15000"), now)
    after_first = await balance(sessions, account)

    refusal = await _refused(sessions, ledger, "C1016", "transfer", transfer_params("5000.01"), now)

    assert refusal.reason_code == "over_daily_limit"
    assert await balance(sessions, account) == after_first
    # Exactly up to the limit is fine; the next local day starts afresh.
    await _execute(sessions, ledger, op_id(), "C1016", "transfer", transfer_params("5000"), now)
    await _execute(
        sessions,
        ledger,
        op_id(),
        "C1016",
        "transfer",
        transfer_params("100"),
        now + timedelta(days=1),
    )


# The payee book is written after the postings; the clearing row is moved last of all.
@pytest.mark.parametrize(
    "step", ["server.banking.transfers._remember_payee", "server.banking.ledger.move_clearing"]
)
async def test_a_failure_mid_execution_leaves_no_half_posted_transfer(
    sessions: Sessions, ledger: SqlLedger, monkeypatch: pytest.MonkeyPatch, step: str
) -> None:
    account = await current_account(sessions, "C1001")
    before, clearing = await balance(sessions, account), await balance(sessions)
    ledger_size = await counts(sessions)
    operation = op_id()
    params = transfer_params("2500.00")

    async def broken(*args: Any, **kwargs: Any) -> Any:
        raise RuntimeError("storage failure")

    with monkeypatch.context() as patch:
        patch.setattr(step, broken)
        async with sessions() as s:
            with pytest.raises(RuntimeError):
                await ledger.execute(Transaction(s), operation, "C1001", "transfer", params, _now())
            # The caller's transaction is still usable and commits nothing of it.
            await s.commit()

    assert await balance(sessions, account) == before
    assert await balance(sessions) == clearing
    assert await counts(sessions) == ledger_size
    assert await transfers_for(sessions, operation) == []
    async with sessions() as s:
        assert (await audit.verify(s)).ok
    # Nothing was recorded, so the operation can run again.
    result = await _execute(sessions, ledger, operation, "C1001", "transfer", params)
    assert result["balance_after"] == str(before - Decimal("2500.00"))
    await check_books(sessions)


async def test_refusals_name_their_reason(sessions: Sessions, ledger: SqlLedger) -> None:
    async with sessions() as s:
        s.add(
            BlockedPayee(
                account_no="6222000011112222",
                reason="reported mule account",
                added_by="S01",
                added_at=_now(),
            )
        )
        await s.commit()
    ledger_size = await counts(sessions)
    cases: list[tuple[str, str, dict[str, Any], str]] = [
        ("C9999", "transfer", transfer_params("10"), "unknown_customer"),
        ("C1001", "transfer", transfer_params("10.001"), "invalid_params"),
        ("C1001", "transfer", {**transfer_params("10"), "amount": 10.5}, "invalid_params"),
        ("C1001", "transfer", transfer_params("-5"), "invalid_params"),
        ("C1001", "transfer", {**transfer_params("10"), "currency": "USD"}, "currency_mismatch"),
        ("C1001", "transfer", {**transfer_params("10"), "from_account": "1"}, "unknown_account"),
        ("C1001", "transfer", transfer_params("10", "6222-0000-1111-2222"), "payee_blocked"),
        ("C1001", "wire_abroad", {}, "unsupported_kind"),
        ("C1001", "time_deposit", {"action": "break", "deposit_id": "TDX"}, "deposit_not_found"),
        (
            "C1001",
            "time_deposit",
            {"action": "open", "amount": "100", "term_months": 7},
            "invalid_params",
        ),
        ("C1001", "limit_change", {"channel": "fax", "new_limit": "1"}, "invalid_params"),
        ("C1001", "card_activation", {}, "card_not_found"),
    ]
    for customer_id, kind, params, code in cases:
        refusal = await _refused(sessions, ledger, customer_id, kind, params)
        assert refusal.reason_code == code, (kind, params)
    assert await counts(sessions) == ledger_size


# ------------------------------------------------------------------ other kinds


async def test_limit_change_updates_the_limit_and_records_an_event(
    sessions: Sessions, ledger: SqlLedger
) -> None:
    now = _now()
    operation = op_id()
    params = {"channel": "mobile", "new_limit": "30000.00", "currency": "CNY"}

    result = await _execute(sessions, ledger, operation, "C1009", "limit_change", params, now)
    again = await _execute(sessions, ledger, operation, "C1009", "limit_change", params, now)

    assert (
        result
        == again
        == {
            "channel": "mobile",
            "old_limit": "20000.00",
            "new_limit": "30000.00",
            "currency": "CNY",
        }
    )
    async with sessions() as s:
        limit = await s.get(TransferLimit, ("C1009", "mobile"))
        events = (
            (
                await s.execute(
                    select(CustomerEvent).where(
                        CustomerEvent.customer_id == "C1009", CustomerEvent.kind == "limit_change"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert limit is not None and limit.daily_limit == Decimal("30000.00")
    [event] = events
    assert event.at == now
    assert event.data["direction"] == "raise" and event.data["operation_id"] == operation


async def test_time_deposit_open_and_break(sessions: Sessions, ledger: SqlLedger) -> None:
    now = _now()
    account = await current_account(sessions, "C1007")
    before = await balance(sessions, account)

    opened = await _execute(
        sessions,
        ledger,
        op_id(),
        "C1007",
        "time_deposit",
        {"action": "open", "amount": "10000.00", "currency": "CNY", "term_months": 12},
        now,
    )
    assert opened["state"] == "open" and opened["principal"] == "10000.00"
    assert opened["annual_rate"] == "0.0135"
    assert opened["balance_after"] == str(before - Decimal("10000.00"))
    assert await balance(sessions, account) == before - Decimal("10000.00")

    # Broken 100 days later: the demand rate for 100 days, 10000 * 0.0015 * 100 / 360.
    later = now + timedelta(days=100)
    broken = await _execute(
        sessions,
        ledger,
        op_id(),
        "C1007",
        "time_deposit",
        {"action": "break", "deposit_id": opened["deposit_id"]},
        later,
    )
    assert broken["state"] == "broken"
    assert broken["interest"] == "4.17" and broken["payout"] == "10004.17"
    assert await balance(sessions, account) == before + Decimal("4.17")
    async with sessions() as s:
        deposit = await s.get(TimeDeposit, opened["deposit_id"])
        event = await s.scalar(
            select(CustomerEvent).where(
                CustomerEvent.customer_id == "C1007", CustomerEvent.kind == "time_deposit_break"
            )
        )
    assert deposit is not None and deposit.state == "broken" and deposit.closed_at == later
    assert event is not None and event.at == later

    again = await _refused(
        sessions,
        ledger,
        "C1007",
        "time_deposit",
        {"action": "break", "deposit_id": opened["deposit_id"]},
        later,
    )
    assert again.reason_code == "deposit_not_open"
    await check_books(sessions)


async def test_password_reset_issues_a_ticket(sessions: Sessions, ledger: SqlLedger) -> None:
    now = _now()
    first = await _execute(sessions, ledger, op_id(), "C1010", "password_reset", {}, now)
    second = await _execute(
        sessions, ledger, op_id(), "C1010", "password_reset", {"channel": "card"}, now
    )

    assert first["state"] == "issued" and first["channel"] == "mobile"
    assert datetime.fromisoformat(first["expires_at"]) == now + TICKET_TTL
    async with sessions() as s:
        tickets = {
            t.ticket_id: t.state
            for t in (
                await s.execute(
                    select(PasswordResetTicket).where(PasswordResetTicket.customer_id == "C1010")
                )
            ).scalars()
        }
        kinds = (
            (
                await s.execute(
                    select(CustomerEvent.kind).where(CustomerEvent.customer_id == "C1010")
                )
            )
            .scalars()
            .all()
        )
    # A new ticket supersedes the one before.
    assert tickets == {first["ticket_id"]: "expired", second["ticket_id"]: "issued"}
    assert kinds == ["password_reset", "password_reset"]


async def test_card_activation(sessions: Sessions, ledger: SqlLedger) -> None:
    # C1008's replacement card is waiting for activation.
    result = await _execute(sessions, ledger, op_id(), "C1008", "card_activation", {})

    assert result["state"] == "active" and result["card_id"] == "CDC100802"
    async with sessions() as s:
        card = await s.get(Card, "CDC100802")
    assert card is not None and card.state == "active" and card.activated_at is not None
    refusal = await _refused(sessions, ledger, "C1008", "card_activation", {"card_id": "CDC100802"})
    assert refusal.reason_code == "card_already_active"


async def test_balance_inquiry(sessions: Sessions, ledger: SqlLedger) -> None:
    account = await current_account(sessions, "C1002")
    result = await _execute(sessions, ledger, op_id(), "C1002", "balance_inquiry", {})

    by_kind = {a["kind"]: a for a in result["accounts"]}
    assert set(by_kind) == {"current", "passbook"}
    assert by_kind["current"]["account_id"] == account
    assert by_kind["current"]["balance"] == str(await balance(sessions, account))
    total = sum(Decimal(a["balance"]) for a in result["accounts"])
    assert result["totals"] == {"CNY": str(total)}
    [deposit] = result["time_deposits"]
    assert deposit["principal"] == "200000.00" and deposit["state"] == "open"


async def test_deposit_movements_are_not_payments(sessions: Sessions, ledger: SqlLedger) -> None:
    """Opening a deposit names the clearing account as counterparty and does not use
    up the daily limit (Grandpa Wu's counter limit is 100,000)."""
    now = _now()
    opened = await _execute(
        sessions,
        ledger,
        op_id(),
        "C1002",
        "time_deposit",
        {"action": "open", "amount": "60000", "term_months": 3},
        now,
    )
    async with sessions() as s:
        transfer = await s.scalar(
            select(Transfer).where(Transfer.payee_name.contains(opened["deposit_id"]))
        )
    assert transfer is not None and transfer.payee_account == CLEARING_ACCOUNT_ID
    await _execute(sessions, ledger, op_id(), "C1002", "transfer", transfer_params("100000"), now)
