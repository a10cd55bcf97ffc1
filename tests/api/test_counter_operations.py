"""The counter's everyday kinds through the API, on SQLite and PostgreSQL:
passbook statements and payments from a passbook, loss reports that block a
medium at once, formal reports and replacements, contact changes the risk
engine sees, pension certification with its evidence, and PDF certificates
stored, hashed into the audit chain and fetched by those allowed.

Each kind: valid and invalid params, its refusals, the customer's confirmation
(or refusal) and execution that happens once."""

from __future__ import annotations

import hashlib
from collections.abc import AsyncIterator
from datetime import UTC, date, datetime, timedelta
from pathlib import Path
from typing import Any

import aiohttp
import pytest
from sqlalchemy import func, select

from server.appkeys import CALLS, OPERATIONS
from server.db.banking import AuditEntry, CustomerEvent, Document, LossReport, Passbook
from server.db.models import Customer
from server.operations.assessment import earlier_operations
from server.ports import Transaction
from tests.api.counter_support import run, start, through_review
from tests.api.harness import Api, RunningServer
from tests.api.helpers import assert_problem
from tests.api.test_operations import active_call

DAUGHTER = {
    "amount": "1200.00",
    "currency": "CNY",
    "payee_account": "6222020000001021",
    "payee_name": "陆美华",
    "payee_bank": "ICBC",
}


@pytest.fixture
def server_settings(tmp_path: Path) -> dict[str, Any]:
    return {"documents_dir": str(tmp_path / "documents")}


@pytest.fixture
async def api(server: RunningServer) -> AsyncIterator[Api]:
    """The harness's client with a longer deadline: confirming a certificate draws
    its PDF (a second or two of CPU, parsing the CJK font), which on a loaded
    machine can outlast the usual 20 s."""
    async with aiohttp.ClientSession(timeout=aiohttp.ClientTimeout(total=90)) as session:
        yield Api(server.base_url, session)


async def _count(server: RunningServer, query: Any) -> int:
    async with server.app[CALLS].sessions() as session:
        return int(await session.scalar(query) or 0)


async def test_passbook_only_customer_reads_her_passbook_and_pays_from_it(
    api: Api, server: RunningServer
) -> None:
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1021")
    statement = await run(
        desk, customer, customer_ws, call_id, "passbook_statement", {"entries": 5}
    )
    assert statement["state"] == "executed", statement
    result = statement["result"]
    assert len(result["entries"]) == 5 and len(result["printed"]) == 6, result
    assert result["printed"][0].startswith("日期")
    # The last printed balance is the passbook's balance now.
    assert result["entries"][-1]["balance"] == result["balance"], result
    balance = result["balance"]

    # A transfer with no account named is paid from her passbook: she has nothing else.
    paid = await run(desk, customer, customer_ws, call_id, "transfer", DAUGHTER)
    assert paid["state"] == "executed", paid
    after = float(balance) - 1200
    assert float(paid["result"]["balance_after"]) == pytest.approx(after)

    deposit = await run(
        desk,
        customer,
        customer_ws,
        call_id,
        "time_deposit",
        {
            "action": "open",
            "amount": "5000.00",
            "term_months": 12,
            "from_account": result["account_id"],
        },
    )
    assert deposit["state"] == "executed", deposit
    assert deposit["result"]["balance_after"] == f"{after - 5000:.2f}"

    # Wrong params are refused at the wire.
    for params in ({"entries": 0}, {"entries": 61}, {"entries": "ten"}, {"page": 1}):
        reply = await start(desk, call_id, "passbook_statement", params)
        assert_problem(reply, 422, what=params)


async def test_passbook_statement_needs_a_passbook_and_names_it(api: Api) -> None:
    desk, _, _, _, call_id = await active_call(api, customer_id="C1013")  # no passbook
    assert_problem(await start(desk, call_id, "passbook_statement", {}), 409, "medium_not_found")


