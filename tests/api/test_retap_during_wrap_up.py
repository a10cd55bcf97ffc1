"""A customer who taps again while the specialist wraps up gets a new call
(SQLite and PostgreSQL): wrap-up is the specialist's time, not an open call."""

from __future__ import annotations

from tests.api.harness import Api


async def test_a_tap_during_wrap_up_opens_a_new_call(api: Api) -> None:
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1005")
    first = (await customer.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=first)
    accepted = await desk.post(f"/api/v1/calls/{first}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200, accepted
    ended = await desk.post(f"/api/v1/calls/{first}/end")
    assert ended.status == 200 and ended.body["state"] == "wrap_up", ended

    again = await customer.post("/api/v1/calls", {})
    assert again.status == 201, again
    assert again.body["call_id"] != first and again.body["state"] == "queued"
    # A second tap now returns that new call, and the old one still wraps up.
    assert (await customer.post("/api/v1/calls", {})).body["call_id"] == again.body["call_id"]
    wrapped = await desk.post(f"/api/v1/calls/{first}/wrap-up", {"code": "served"})
    assert wrapped.status == 200 and wrapped.body["state"] == "ended", wrapped
