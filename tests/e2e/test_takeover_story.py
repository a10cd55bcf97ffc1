"""The takeover story, end to end with aiortc parties: a phone change, then a
large transfer to a new payee, is held, and the reasons are shown to both sides.

The contact change is recorded so the risk engine sees it (a RecentEvent and a
PriorOperation of kind ``contact_change``), and the ruleset's takeover rules
name the whole sequence. For this customer the amount is also many times her
usual, so the engine may stop the transfer outright (``block``) rather than
hold it: either way it does not run, and the takeover reason is shown.
"""

from __future__ import annotations

import pytest

from tests.api.counter_support import run
from tests.api.harness import Api, RunningServer
from tests.api.test_operations import pin_morning
from tests.e2e.stories import active_call

pytestmark = [pytest.mark.media]


async def test_phone_change_then_large_transfer_to_a_new_payee_is_held(
    api: Api, server: RunningServer
) -> None:
    pin_morning(server)
    desk, customer, call_id = await active_call(api, "chen.li", "C1001")
    try:
        changed = await run(
            desk.party,
            customer.party,
            customer,
            call_id,
            "contact_change",
            {"phone": "13912345678"},
        )
        assert changed["state"] == "executed", changed
        started = await desk.party.post(
            f"/api/v1/calls/{call_id}/operations",
            {
                "kind": "transfer",
                "params": {
                    "amount": "50000.00",
                    "currency": "CNY",
                    "payee_account": "6217000055554444",
                    "payee_name": "王建",
                    "payee_bank": "CCB",
                },
                "customer_statement": "帮朋友周转",
            },
        )
        assert started.status == 201, started
        operation = started.body
        assert operation["state"] in {"held", "blocked"}, operation
        assert operation["risk"]["typology"] == "account_takeover", operation["risk"]
        codes = {r["code"] for r in operation["risk"]["reasons"]}
        assert "contact_change_new_payee_large" in codes, codes
        popup = await desk.expect("risk.popup", operation_id=operation["operation_id"])
        assert popup["decision"] in {"hold", "block"} and popup["reasons"]
        warning = await customer.expect("risk.warning", operation_id=operation["operation_id"])
        assert warning["text"]["zh"] and warning["text"]["en"]
    finally:
        await desk.close()
        await customer.close()