async def test_passbook_loss_blocks_at_once_then_formal_then_replacement(
    api: Api, server: RunningServer
) -> None:
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1021")

    # Refused by the customer: nothing is blocked.
    started = await start(
        desk, call_id, "loss_report", {"medium": "passbook", "stage": "temporary"}
    )
    assert started.status == 201, started
    op = await through_review(desk, started.body)
    request = await customer_ws.expect("operation.confirm_request", operation_id=op["operation_id"])
    assert "挂失" in request["summary"]["zh"] and "lost" in request["summary"]["en"]
    refused = await customer.post(
        f"/api/v1/operations/{op['operation_id']}/confirm", {"confirmed": False}
    )
    assert refused.status == 200 and refused.body["state"] == "rejected", refused
    assert await _count(server, select(func.count()).select_from(LossReport)) == 0

    # Replacing before any report, and a formal report of nothing: refused.
    assert_problem(
        await start(desk, call_id, "replacement", {"medium": "passbook"}), 409, "not_reported"
    )

    reported = await run(
        desk,
        customer,
        customer_ws,
        call_id,
        "loss_report",
        {"medium": "passbook", "stage": "temporary"},
    )
    assert reported["state"] == "executed", reported
    assert reported["result"]["blocked"] is True and reported["result"]["stage"] == "temporary"

    # Executed once: a second confirmation is refused and no second report exists.
    again = await customer.post(
        f"/api/v1/operations/{reported['operation_id']}/confirm", {"confirmed": True}
    )
    assert again.status == 409, again
    assert await _count(server, select(func.count()).select_from(LossReport)) == 1

    # Everything on the reported passbook is refused, with the reason and a stable code.
    for kind, params in (
        ("transfer", DAUGHTER),
        ("time_deposit", {"action": "open", "amount": "1000.00", "term_months": 3}),
        ("passbook_statement", {}),
        ("password_reset", {"channel": "passbook"}),
    ):
        body = assert_problem(await start(desk, call_id, kind, params), 409, "medium_reported_lost")
        assert "lost" in body["detail"], body
    assert_problem(
        await start(desk, call_id, "loss_report", {"medium": "passbook", "stage": "temporary"}),
        409,
        "already_reported",
    )
    assert_problem(
        await start(desk, call_id, "replacement", {"medium": "passbook"}),
        409,
        "loss_report_not_formal",
    )

    formal = await run(
        desk,
        customer,
        customer_ws,
        call_id,
        "loss_report",
        {"medium": "passbook", "stage": "formal"},
    )
    assert formal["state"] == "executed" and formal["result"]["stage"] == "formal", formal
    assert formal["result"]["report_id"] == reported["result"]["report_id"]

    replaced = await run(
        desk, customer, customer_ws, call_id, "replacement", {"medium": "passbook"}
    )
    assert replaced["state"] == "executed", replaced
    new_id, old_id = replaced["result"]["new_medium_id"], replaced["result"]["old_medium_id"]
    assert new_id != old_id
    async with server.app[CALLS].sessions() as session:
        old, new = await session.get(Passbook, old_id), await session.get(Passbook, new_id)
        assert old is not None and old.state == "lost"  # the old book stays blocked for good
        assert new is not None and new.state == "active" and new.replaces == old_id

    # After the replacement: the password can be reset and the passbook pays again.
    reset = await run(
        desk, customer, customer_ws, call_id, "password_reset", {"channel": "passbook"}
    )
    assert reset["state"] == "executed" and reset["result"]["medium_id"] == new_id, reset
    paid = await run(desk, customer, customer_ws, call_id, "transfer", DAUGHTER)
    assert paid["state"] == "executed", paid

    for params in (
        {"medium": "wallet", "stage": "temporary"},
        {"medium": "card"},
        {"medium": "card", "stage": "later"},
        {"medium": "card", "stage": "formal", "account": "x"},
    ):
        assert_problem(await start(desk, call_id, "loss_report", params), 422, what=params)
    assert_problem(await start(desk, call_id, "replacement", {}), 422)


async def test_card_loss_names_the_choices_and_blocks_the_card(api: Api) -> None:
    # C1008 has his active card and a replacement card waiting for activation.
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1008")
    body = assert_problem(
        await start(desk, call_id, "loss_report", {"medium": "card", "stage": "temporary"}),
        409,
        "medium_ambiguous",
    )
    assert "CDC100801" in body["detail"] and "CDC100802" in body["detail"], body
    reported = await run(
        desk,
        customer,
        customer_ws,
        call_id,
        "loss_report",
        {"medium": "card", "stage": "temporary", "account": "CDC100801"},
    )
    assert reported["state"] == "executed", reported
    # The card's password is not reset while it is reported lost.
    assert_problem(
        await start(desk, call_id, "password_reset", {"channel": "card", "account": "CDC100801"}),
        409,
        "medium_reported_lost",
    )
    # Nor is anything paid from the account the card belongs to.
    assert_problem(
        await start(
            desk,
            call_id,
            "transfer",
            {**DAUGHTER, "payee_name": "周某", "payee_account": "6222020000001008"},
        ),
        409,
        "medium_reported_lost",
    )


