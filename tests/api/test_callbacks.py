"""Callbacks through the public API, on SQLite and PostgreSQL.

Timings are shortened (``server_settings``): the option is offered at once
(threshold 0 s), a ring lasts one second and a retry comes a fraction of a second
later. Calling hours cover the whole day unless a test computes hours that
exclude "now" in Shanghai. The sweeper runs with the dispatcher's housekeeping,
every two seconds, so waits on it use deadlines of several seconds; "never rings"
is checked by listening for a while that spans more than one sweep.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from zoneinfo import ZoneInfo

import aiohttp
import pytest
from sqlalchemy import select, update

from server.appkeys import CALLBACKS, COMPONENTS
from server.db.banking import AuditEntry
from server.db.models import Call, Customer
from server.db.outbox import OutboxEvent
from tests.api.harness import Api, Party, Reply, RunningServer, Socket
from tests.api.nodes import nodes
from tests.plugin.databases import clone_name, postgres_clone

SHANGHAI = ZoneInfo("Asia/Shanghai")
SWEEP_S = 8.0  # a deadline spanning a few sweeps (every 2 s) on a busy machine
QUIET_S = 5.0  # listening this long spans at least two sweeps

BASE_SETTINGS: dict[str, Any] = {
    "callback_threshold_s": 0.0,
    "callback_hours": "00:00-24:00",
    "callback_ring_s": 1.0,
    "callback_retry_after_s": 0.3,
    "queue_update_interval_s": 30.0,
    # Desk sockets sit unread while a test listens to the customer's: no server pings.
    "ws_heartbeat_s": 120.0,
}


@pytest.fixture
def server_settings(request: pytest.FixtureRequest) -> dict[str, Any]:
    return {**BASE_SETTINGS, **getattr(request, "param", {})}


def with_settings(**overrides: Any) -> pytest.MarkDecorator:
    return pytest.mark.parametrize("server_settings", [overrides], indirect=True, ids=["settings"])


def hours_excluding_now() -> str:
    """A one-hour window starting two hours from now, Shanghai time."""
    start = datetime.now(SHANGHAI) + timedelta(hours=2)
    end = start + timedelta(hours=1)
    return f"{start:%H:%M}-{end:%H:%M}"


def problem(reply: Reply, status: int, code: str | None = None) -> None:
    assert reply.status == status, reply
    assert reply.headers.get("Content-Type", "").startswith("application/problem+json"), reply
    assert reply.body["detail"], reply
    if code is not None:
        assert reply.body["code"] == code, reply


async def quiet(socket: Socket, kind: str, seconds: float) -> None:
    """Nothing of ``kind`` arrives on ``socket`` for ``seconds``."""
    loop = asyncio.get_running_loop()
    deadline = loop.time() + seconds
    while (remaining := deadline - loop.time()) > 0:
        try:
            message = await socket.next(timeout=remaining)
        except TimeoutError:
            return
        assert message.get("type") != kind, f"unexpected {kind}: {message}"


async def still_connected(desk_ws: Socket) -> None:
    """The desk stayed connected (so a specialist was at work all along)."""
    await desk_ws.send({"type": "ping"})
    await desk_ws.expect("pong")


async def waiting_customer(
    api: Api, customer_id: str, **body: Any
) -> tuple[Party, Socket, str, dict[str, Any]]:
    """A connected customer with a queued call; returns the first ``queue.update``."""
    customer = await api.customer(customer_id)
    socket = await customer.connect()
    created = await customer.post("/api/v1/calls", body)
    assert created.status == 201, created
    call_id = created.body["call_id"]
    update_ = await socket.expect("queue.update", call_id=call_id)
    return customer, socket, call_id, update_


async def schedule(api: Api, customer_id: str) -> tuple[Party, Socket, str, dict[str, Any]]:
    """A customer who chose a callback; returns (party, socket, call_id, callback)."""
    customer, socket, call_id, update_ = await waiting_customer(
        api, customer_id, callback_allowed=True
    )
    assert update_["callback_available"] is True, update_
    reply = await customer.post(f"/api/v1/calls/{call_id}/callback")
    assert reply.status == 201, reply
    return customer, socket, call_id, reply.body


async def outcomes(party: Party, callback_id: str) -> list[str]:
    reply = await party.get(f"/api/v1/callbacks/{callback_id}")
    assert reply.status == 200, reply
    return [a["outcome"] for a in reply.body["attempts"]]


async def audit_kinds(server: RunningServer, subject_id: str) -> list[str]:
    async with server.app[COMPONENTS].sessions() as session:
        result = await session.execute(
            select(AuditEntry.kind)
            .where(AuditEntry.subject_id == subject_id)
            .order_by(AuditEntry.seq)
        )
        return [kind for (kind,) in result.all()]


async def audit_ok(api: Api) -> None:
    verified = await (await api.supervisor()).get("/api/v1/audit/verify")
    assert verified.status == 200 and verified.body["ok"] is True, verified


async def busy_specialist(api: Api, customer_id: str) -> tuple[Party, Socket, str]:
    """chen.li available, then busy with ``customer_id``'s call (connecting)."""
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer(customer_id)
    call_id = (await customer.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    accepted = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200, accepted
    return desk, desk_ws, call_id


# -- the option --------------------------------------------------------------------------------


async def test_the_option_is_offered_only_when_allowed(api: Api) -> None:
    customer, _, call_id, update_ = await waiting_customer(api, "C1001", callback_allowed=True)
    assert update_["callback_available"] is True
    assert set(update_["callback_message"]) == {"zh", "en"}
    assert "00:00" in update_["callback_message"]["en"]
    # A second socket of the same customer is told at once, too.
    replayed = await customer.connect()
    again = await replayed.expect("queue.update", call_id=call_id)
    assert again["callback_available"] is True

    # The call did not allow a callback.
    other, _, other_call, update_ = await waiting_customer(api, "C1002")
    assert update_["callback_available"] is False and "callback_message" not in update_
    problem(await other.post(f"/api/v1/calls/{other_call}/callback"), 409, "callback_not_available")

    # The customer withdrew consent to be called.
    withdrawn = await api.customer("C1003")
    reply = await withdrawn.put("/api/v1/me/contact", {"consent": False})
    assert reply.status == 200 and reply.body["contact_consent"] is False, reply
    _, _, no_consent_call, update_ = await waiting_customer(api, "C1003", callback_allowed=True)
    assert update_["callback_available"] is False
    reply = await withdrawn.post(f"/api/v1/calls/{no_consent_call}/callback")
    problem(reply, 409, "callback_not_available")
    assert "consent" in reply.body["detail"]

    # A supervisor put the customer on the do-not-call list.
    supervisor = await api.supervisor()
    reply = await supervisor.put(
        "/api/v1/customers/C1004/do-not-call", {"do_not_call": True, "reason": "asked by phone"}
    )
    assert reply.status == 200 and reply.body["do_not_call"] is True, reply
    dnc, _, dnc_call, update_ = await waiting_customer(api, "C1004", callback_allowed=True)
    assert update_["callback_available"] is False
    problem(await dnc.post(f"/api/v1/calls/{dnc_call}/callback"), 409, "callback_not_available")


@with_settings(callback_threshold_s=600.0)
async def test_a_short_wait_is_not_offered_a_callback(api: Api, server: RunningServer) -> None:
    # History: one call handled in 60 s, so estimates are real figures.
    async with server.app[COMPONENTS].sessions() as session:
        now = datetime.now(UTC)
        session.add(
            Call(
                call_id="history0001",
                customer_id="C1010",
                state="ended",
                end_reason="completed",
                priority="normal",
                created_at=now - timedelta(seconds=200),
                enqueued_at=now - timedelta(seconds=200),
                answered_at=now - timedelta(seconds=120),
                ended_at=now - timedelta(seconds=60),
            )
        )
        await session.commit()
    # Read now, not at the dispatcher's next housekeeping (every 2 s): otherwise a
    # quick run's first estimate has no handle time yet, so no figure.
    assert await server.app[COMPONENTS].calls.refresh_handle_time() == 60.0
    _, desk_ws = await api.available_specialist("chen.li")
    first = await api.customer("C1001")
    first_call = (await first.post("/api/v1/calls", {"callback_allowed": True})).body["call_id"]
    await desk_ws.expect("call.offered", call_id=first_call)

    other, _, other_call, update_ = await waiting_customer(api, "C1002", callback_allowed=True)
    assert update_["estimated_wait_s"] == 120, update_
    assert update_["callback_available"] is False
    reply = await other.post(f"/api/v1/calls/{other_call}/callback")
    problem(reply, 409, "callback_not_available")
    assert "estimated wait" in reply.body["detail"]
    # A call already offered to a specialist is about to be answered: no callback.
    reply = await first.post(f"/api/v1/calls/{first_call}/callback")
    problem(reply, 409, "callback_not_available")


# -- choosing a callback -----------------------------------------------------------------------


async def test_choosing_a_callback_ends_the_call_and_keeps_its_place(
    api: Api, server: RunningServer
) -> None:
    customer, socket, call_id, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    assert callback["state"] == "scheduled"
    assert callback["call_id"] == call_id
    assert callback["priority"] == "normal"
    assert callback["attempts"] == [] and callback["ring_count"] == 0
    assert callback["hours"] == "00:00-24:00" and callback["timezone"] == "Asia/Shanghai"
    assert "customer_id" not in callback

    ended = await socket.expect("call.ended", call_id=call_id)
    assert ended["end_reason"] == "cancelled" and ended["callback_id"] == callback_id
    view = await customer.get(f"/api/v1/calls/{call_id}")
    assert view.body["state"] == "ended" and view.body["end_reason"] == "cancelled"
    assert callback["original_enqueued_at"] == view.body["created_at"]

    supervisor = await api.supervisor()
    events = (await supervisor.get(f"/api/v1/calls/{call_id}/timeline")).body["events"]
    assert [e["kind"] for e in events] == ["queued", "converted_to_callback"]
    assert events[1]["data"] == {"end_reason": "cancelled", "callback_id": callback_id}

    # A second tap gives the same callback.
    again = await customer.post(f"/api/v1/calls/{call_id}/callback")
    assert again.status == 200 and again.body["callback_id"] == callback_id

    # Its customer and supervisors see it; nobody else does.
    seen = await supervisor.get(f"/api/v1/callbacks/{callback_id}")
    assert seen.status == 200 and seen.body["customer_id"] == "C1001"
    stranger = await api.customer("C1002")
    problem(await stranger.get(f"/api/v1/callbacks/{callback_id}"), 404, "callback_not_found")
    problem(await stranger.delete(f"/api/v1/callbacks/{callback_id}"), 404, "callback_not_found")
    desk = await api.specialist("chen.li")
    problem(await desk.get(f"/api/v1/callbacks/{callback_id}"), 403)
    mine = await customer.get("/api/v1/me/callbacks")
    assert [c["callback_id"] for c in mine.body] == [callback_id]

    # The customer can cancel it; cancelling again changes nothing.
    assert (await customer.delete(f"/api/v1/callbacks/{callback_id}")).status == 204
    assert (await customer.delete(f"/api/v1/callbacks/{callback_id}")).status == 204
    view = await customer.get(f"/api/v1/callbacks/{callback_id}")
    assert view.body["state"] == "cancelled" and view.body["outcome"] == "cancelled_by_customer"
    problem(await customer.post(f"/api/v1/callbacks/{callback_id}/answer"), 409)
    assert await audit_kinds(server, callback_id) == ["callback.scheduled", "callback.cancelled"]
    await audit_ok(api)


@with_settings(callback_ring_s=30.0)
async def test_answered_callback_is_served_before_later_callers(
    api: Api, server: RunningServer
) -> None:
    desk, desk_ws, busy_call = await busy_specialist(api, "C1003")
    customer, socket, call_id, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    # Someone calls after the customer chose a callback.
    later = await api.customer("C1002")
    later_call = (await later.post("/api/v1/calls", {})).body["call_id"]

    # chen.li is busy, but the callback is next in line: the app rings first.
    ringing = await socket.expect("callback.ringing", timeout=SWEEP_S, callback_id=callback_id)
    assert ringing["call_id"] is None and 0 < ringing["expires_in_s"] <= 30.0
    assert set(ringing["message"]) == {"zh", "en"}

    # An app that connects while it rings (another device, or after a drop) rings too.
    second_device = await customer.connect()
    replayed = await second_device.expect("callback.ringing", callback_id=callback_id)
    assert 0 < replayed["expires_in_s"] <= ringing["expires_in_s"]

    answered = await customer.post(f"/api/v1/callbacks/{callback_id}/answer")
    assert answered.status == 201, answered
    new_call = answered.body["call_id"]
    assert new_call != call_id
    assert answered.body["state"] == "queued" and answered.body["position"] == 1
    assert answered.body["priority"] == "normal" and answered.body["ice_servers"] == []
    again = await customer.post(f"/api/v1/callbacks/{callback_id}/answer")
    assert again.status == 200 and again.body["call_id"] == new_call
    assert (await later.get(f"/api/v1/calls/{later_call}")).body["position"] == 2

    # chen.li finishes: the callback's call is offered, not the later caller's.
    await desk.post(f"/api/v1/calls/{busy_call}/end")
    await desk.post(f"/api/v1/calls/{busy_call}/wrap-up", {"code": "done"})
    offer = await desk_ws.expect("call.offered")
    assert offer["call_id"] == new_call, offer
    assert offer["customer"]["customer_id"] == "C1001"
    accepted = await desk.post(f"/api/v1/calls/{new_call}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200 and accepted.body["state"] == "connecting"

    view = (await customer.get(f"/api/v1/callbacks/{callback_id}")).body
    assert view["state"] == "connected" and view["new_call_id"] == new_call
    assert view["outcome"] == "answered" and view["ring_count"] == 1
    assert [a["outcome"] for a in view["attempts"]] == ["rang", "answered"]
    assert all(a["local_time"].endswith("+08:00") for a in view["attempts"])
    problem(await customer.delete(f"/api/v1/callbacks/{callback_id}"), 409, "illegal_state")

    supervisor = await api.supervisor()
    events = (await supervisor.get(f"/api/v1/calls/{new_call}/timeline")).body["events"]
    assert events[0]["kind"] == "queued"
    assert events[0]["data"]["callback_id"] == callback_id
    assert events[0]["data"]["original_call_id"] == call_id
    assert await audit_kinds(server, callback_id) == [
        "callback.scheduled",
        "callback.rang",
        "callback.answered",
    ]
    await audit_ok(api)
    # The answered callback's call was queued like any other: its event says how.
    async with server.app[COMPONENTS].sessions() as session:
        queued = (
            (
                await session.execute(
                    select(OutboxEvent.payload).where(
                        OutboxEvent.call_id == new_call, OutboxEvent.kind == "call_queued"
                    )
                )
            )
            .scalars()
            .all()
        )
    assert [payload["cause"] for payload in queued] == ["callback"]


@with_settings(callback_ring_s=30.0)
async def test_racing_nodes_ring_once_and_answer_once(api: Api, server: RunningServer) -> None:
    """Every node sweeps; the conditional updates let exactly one of them act."""
    customer, socket, _, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    _, desk_ws = await api.available_specialist("chen.li")
    service = server.app[CALLBACKS]
    now = service.clock()
    await asyncio.gather(*(service.sweep(now) for _ in range(4)))
    await socket.expect("callback.ringing", timeout=SWEEP_S, callback_id=callback_id)
    await quiet(socket, "callback.ringing", 2.5)
    assert await outcomes(customer, callback_id) == ["rang"]

    path = f"/api/v1/callbacks/{callback_id}/answer"
    replies = await asyncio.gather(*(customer.post(path) for _ in range(3)))
    assert sorted(r.status for r in replies) == [200, 200, 201], replies
    assert len({r.body["call_id"] for r in replies}) == 1
    assert await outcomes(customer, callback_id) == ["rang", "answered"]
    offer = await desk_ws.expect("call.offered", timeout=SWEEP_S)
    assert offer["call_id"] == replies[0].body["call_id"]
    await audit_ok(api)


# -- when it must not ring ---------------------------------------------------------------------


@with_settings(callback_hours=hours_excluding_now())
async def test_outside_hours_it_does_not_ring_and_records_one_skip(
    api: Api, server: RunningServer
) -> None:
    customer, socket, _, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    _, desk_ws = await api.available_specialist("chen.li")  # now it is the callback's turn
    await quiet(socket, "callback.ringing", QUIET_S)
    await still_connected(desk_ws)
    view = (await customer.get(f"/api/v1/callbacks/{callback_id}")).body
    assert view["state"] == "scheduled" and view["ring_count"] == 0
    assert [a["outcome"] for a in view["attempts"]] == ["skipped_outside_hours"]
    opening = datetime.fromisoformat(view["next_attempt_at"].replace("Z", "+00:00"))
    local = opening.astimezone(SHANGHAI)
    assert f"{local:%H:%M}" == server.settings.callback_hours.split("-")[0]
    assert timedelta(hours=1) < opening - datetime.now(UTC) < timedelta(hours=3)
    assert view["attempts"][0]["detail"].startswith("next attempt at")
    assert await audit_kinds(server, callback_id) == [
        "callback.scheduled",
        "callback.skipped_outside_hours",
    ]
    await audit_ok(api)


async def test_do_not_call_after_scheduling_ends_it_and_it_never_rings(api: Api) -> None:
    customer, socket, _, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    supervisor = await api.supervisor()
    reply = await supervisor.put(
        "/api/v1/customers/C1001/do-not-call", {"do_not_call": True, "reason": "complaint"}
    )
    assert reply.status == 200 and reply.body["cancelled_callbacks"] == [callback_id], reply
    _, desk_ws = await api.available_specialist("chen.li")
    await quiet(socket, "callback.ringing", QUIET_S)
    await still_connected(desk_ws)
    view = (await customer.get(f"/api/v1/callbacks/{callback_id}")).body
    assert view["state"] == "cancelled" and view["outcome"] == "do_not_call"
    assert view["ring_count"] == 0
    # Taking them off the list does not bring the callback back.
    reply = await supervisor.put(
        "/api/v1/customers/C1001/do-not-call", {"do_not_call": False, "reason": "resolved"}
    )
    assert reply.status == 200 and reply.body["do_not_call"] is False
    assert (await customer.get(f"/api/v1/callbacks/{callback_id}")).body["state"] == "cancelled"
    await audit_ok(api)


async def test_withdrawn_consent_ends_it_and_it_never_rings(api: Api) -> None:
    customer, socket, _, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    reply = await customer.put("/api/v1/me/contact", {"consent": False})
    assert reply.status == 200 and reply.body["cancelled_callbacks"] == [callback_id], reply
    _, desk_ws = await api.available_specialist("chen.li")
    await quiet(socket, "callback.ringing", QUIET_S)
    await still_connected(desk_ws)
    view = (await customer.get(f"/api/v1/callbacks/{callback_id}")).body
    assert view["state"] == "cancelled" and view["outcome"] == "consent_withdrawn"
    assert view["ring_count"] == 0
    assert (await customer.put("/api/v1/me/contact", {"consent": True})).body[
        "contact_consent"
    ] is True


async def test_flags_changed_elsewhere_are_checked_before_ringing(
    api: Api, server: RunningServer
) -> None:
    """The bank's own systems may set the flags directly: the sweeper checks them too."""
    customer, socket, _, first = await schedule(api, "C1001")
    other, other_socket, _, second = await schedule(api, "C1002")
    async with server.app[COMPONENTS].sessions() as session:
        await session.execute(
            update(Customer).where(Customer.customer_id == "C1001").values(do_not_call=True)
        )
        await session.execute(
            update(Customer).where(Customer.customer_id == "C1002").values(contact_consent=False)
        )
        await session.commit()
    desks = [await api.available_specialist(name) for name in ("chen.li", "wang.fang")]
    await quiet(socket, "callback.ringing", QUIET_S)
    await quiet(other_socket, "callback.ringing", 0.5)
    for _, desk_ws in desks:
        await still_connected(desk_ws)
    assert not any(m["type"] == "callback.ringing" for m in other_socket.received)
    view = (await customer.get(f"/api/v1/callbacks/{first['callback_id']}")).body
    assert (view["state"], view["outcome"]) == ("cancelled", "do_not_call")
    assert [a["outcome"] for a in view["attempts"]] == ["skipped_do_not_call"]
    view = (await other.get(f"/api/v1/callbacks/{second['callback_id']}")).body
    assert (view["state"], view["outcome"]) == ("cancelled", "consent_withdrawn")
    assert [a["outcome"] for a in view["attempts"]] == ["skipped_no_consent"]
    assert "callback.skipped_do_not_call" in await audit_kinds(server, first["callback_id"])
    await audit_ok(api)


async def test_at_most_two_rings_a_day(api: Api, server: RunningServer) -> None:
    customer, socket, _, callback = await schedule(api, "C1001")
    callback_id = callback["callback_id"]
    _, desk_ws = await api.available_specialist("chen.li")

    await socket.expect("callback.ringing", timeout=SWEEP_S, callback_id=callback_id)
    declined = await customer.post(f"/api/v1/callbacks/{callback_id}/decline")
    assert declined.status == 200, declined
    assert declined.body["state"] == "scheduled"
    assert [a["outcome"] for a in declined.body["attempts"]] == ["rang", "declined"]
    problem(await customer.post(f"/api/v1/callbacks/{callback_id}/decline"), 409)

    # The second ring goes unanswered.
    await socket.expect("callback.ringing", timeout=SWEEP_S, callback_id=callback_id)
    ended = await socket.expect("callback.ring_ended", timeout=SWEEP_S, reason="no_answer")
    assert ended["callback_id"] == callback_id

    # No third ring today.
    await quiet(socket, "callback.ringing", QUIET_S)
    await still_connected(desk_ws)
    view = (await customer.get(f"/api/v1/callbacks/{callback_id}")).body
    assert view["state"] == "scheduled" and view["ring_count"] == 2
    assert [a["outcome"] for a in view["attempts"]] == [
        "rang",
        "declined",
        "rang",
        "no_answer",
        "skipped_daily_limit",
    ]
    # Next: the first allowed moment of the next local day (midnight, with all-day hours).
    next_at = datetime.fromisoformat(view["next_attempt_at"].replace("Z", "+00:00"))
    tomorrow = datetime.now(SHANGHAI).date() + timedelta(days=1)
    assert next_at == datetime.combine(tomorrow, datetime.min.time(), tzinfo=SHANGHAI)
    assert await audit_kinds(server, callback_id) == [
        "callback.scheduled",
        "callback.rang",
        "callback.declined",
        "callback.rang",
        "callback.no_answer",
        "callback.skipped_daily_limit",
    ]
    await audit_ok(api)


# -- bad input ---------------------------------------------------------------------------------


async def test_bad_input_is_a_clear_problem(api: Api) -> None:
    customer = await api.customer("C1001")
    problem(await customer.post("/api/v1/calls/nope/callback"), 404, "call_not_found")
    problem(await customer.post(f"/api/v1/calls/{'x' * 500}/callback"), 404, "call_not_found")
    problem(await customer.get("/api/v1/callbacks/nope"), 404, "callback_not_found")
    problem(await customer.get(f"/api/v1/callbacks/{'x' * 500}"), 404, "callback_not_found")
    problem(await customer.get("/api/v1/callbacks/a%00b"), 404, "callback_not_found")
    problem(await customer.post("/api/v1/callbacks/nope/answer"), 404, "callback_not_found")
    problem(await customer.post("/api/v1/callbacks/nope/decline"), 404, "callback_not_found")

    other = await api.customer("C1002")
    call_id = (await other.post("/api/v1/calls", {"callback_allowed": True})).body["call_id"]
    problem(await customer.post(f"/api/v1/calls/{call_id}/callback"), 404, "call_not_found")
    desk = await api.specialist("chen.li")
    problem(await desk.post(f"/api/v1/calls/{call_id}/callback"), 403)
    problem(await api.request("POST", f"/api/v1/calls/{call_id}/callback"), 401)

    bodies: list[Any] = [{}, {"consent": "no"}, {"consent": 0}, {"consent": True, "x": 1}, []]
    for body in bodies:
        problem(await customer.put("/api/v1/me/contact", body), 422)
    reply = await api.request(
        "PUT",
        "/api/v1/me/contact",
        headers={**customer.headers(), "Content-Type": "application/json"},
        data=b"{not json",
    )
    problem(reply, 400, "malformed_json")
    problem(await desk.put("/api/v1/me/contact", {"consent": False}), 403)

    supervisor = await api.supervisor()
    path = "/api/v1/customers/C1001/do-not-call"
    bodies = [
        {"do_not_call": True},
        {"do_not_call": True, "reason": ""},
        {"do_not_call": "yes", "reason": "x"},
        {"reason": "x"},
        {"do_not_call": True, "reason": "x" * 501},
    ]
    for body in bodies:
        problem(await supervisor.put(path, body), 422)
    problem(await customer.put(path, {"do_not_call": True, "reason": "x"}), 403)
    problem(
        await supervisor.put(
            "/api/v1/customers/C9999/do-not-call", {"do_not_call": True, "reason": "x"}
        ),
        404,
        "customer_not_found",
    )
    problem(
        await supervisor.put(
            "/api/v1/customers/a%20b/do-not-call", {"do_not_call": True, "reason": "x"}
        ),
        404,
        "customer_not_found",
    )
    # Nothing was changed by any of it.
    assert (await customer.put("/api/v1/me/contact", {"consent": True})).body == {
        "customer_id": "C1001",
        "contact_consent": True,
        "do_not_call": False,
        "cancelled_callbacks": [],
    }


async def test_the_endpoints_are_documented(api: Api) -> None:
    document = (await api.request("GET", "/api/v1/openapi.json")).body
    for path in (
        "/api/v1/calls/{call_id}/callback",
        "/api/v1/callbacks/{callback_id}",
        "/api/v1/callbacks/{callback_id}/answer",
        "/api/v1/callbacks/{callback_id}/decline",
        "/api/v1/me/contact",
        "/api/v1/customers/{customer_id}/do-not-call",
    ):
        assert path in document["paths"], path
    assert "CallbackResponse" in document["components"]["schemas"]


# -- two nodes ------------------------------------------------------------------------------------


@pytest.fixture
def shared_database(postgres_url: str, postgres_template: str, tmp_path: Path) -> Iterator[str]:
    with postgres_clone(
        postgres_url, postgres_template, clone_name("cb_callback_nodes", tmp_path.name)
    ) as url:
        yield url


@pytest.mark.redis
@pytest.mark.postgres
@pytest.mark.slow
async def test_two_nodes_ring_once_and_serve_the_answer_across_nodes(
    shared_database: str, redis_url: str, redis_client: object, tmp_path: Path
) -> None:
    """Both nodes sweep the same callbacks; the customer is on node 1, the desk on node 2."""
    settings = {
        "callback_threshold_s": "0",
        "callback_hours": "00:00-24:00",
        "callback_ring_s": "30",
        "ws_heartbeat_s": "120",
    }
    async with (
        nodes(2, shared_database, redis_url, tmp_path, **settings) as (node1, node2),
        aiohttp.ClientSession() as http,
    ):
        front, back = Api(node1.base_url, http), Api(node2.base_url, http)
        customer, socket, _, callback = await schedule(front, "C1001")
        callback_id = callback["callback_id"]
        _, desk_ws = await back.available_specialist("chen.li")

        await socket.expect("callback.ringing", timeout=SWEEP_S, callback_id=callback_id)
        await quiet(socket, "callback.ringing", QUIET_S)
        assert await outcomes(customer, callback_id) == ["rang"]

        answered = await customer.post(f"/api/v1/callbacks/{callback_id}/answer")
        assert answered.status == 201, answered
        offer = await desk_ws.expect("call.offered", timeout=SWEEP_S)
        assert offer["call_id"] == answered.body["call_id"]
        assert await outcomes(customer, callback_id) == ["rang", "answered"]
        await audit_ok(front)
