"""What the service writes to its log while serving never holds a customer's personal data."""

from __future__ import annotations

import json
from collections.abc import Iterator
from pathlib import Path

import pytest
import structlog

from server.logging import configure_logging
from server.seed import CUSTOMERS
from tests.api.harness import Api
from tests.api.helpers import seeded_database

ID_NUMBER = "110105194912310021"


@pytest.fixture
def database_url(request: pytest.FixtureRequest, tmp_path: Path) -> Iterator[str]:
    with seeded_database(request, "sqlite", tmp_path) as url:
        yield url


async def test_a_served_call_leaves_no_phone_number_or_name_in_the_log(
    capsys: pytest.CaptureFixture[str], api: Api
) -> None:
    # The service's own logging set-up, bound to this test's captured stderr (the
    # server was configured during fixture set-up, whose capture is closed by now).
    configure_logging("json", "DEBUG")
    try:
        await serve_a_call_with_personal_data_in_it(api)
        err = capsys.readouterr().err
    finally:
        structlog.reset_defaults()
    events = [json.loads(line) for line in err.splitlines() if line.startswith("{")]
    logged = {e.get("event") for e in events}
    assert {"call.queued", "call.accepted"} <= logged, logged  # the capture works
    for _id, name, _age, _dialect, number in CUSTOMERS:
        assert number not in err
        assert name not in err
    assert ID_NUMBER not in err


async def serve_a_call_with_personal_data_in_it(api: Api) -> None:
    phone = CUSTOMERS[0][4]
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1001")
    customer_ws = await customer.connect()
    # Free text where the fixed list of intents belongs is refused, unlogged.
    refused = await customer.post("/api/v1/calls", {"intent": f"请回电 {phone}"})
    assert refused.status == 422, refused
    created = await customer.post("/api/v1/calls", {"intent": "other"})
    call_id = created.body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    await customer_ws.expect("call.assigned")
    await desk.post(f"/api/v1/calls/{call_id}/end")
    await desk.post(
        f"/api/v1/calls/{call_id}/wrap-up",
        {"code": "callback", "note": f"ID {ID_NUMBER}, phone {phone}"},
    )
    await customer.get(f"/api/v1/calls/{phone}")  # a phone number where an id should be
    await api.request("POST", "/api/v1/desk/login", {"username": phone, "password": "x"})
    await customer_ws.close()
    await desk_ws.close()
    supervisor = await api.supervisor()
    await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