async def test_contact_change_is_recorded_for_the_risk_engine(
    api: Api, server: RunningServer
) -> None:
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1001")
    for params in (
        {"phone": "12345"},
        {"phone": "23800138000"},
        {},
        {"phone": "13900139000", "x": 1},
    ):
        assert_problem(await start(desk, call_id, "contact_change", params), 422, what=params)

    changed = await run(
        desk, customer, customer_ws, call_id, "contact_change", {"phone": "+86 139 0013 9000"}
    )
    assert changed["state"] == "executed", changed
    assert changed["result"]["phone_ending"] == "9000"
    assert changed["params"] == {"phone": "13900139000"}
    again = await customer.post(
        f"/api/v1/operations/{changed['operation_id']}/confirm", {"confirmed": True}
    )
    assert again.status == 409

    now = datetime.now(UTC)
    operations = server.app[OPERATIONS]
    async with server.app[CALLS].sessions() as session:
        row = await session.get(Customer, "C1001")
        assert row is not None and row.phone == "13900139000"
        events = (
            await session.scalars(
                select(CustomerEvent).where(
                    CustomerEvent.customer_id == "C1001", CustomerEvent.kind == "contact_change"
                )
            )
        ).all()
        assert len(events) == 1 and "13900139000" not in str(events[0].data)
        profile, _ = await operations.core.risk_inputs(Transaction(session), "C1001", now)
        earlier = await earlier_operations(session, "C1001", now)
    # What later operations are assessed with: the change as a recent event of the
    # account and as an earlier operation of this call.
    assert any(e.kind == "contact_change" for e in profile.recent_events), profile.recent_events
    assert [p.kind for p in earlier if p.kind == "contact_change"] == ["contact_change"]

    # The same number again is refused at execution, and nothing changes.
    same = await run(
        desk, customer, customer_ws, call_id, "contact_change", {"phone": "13900139000"}
    )
    assert same["state"] == "failed" and same["failure_reason"] == "phone_unchanged", same


async def test_pension_certification_records_its_evidence_once_a_year(api: Api) -> None:
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1021")
    assert_problem(await start(desk, call_id, "pension_certification", {"year": 2026}), 422)
    certified = await run(desk, customer, customer_ws, call_id, "pension_certification", {})
    assert certified["state"] == "executed", certified
    result = certified["result"]
    assert result["certified"] is True and result["method"] == "specialist_attestation"
    evidence = result["evidence"]
    assert evidence["attested_by"] == desk.subject and evidence["call_id"] == call_id
    # The API tests run media peer to peer: no recording, no liveness challenge yet.
    assert evidence["recording"] is None and evidence["liveness"] is None
    twice = await run(desk, customer, customer_ws, call_id, "pension_certification", {})
    assert twice["state"] == "failed" and twice["failure_reason"] == "already_certified", twice


