"""The core call flow through the public API, on SQLite and PostgreSQL."""

from __future__ import annotations

from tests.api.harness import Api


async def test_customer_call_is_offered_accepted_ended_and_wrapped_up(api: Api) -> None:
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1001")
    customer_ws = await customer.connect()

    created = await customer.post("/api/v1/calls", {"intent": "other"})
    assert created.status == 201, created
    call_id = created.body["call_id"]
    assert created.body["state"] == "queued"
    assert created.body["position"] == 1
    assert created.body["ice_servers"] == []

    again = await customer.post("/api/v1/calls", {})
    assert again.status == 200 and again.body["call_id"] == call_id

    offer = await desk_ws.expect("call.offered", call_id=call_id)
    assert offer["customer"]["customer_id"] == "C1001"
    assert 0 < offer["expires_in_s"] <= 15

    accepted = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200, accepted
    assert accepted.body["state"] == "connecting"
    assigned = await customer_ws.expect("call.assigned", call_id=call_id)
    assert assigned["specialist"]["display_name"] == "陈丽"
    assert "wuu" in assigned["specialist"]["dialects"]

    ended = await desk.post(f"/api/v1/calls/{call_id}/end")
    assert ended.status == 200 and ended.body["state"] == "wrap_up"
    await customer_ws.expect("call.ended", call_id=call_id, end_reason="completed")

    wrapped = await desk.post(f"/api/v1/calls/{call_id}/wrap-up", {"code": "balance_inquiry"})
    assert wrapped.status == 200 and wrapped.body["state"] == "ended"
    assert wrapped.body["end_reason"] == "completed"

    supervisor = await api.supervisor()
    timeline = await supervisor.get(f"/api/v1/calls/{call_id}/timeline")
    kinds = [e["kind"] for e in timeline.body["events"]]
    assert kinds == ["queued", "offered", "accepted", "conversation_ended", "wrapped_up"]

    specialists = await supervisor.get("/api/v1/specialists")
    states = {s["username"]: s["state"] for s in specialists.body}
    assert states["chen.li"] == "available"

    view = await customer.get(f"/api/v1/calls/{call_id}")
    assert view.body["state"] == "ended"
    assert "context" not in view.body  # desk-only details stay off the customer's screen


async def test_customer_leaves_queue(api: Api) -> None:
    customer = await api.customer("C1003")
    created = await customer.post("/api/v1/calls", {})
    call_id = created.body["call_id"]
    gone = await customer.delete(f"/api/v1/calls/{call_id}")
    assert gone.status == 204
    view = await customer.get(f"/api/v1/calls/{call_id}")
    assert view.body["state"] == "ended" and view.body["end_reason"] == "cancelled"
    again = await customer.delete(f"/api/v1/calls/{call_id}")
    assert again.status == 204
    fresh = await customer.post("/api/v1/calls", {})
    assert fresh.status == 201 and fresh.body["call_id"] != call_id
