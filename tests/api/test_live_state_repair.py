"""Reconciliation of the live routing state with SQL (SQLite and PostgreSQL).

Each repair needs the same fault on two passes in a row; here the passes are run
directly, after breaking the live state the way a lost Redis write would.
"""

from __future__ import annotations

import asyncio

from server.appkeys import CALLS, DISPATCHER
from server.routing.model import SpecialistState
from tests.api.harness import Api, RunningServer


async def _two_passes(server: RunningServer) -> int:
    """Run two passes; how many repairs were made meanwhile. Counted on the repair
    object, since the dispatcher's own pass may run between the two and make the
    repair the second pass would have made."""
    repair = server.app[DISPATCHER].repair
    now = server.app[CALLS].clock()
    before = repair.repairs
    await repair.reconcile(now)
    await repair.reconcile(now + 0.1)
    return repair.repairs - before


async def test_a_waiting_call_missing_from_the_queue_is_put_back(
    api: Api, server: RunningServer
) -> None:
    customer = await api.customer("C1003")
    call_id = (await customer.post("/api/v1/calls", {})).body["call_id"]
    backend = server.app[CALLS].backend
    # Break the live state only once the call is in it: the create's own enqueue
    # may still be on its way after the answer.
    for _ in range(100):
        if await backend.position(call_id) is not None:
            break
        await asyncio.sleep(0.05)
    await backend.remove(call_id, server.app[CALLS].clock())
    assert await backend.position(call_id) is None
    assert await _two_passes(server) >= 1
    assert await backend.position(call_id) == 1


async def test_a_specialist_routing_forgot_gets_their_call_back(
    api: Api, server: RunningServer
) -> None:
    desk, desk_ws = await api.available_specialist("chen.li")
    customer = await api.customer("C1004")
    call_id = (await customer.post("/api/v1/calls", {})).body["call_id"]
    offer = await desk_ws.expect("call.offered", call_id=call_id)
    accepted = await desk.post(f"/api/v1/calls/{call_id}/accept", {"offer_id": offer["offer_id"]})
    assert accepted.status == 200, accepted
    backend = server.app[CALLS].backend
    # As if Redis lost the assignment: routing thinks the desk is free.
    await backend.finish_wrap_up(desk.subject, server.app[CALLS].clock())
    assert await _two_passes(server) >= 1
    view = await backend.specialist(desk.subject)
    assert view is not None and view.state is SpecialistState.BUSY and view.call_id == call_id


async def test_a_desk_routing_holds_busy_with_an_ended_call_is_freed(
    api: Api, server: RunningServer
) -> None:
    desk, _desk_ws = await api.available_specialist("zhou.min")
    backend = server.app[CALLS].backend
    now = server.app[CALLS].clock()
    # As if a wrap-up's Redis step was lost: routing holds a call SQL never had open.
    assert await backend.restore_assignment(desk.subject, "gone-call", False, now)
    assert await _two_passes(server) >= 1
    view = await backend.specialist(desk.subject)
    assert view is not None and view.state is SpecialistState.AVAILABLE
