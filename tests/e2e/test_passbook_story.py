"""The passbook story, end to end with aiortc parties through the media node.

Grandma Lu (C1021, 88) has only a passbook, no bank card. She calls in: her
passbook is gone. The specialist reads her the passbook's last entries, reports
it lost at once (nothing can be paid from it from that moment), makes the
report formal, issues a replacement passbook, and certifies her pension for
the year while the call is recorded. The old passbook stays blocked for good;
the new one pays again; the audit chain verifies.
"""

from __future__ import annotations

import pytest
from sqlalchemy import select

from server.db.banking import LossReport, Passbook
from server.recordings.models import RecordingMarker
from tests.api.counter_support import run, start
from tests.api.harness import Api, RunningServer
from tests.api.test_operations import pin_morning
from tests.e2e.stories import active_call, db_rows

pytestmark = pytest.mark.media

DAUGHTER = {
    "amount": "800.00",
    "currency": "CNY",
    "payee_account": "6222020000001021",
    "payee_name": "陆美华",
    "payee_bank": "ICBC",
}


async def test_passbook_only_customer_reports_her_passbook_lost_and_gets_a_new_one(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, customer, call_id = await active_call(api, "zhou.min", "C1021")
    try:
        args = (desk.party, customer.party, customer, call_id)
        statement = await run(*args, "passbook_statement", {"entries": 3})
        assert statement["state"] == "executed", statement
        account = statement["result"]["account_id"]
        old_book = statement["result"]["passbook_id"]

        reported = await run(*args, "loss_report", {"medium": "passbook", "stage": "temporary"})
        assert reported["state"] == "executed", reported
        refused = await start(desk.party, call_id, "transfer", DAUGHTER)
        assert refused.status == 409 and refused.code == "medium_reported_lost", refused

        formal = await run(*args, "loss_report", {"medium": "passbook", "stage": "formal"})
        assert formal["state"] == "executed" and formal["result"]["stage"] == "formal"
        replaced = await run(*args, "replacement", {"medium": "passbook"})
        assert replaced["state"] == "executed", replaced
        new_book = replaced["result"]["new_medium_id"]

        books = dict(
            await db_rows(
                server,
                select(Passbook.passbook_id, Passbook.state).where(Passbook.account_id == account),
            )
        )
        assert books == {old_book: "lost", new_book: "active"}, books
        reports = await db_rows(
            server, select(LossReport.state, LossReport.replacement_id, LossReport.stage)
        )
        assert [tuple(r) for r in reports] == [("replaced", new_book, "formal")]

        # The new passbook pays again (this call is recorded, as a transfer needs).
        paid = await run(*args, "transfer", DAUGHTER)
        assert paid["state"] == "executed", paid

        # Her pension certified in the same call: the attestation is marked in the recording.
        certified = await run(*args, "pension_certification", {})
        assert certified["state"] == "executed", certified
        evidence = certified["result"]["evidence"]
        # A liveness challenge is sent when it starts; this client does not run it, so
        # the evidence holds the call's latest result, if one is in yet, or none.
        if evidence["liveness"] is None:
            assert evidence["method"] == "specialist_attestation", evidence
        else:
            assert evidence["method"] == "attestation_with_liveness", evidence
        assert evidence["recording"] is not None, evidence
        assert evidence["recording"]["marker"] == "pension_attested", evidence
        markers = await db_rows(
            server,
            select(RecordingMarker.kind).where(
                RecordingMarker.call_id == call_id,
                RecordingMarker.operation_id == certified["operation_id"],
            ),
        )
        assert ("pension_attested",) in [tuple(m) for m in markers], markers

        supervisor = await api.supervisor()
        assert (await supervisor.get("/api/v1/audit/verify")).body["ok"] is True
    finally:
        await desk.close()
        await customer.close()