async def test_certificates_are_stored_hashed_audited_and_fetched_by_whom_they_concern(
    api: Api, server: RunningServer
) -> None:
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1021")
    today = datetime.now(UTC).date()
    for params in (
        {"type": "loan"},
        {"type": "statement", "from": "2026-11-30", "to": "2026-11-01"},
        {"type": "deposit", "from": "2026-11-01"},
        {"type": "statement", "from": "2026/11/01"},
        {"type": "statement", "from": "2026-11-01T00:00:00Z"},
        {"type": "statement", "from": "2024-01-01", "to": "2026-01-01"},
    ):
        assert_problem(await start(desk, call_id, "certificate", params), 422, what=params)
    future = (today + timedelta(days=3)).isoformat()
    assert_problem(
        await start(desk, call_id, "certificate", {"type": "deposit", "to": future}),
        409,
        "invalid_params",
    )
    # A period ending today (no "to") is held to the same longest statement.
    long_ago = (today - timedelta(days=400)).isoformat()
    assert_problem(
        await start(desk, call_id, "certificate", {"type": "statement", "from": long_ago}),
        409,
        "invalid_params",
    )

    start_day = (today - timedelta(days=60)).isoformat()
    issued = await run(
        desk,
        customer,
        customer_ws,
        call_id,
        "certificate",
        {"type": "statement", "from": start_day, "to": today.isoformat()},
    )
    assert issued["state"] == "executed", issued
    result = issued["result"]
    assert result["entries"] > 0 and result["from"] == start_day
    document_id, digest = result["document_id"], result["sha256"]
    # The deposit certificate too, while the customer's socket is being read (the
    # checks below take long enough on a loaded machine for its heartbeat to lapse).
    deposit = await run(desk, customer, customer_ws, call_id, "certificate", {"type": "deposit"})
    assert deposit["state"] == "executed", deposit
    # As of today in the branch's zone (which may already be tomorrow in UTC).
    assert date.fromisoformat(deposit["result"]["to"]) - today in (timedelta(0), timedelta(days=1))

    # The customer fetches her own document: the bytes are a PDF with the recorded hash.
    described = await customer.get(f"/api/v1/documents/{document_id}")
    assert described.status == 200 and described.body["sha256"] == digest, described
    async with api.session.get(
        api.base_url + result["url"], headers=customer.headers()
    ) as response:
        assert response.status == 200 and response.content_type == "application/pdf"
        data = await response.read()
    assert data.startswith(b"%PDF") and hashlib.sha256(data).hexdigest() == digest
    # The specialist who held the call too; another customer or specialist: no such document.
    assert (await desk.get(f"/api/v1/documents/{document_id}")).status == 200
    stranger = await api.customer("C1001")
    assert_problem(await stranger.get(result["url"]), 404, "document_not_found")
    other_desk = await api.specialist("zhang.jun")
    assert_problem(await other_desk.get(f"/api/v1/documents/{document_id}"), 404)

    # Its hash is in the audit chain, and the chain still verifies.
    stored = await _count(
        server,
        select(func.count())
        .select_from(AuditEntry)
        .where(AuditEntry.kind == "document.stored", AuditEntry.subject_id == document_id),
    )
    assert stored == 1
    async with server.app[CALLS].sessions() as session:
        entry = await session.scalar(select(AuditEntry).where(AuditEntry.kind == "document.stored"))
        assert entry is not None and entry.data["sha256"] == digest
    verified = await (await api.supervisor()).get("/api/v1/audit/verify")
    assert verified.status == 200 and verified.body["ok"] is True, verified

    # Executed once: confirming again is refused, and there is still one document.
    again = await customer.post(
        f"/api/v1/operations/{issued['operation_id']}/confirm", {"confirmed": True}
    )
    assert again.status == 409
    documents = select(func.count()).select_from(Document)
    assert (
        await _count(server, documents.where(Document.operation_id == issued["operation_id"])) == 1
    )
    assert await _count(server, documents) == 2  # the statement and the deposit certificate


async def test_a_statement_of_one_of_several_accounts_must_name_it(api: Api) -> None:
    # C1001 has a current account and a passbook account.
    desk, _, _, _, call_id = await active_call(api, customer_id="C1001")
    body = assert_problem(
        await start(desk, call_id, "certificate", {"type": "statement"}), 409, "account_ambiguous"
    )
    assert "current" in body["detail"] and "passbook" in body["detail"], body


async def test_a_customer_with_a_card_pays_from_her_passbook_when_asked(
    api: Api, server: RunningServer
) -> None:
    async with server.app[CALLS].sessions() as session:
        passbook = await session.scalar(
            select(Passbook.account_id).where(Passbook.customer_id == "C1001")
        )
    assert passbook is not None
    desk, _, customer, customer_ws, call_id = await active_call(api, customer_id="C1001")
    before = (await run(desk, customer, customer_ws, call_id, "passbook_statement", {}))["result"]
    paid = await run(
        desk, customer, customer_ws, call_id, "transfer", {**DAUGHTER, "from_account": passbook}
    )
    assert paid["state"] == "executed", paid
    assert float(paid["result"]["balance_after"]) == pytest.approx(float(before["balance"]) - 1200)
    assert_problem(
        await start(desk, call_id, "transfer", {**DAUGHTER, "from_account": "6222029999999999"}),
        409,
        "unknown_account",
    )
